"""Small, learnable data sets in real file formats (IDX, CSV, PNG folders, CIFAR-10 batches), for tests,
benchmarks' smoke mode and demos: the real readers run on them, nothing is mocked."""

from __future__ import annotations

import gzip
import hashlib
import pickle
import struct
from pathlib import Path
from typing import Any, Sequence

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
