"""Small, learnable data sets in real file formats (IDX, CSV, PNG folders, CIFAR-10 batches), for tests,
benchmarks' smoke mode and demos: the real readers run on them, nothing is mocked. Also sweep folders as
training leaves them (write_sweep, write_optuna_sweep: a real Optuna study), for the report's tests and
for looking at its figures without training."""

from __future__ import annotations

import gzip
import hashlib
import pickle
import struct
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np


def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> Path:
    """The IDX format: zero, zero, type 0x08 (ubyte), ndim; big-endian int32 dims; then the data."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)
    return path


def make_digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Fake digits: label k lights a 6x6 block at a k-dependent place, over mild noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=n).astype(np.uint8)
    images = rng.integers(0, 60, size=(n, 28, 28)).astype(np.uint8)
    for i, k in enumerate(labels):
        r, c = 2 + (k // 5) * 12, 1 + (k % 5) * 5
        images[i, r : r + 6, c : c + 6] = 230
    return images, labels


def write_dataset(root: Path, n_train: int, n_test: int, compress: bool = True) -> Path:
    """A flat folder with the four IDX files of a training and a test split."""
    root.mkdir(parents=True, exist_ok=True)
    for prefix, n, seed in (("train", n_train, 0), ("t10k", n_test, 1)):
        images, labels = make_digits(n, seed)
        write_idx(root / f"{prefix}-images-idx3-ubyte", images, compress)
        write_idx(root / f"{prefix}-labels-idx1-ubyte", labels, compress)
    return root


def write_csv(path: Path, n: int, seed: int, noise: float = 0.1, label: bool = False) -> Path:
    """A regression table: numeric features x1..x4 and y = 2 x1 - x2 + 0.5 x3 x4 + sin(3 x1) + noise.

    With `label`, also a text column `label` (low / mid / high: y's tertiles) for classification tests;
    leave it out of data.features when y is the target.
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    y = 2 * x[:, 0] - x[:, 1] + 0.5 * x[:, 2] * x[:, 3] + np.sin(3 * x[:, 0]) + noise * rng.normal(size=n)
    columns = {f"x{i + 1}": x[:, i] for i in range(4)}
    columns["y"] = y
    lines = [",".join([*columns, *(["label"] if label else [])])]
    cuts = np.quantile(y, [1 / 3, 2 / 3]) if n else np.zeros(2)
    names = np.array(["low", "mid", "high"])[np.searchsorted(cuts, y)]
    for i in range(n):
        row = [repr(float(col[i])) for col in columns.values()]
        lines.append(",".join(row + ([str(names[i])] if label else [])))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def write_image_folder(root: Path, n_per_class: int, classes: Sequence[str] = ("cat", "dog", "owl"),
                       size: int = 12, seed: int = 0) -> Path:
    """root/<class>/<i>.png: class k is a k-dependent colour with stripes in a k-dependent direction, over noise."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for k, name in enumerate(classes):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        colour = np.array([(80 * k + 40) % 256, (150 * k + 90) % 256, (200 - 60 * k) % 256], dtype=np.float64)
        yy, xx = np.mgrid[0:size, 0:size]
        stripes = ((xx if k % 2 == 0 else yy) + k) % 4 < 2
        for i in range(n_per_class):
            pixels = colour * (0.6 + 0.4 * stripes[..., None]) + rng.normal(0, 12, size=(size, size, 3))
            Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB").save(folder / f"{i:04d}.png")
    return root


class _Py2Str(bytes):
    """A Python 2 `str` in a pickle: read back as bytes with encoding="bytes" (b"data", as CIFAR-10's own
    instructions load it) and as str with encoding="latin1" ("data", as torchvision loads it)."""


class _Py2Pickler(pickle._Pickler):  # type: ignore[name-defined,misc]  # the pure-Python pickler is extensible
    dispatch = dict(pickle._Pickler.dispatch)  # type: ignore[attr-defined]

    def save_py2str(self, obj: _Py2Str) -> None:
        data = bytes(obj)
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[_Py2Str] = save_py2str


def _py2_pickle(obj: dict[str, Any], path: Path) -> str:
    """Pickle a dict as CIFAR-10's Python 2 batches are (str keys that are bytes); returns the file's md5."""
    with open(path, "wb") as f:
        _Py2Pickler(f, protocol=2).dump({_Py2Str(k.encode()): v for k, v in obj.items()})
    return hashlib.md5(path.read_bytes()).hexdigest()


CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def make_cifar_images(n: int, seed: int) -> tuple[np.ndarray, list[int]]:
    """Fake CIFAR images, uint8 [n, 3072] (row-major R, G, B planes of 32x32): label k is a k-dependent
    colour and a bright 8x8 block at a k-dependent place, over noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=n)
    images = rng.integers(0, 80, size=(n, 3, 32, 32)).astype(np.int64)
    for i, k in enumerate(labels):
        images[i] += np.array([25 * k, 90 - 9 * k, 12 * (k % 5)])[:, None, None]
        r, c = 4 + (k // 5) * 16, 1 + (k % 5) * 6
        images[i, :, r : r + 8, c : c + 8] = 240
    return np.clip(images, 0, 255).astype(np.uint8).reshape(n, 3072), [int(k) for k in labels]


def write_cifar10(root: Path, n_train: int, n_test: int, seed: int = 0) -> dict[str, str]:
    """torchvision's CIFAR-10 python layout: root/cifar-10-batches-py/data_batch_1..5 (n_train images
    between them), test_batch and batches.meta, pickled as the official files are (Python 2 dicts: keys and names are byte strings).

    Returns {file name: md5}: torchvision checks the official files' md5 sums, so a test puts these in
    torchvision.datasets.CIFAR10's train_list, test_list and meta (see cifar10_checksums).
    """
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    images, labels = make_cifar_images(n_train + n_test, seed)
    sums = {}
    bounds = np.linspace(0, n_train, 6).astype(int)
    for b in range(5):
        lo, hi = bounds[b], bounds[b + 1]
        sums[f"data_batch_{b + 1}"] = _py2_pickle(
            {"batch_label": _Py2Str(f"training batch {b + 1} of 5".encode()), "labels": labels[lo:hi], "data": images[lo:hi],
             "filenames": [_Py2Str(f"train_{i}.png".encode()) for i in range(lo, hi)]},
            folder / f"data_batch_{b + 1}")
    sums["test_batch"] = _py2_pickle(
        {"batch_label": _Py2Str(b"testing batch 1 of 1"), "labels": labels[n_train:], "data": images[n_train:],
         "filenames": [_Py2Str(f"test_{i}.png".encode()) for i in range(n_test)]},
        folder / "test_batch")
    sums["batches.meta"] = _py2_pickle(
        {"num_cases_per_batch": max(1, n_train // 5), "label_names": [_Py2Str(c.encode()) for c in CIFAR10_CLASSES], "num_vis": 3072},
        folder / "batches.meta")
    return sums


def cifar10_checksums(sums: dict[str, str]) -> dict[str, Any]:
    """torchvision.datasets.CIFAR10's class attributes (train_list, test_list, meta) for files written by
    write_cifar10, to set with monkeypatch.setattr so its integrity check and reader run on them."""
    return {
        "train_list": [[f"data_batch_{b}", sums[f"data_batch_{b}"]] for b in range(1, 6)],
        "test_list": [["test_batch", sums["test_batch"]]],
        "meta": {"filename": "batches.meta", "key": "label_names", "md5": sums["batches.meta"]},
    }


# --------------------------------------------------------------------------- sweep folders without training

FAKE_GRID = {"model.num_hidden": [15, 30, 60, 120, 240], "optimizer.lr": [0.001, 0.003, 0.01, 0.03, 0.1, 0.3],
             "model.activation": ["relu", "tanh", "gelu"], "optimizer.momentum": [0.0, 0.5, 0.9, 0.99]}


def _fake_quality(params: dict[str, Any]) -> float:
    """How good a configuration truly is (the best validation accuracy it reaches): best at lr 0.01, 60 units."""
    lr, hidden = float(params.get("optimizer.lr", 0.01)), float(params.get("model.num_hidden", 60))
    momentum = float(params.get("optimizer.momentum", 0.9))
    act = {"relu": 0.0, "gelu": 0.002, "tanh": -0.006}.get(str(params.get("model.activation", "relu")), 0.0)
    penalty = 0.012 * (np.log10(lr) + 2) ** 2 + 0.006 * abs(np.log2(hidden / 60)) + 0.02 * (momentum - 0.9) ** 2
    return 0.955 - penalty + act


def _write_fake_job(job_dir: Path, overrides: list[str], cwd: Path, quality: float, epochs: int, status: str,
                    rng: np.random.Generator, searched: Optional[dict[str, str]] = None) -> dict:
    """One binary-classification job folder as sweep.train leaves it (.hydra/, history.csv, metrics.json,
    train.log, checkpoint placeholders); returns its metrics.json. `searched`: an Optuna trial's
    hydra.sweeper.params, which Hydra records in the job's .hydra/hydra.yaml."""
    import yaml

    from sweep import rundir

    hydra = job_dir / rundir.HYDRA
    hydra.mkdir(parents=True, exist_ok=True)
    (hydra / rundir.OVERRIDES).write_text(yaml.safe_dump(overrides))
    record: dict[str, Any] = {"runtime": {"cwd": str(cwd)}, "mode": "MULTIRUN"}
    if searched:
        record["sweeper"] = {"params": searched}
    (hydra / rundir.HYDRA_RECORD).write_text(yaml.safe_dump({"hydra": record}))
    history = []
    for e in range(1, epochs + 1):
        acc = quality - 0.25 * np.exp(-e / 2.5) + float(rng.normal(0, 0.002))
        history.append({"epoch": e, "iterations": 32 * e, "train_loss": 1.0 - acc - 0.02, "train_acc": acc + 0.01,
                        "val_loss": 1.02 - acc + 0.002 * e, "val_acc": acc, "seconds": 0.8 * e})
    rundir.write_history(job_dir, history, ["loss", "acc"])
    (job_dir / rundir.LOG).write_text("".join(f"epoch {e}/{epochs}\n" for e in range(1, epochs + 1)))
    (job_dir / rundir.CHECKPOINTS).mkdir(exist_ok=True)
    for name in (rundir.BEST, rundir.LAST):
        (job_dir / rundir.CHECKPOINTS / name).write_bytes(b"")  # placeholders: the report never opens them
    best = max(history, key=lambda r: r["val_acc"])
    failed = status == "failed"
    values = {f"{split}_{m}": best[f"{'val' if split == 'best_val' else 'train'}_{m}"]
              for split in ("best_val", "train") for m in ("loss", "acc")}
    values.update({f"test_{m}": None if failed else best[f"val_{m}"] * 0.99 for m in ("loss", "acc")})
    result = rundir.RunResult(status=status, monitor="val_acc", direction="maximize", task="binary",
                              best_epoch=best["epoch"], objective=None if failed else best["val_acc"],
                              epochs_completed=epochs, seconds=0.8 * epochs, values=values,
                              error="training diverged (train_loss=nan); lower optimizer.lr" if failed else None)
    rundir.write_result(job_dir, result)
    return result.to_json()


def _grid(n_configs: int) -> list[dict[str, Any]]:
    """The first n_configs points of FAKE_GRID's product, using as few keys (and values of the last) as fit."""
    import itertools

    keys, size = [], 1
    for key, values in FAKE_GRID.items():
        keys.append(key)
        if size * len(values) >= n_configs:
            break
        size *= len(values)
    lists = [FAKE_GRID[k] for k in keys]
    lists[-1] = lists[-1][: -(-n_configs // size)]
    return [dict(zip(keys, p)) for p in itertools.product(*lists)][:n_configs]


def write_sweep(sweep_dir: Path, n_runs: int, seeds: int = 1, epochs: int = 15, rng_seed: int = 0) -> Path:
    """A basic multirun's folder (`-m key=a,b,... seed=1,..,seeds`) of n_runs binary-classification jobs, as
    sweep.train leaves it, without training: for the report's tests and for looking at its figures. Each
    configuration's seeds scatter around its true quality with a standard deviation of 0.004."""
    import yaml

    from sweep import rundir

    rng = np.random.default_rng(rng_seed)
    configs = _grid(max(1, -(-n_runs // seeds)))
    points = [(c, s) for c in configs for s in range(1, seeds + 1)][:n_runs]
    swept = {k: [v for v in FAKE_GRID[k] if any(c[k] == v for c, _ in points)] for k in configs[0]}
    task = [f"{k}={','.join(map(str, v))}" for k, v in swept.items()]
    task += [f"seed={','.join(map(str, range(1, seeds + 1)))}"] if seeds > 1 else []
    sweep_dir.mkdir(parents=True, exist_ok=True)
    (sweep_dir / rundir.MULTIRUN).write_text(yaml.safe_dump({"hydra": {"overrides": {"task": task, "hydra": []}}}))
    for n, (config, seed) in enumerate(points):
        overrides = [f"{k}={v}" for k, v in config.items()] + ([f"seed={seed}"] if seeds > 1 else [])
        quality = _fake_quality(config) + float(rng.normal(0, 0.004))
        _write_fake_job(sweep_dir / f"job_{n}", overrides, sweep_dir.parent, quality, epochs, "completed", rng)
    return sweep_dir


def write_optuna_sweep(sweep_dir: Path, n_trials: int, epochs: int = 15, rng_seed: int = 0) -> Path:
    """An Optuna sweep's folder (search=optuna's space: lr searched on a log scale, momentum and num_hidden
    on linear ones, batch size a choice) of n_trials random-search trials, without training: a real Optuna
    study in study.db (its space recorded as the sweeper records it), trials.csv and
    optimization_results.yaml as the sweeper writes them, trial folders with trial.json. Every tenth trial
    is pruned after 3 epochs (its value: the last one reported), every 25th fails after 4."""
    import json

    import optuna
    from optuna.trial import TrialState, create_trial

    from sweep import rundir
    from sweep.space import parse_space, space_record
    from sweep.study import DIR_ATTR, FAILURE_ATTR, FIXED_ATTR, SPACE_ATTR, write_results

    searched = {"model.num_hidden": "int(interval(8, 256))", "optimizer.lr": "tag(log, interval(1e-4, 0.3))",
                "optimizer.momentum": "interval(0.0, 0.99)", "data.batch_size": "choice(16, 32, 64, 128)"}
    space = parse_space(searched, [])
    rng = np.random.default_rng(rng_seed)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{(sweep_dir / 'study.db').resolve()}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="fake", storage=url, direction="maximize")
    study.set_user_attr(FIXED_ATTR, {"data.root": "/data/mnist"})
    study.set_user_attr(SPACE_ATTR, space_record(space))
    states = {"completed": TrialState.COMPLETE, "pruned": TrialState.PRUNED, "failed": TrialState.FAIL}
    for number in range(n_trials):
        params = {"model.num_hidden": int(rng.integers(8, 257)),
                  "optimizer.lr": float(10 ** rng.uniform(-4, np.log10(0.3))),
                  "optimizer.momentum": float(rng.uniform(0.0, 0.99)),
                  "data.batch_size": int(rng.choice([16, 32, 64, 128]))}
        status = "failed" if number % 25 == 24 else "pruned" if number % 10 == 9 else "completed"
        name = f"trial_{number:04d}"
        metrics = _write_fake_job(sweep_dir / name, [f"{k}={v}" for k, v in params.items()], sweep_dir.parent,
                                  _fake_quality(params) + float(rng.normal(0, 0.004)),
                                  {"pruned": 3, "failed": 4}.get(status, epochs), status, rng, searched)
        value = None if status == "failed" else metrics["best_val_acc"]
        attrs = {DIR_ATTR: name, **({FAILURE_ATTR: metrics["error"]} if status == "failed" else {})}
        study.add_trial(create_trial(params=params, distributions=space.distributions, state=states[status],
                                     value=value, user_attrs=attrs,
                                     intermediate_values={3: value} if status == "pruned" else None))
        (sweep_dir / name / rundir.TRIAL).write_text(json.dumps({
            "number": number, "study_name": "fake", "storage": url, "params": params,
            "state": states[status].name, "value": value}))
    write_results(study, sweep_dir, url)
    return sweep_dir
