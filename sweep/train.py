"""Train one configuration: checkpoint every epoch, select the best epoch on validation data only,
then evaluate the test split once on that checkpoint.

`train(cfg, run_dir)` is a plain function; `main` is the thin Hydra wrapper that returns the objective
(the selected epoch's validation accuracy) to whichever sweeper runs it.
"""

from __future__ import annotations

import sys

if __name__ == "__main__":  # the CLI only: start the sidecar now, so its imports overlap torch's (1-2 s)
    from sweep import sidecar

    if sidecar.wanted(sys.argv[1:]):
        sidecar.start()

import gc
import json
import logging
import math
import os
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from sweep import atomic, checkpoint, optim, sidecar
from sweep.config import validate
from sweep.data import Split, load_test, load_train_val, num_outputs, require_test_split
from sweep.errors import CheckpointError, RunDirError, TrainingDiverged, UserError
from sweep.model import build_model

log = logging.getLogger("sweep.train")  # not __name__: that is "__main__" under -m

HISTORY_COLUMNS = ["epoch", "iterations", "train_loss", "train_acc", "val_loss", "val_acc", "seconds"]
CURVE_COLUMNS = ["iteration", "epoch", "batch_loss", "train_acc", "val_acc"]
# Keys that may change between an interrupted run and its resumption without changing its results.
RESUMABLE_KEYS = {"resume", "trainer.epochs", "trainer.keep_checkpoints", "data.root", "data.download"}
EVAL_CHUNK = 8192

# Called after every epoch with (epoch, history row); returning True stops the run early ("pruned").
EpochHook = Callable[[int, dict], bool]


@dataclass
class RunResult:
    """What metrics.json holds. test_acc is filled only after selection is final."""

    best_epoch: Optional[int]
    best_val_acc: Optional[float]
    best_val_loss: Optional[float]
    train_acc: Optional[float]
    test_acc: Optional[float]
    epochs_completed: int
    seconds: float
    status: str
    objective: Optional[float]
    monitor: str = "val_acc"
    error: Optional[str] = None
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        d = asdict(self)
        d.update(d.pop("extra"))
        return d


# --------------------------------------------------------------------------- selection


def is_better(row: dict, incumbent: Optional[dict], monitor: str) -> bool:
    """Strictly better on the monitored validation metric, so ties keep the earlier epoch."""
    if incumbent is None:
        return True
    if monitor == "val_acc":
        return row["val_acc"] > incumbent["val_acc"]
    return row["val_loss"] < incumbent["val_loss"]


def select_best_epoch(history: list[dict], monitor: str) -> int:
    """The epoch (from 1) with the best validation metric. History rows never hold test numbers."""
    best: Optional[dict] = None
    for row in history:
        if not (math.isfinite(row["val_loss"]) and math.isfinite(row["val_acc"])):
            continue
        if is_better(row, best, monitor):
            best = row
    if best is None:
        raise TrainingDiverged("no epoch has finite validation metrics")
    return int(best["epoch"])


# --------------------------------------------------------------------------- one epoch


def _loss_fn(task: str) -> nn.Module:
    return nn.BCEWithLogitsLoss() if task == "binary" else nn.CrossEntropyLoss()


def _num_correct(logits: torch.Tensor, targets: torch.Tensor, task: str) -> int:
    if task == "binary":
        return int(((logits > 0).to(targets.dtype) == targets).sum())
    return int((logits.argmax(dim=1) == targets).sum())


@torch.no_grad()
def evaluate(model: nn.Module, split: Split, task: str, with_loss: bool = True) -> tuple[float, float]:
    """Mean loss (NaN when with_loss is False) and accuracy over a whole split, in eval mode."""
    was_training = model.training
    model.eval()
    loss_fn = _loss_fn(task) if with_loss else None
    total_loss, correct = 0.0, 0
    for start in range(0, len(split), EVAL_CHUNK):
        x = split.images[start : start + EVAL_CHUNK]
        y = split.targets[start : start + EVAL_CHUNK]
        logits = model(x)
        if loss_fn is not None:
            total_loss += float(loss_fn(logits, y)) * len(y)
        correct += _num_correct(logits, y, task)
    model.train(was_training)
    return (total_loss / len(split) if with_loss else math.nan), correct / len(split)


def build_optimizer(cfg: DictConfig, params: Any) -> optim.Optimizer:
    if cfg.name == "adam":
        return optim.Adam(params, lr=cfg.lr, betas=(cfg.momentum, 0.999), weight_decay=cfg.weight_decay)
    return optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def _epoch_order(seed: int, epoch: int, n: int) -> torch.Tensor:
    """A permutation that depends only on (seed, epoch), so a resumed run shuffles identically."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g)


def cosine_lr(base_lr: float, total_iterations: int) -> Callable[[int], float]:
    """Cosine decay from base_lr to 0 over the run: a closed form of the iteration, so resuming needs no state."""
    return lambda iteration: 0.5 * base_lr * (1.0 + math.cos(math.pi * iteration / total_iterations))


def train_epoch(model: nn.Module, optimizer: optim.Optimizer, train: Split, batch_size: int,
                task: str, order: Optional[torch.Tensor] = None,
                on_iteration: Optional[Callable[[int, float], None]] = None,
                lr_at: Optional[Callable[[int], float]] = None, first_iteration: int = 0) -> float:
    """One pass over the training split; returns the mean loss per example. The last batch may be smaller.

    lr_at maps the global iteration (first_iteration + i) to a learning rate, set before each step.
    """
    model.train()
    loss_fn = _loss_fn(task)
    n = len(train)
    total = 0.0
    for i, start in enumerate(range(0, n, batch_size)):
        if lr_at is not None:
            for group in optimizer.param_groups:
                group["lr"] = lr_at(first_iteration + i)
        if order is None:
            x, y = train.images[start : start + batch_size], train.targets[start : start + batch_size]
        else:
            idx = order[start : start + batch_size]
            x, y = train.images[idx], train.targets[idx]
        loss = loss_fn(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        batch_loss = loss.item()
        total += batch_loss * len(y)
        if on_iteration is not None:
            on_iteration(i + 1, batch_loss)
    return total / n


# --------------------------------------------------------------------------- run directory state


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flat(v, key + "."))
        else:
            out[key] = v
    return out


def _check_same_config(stored: dict, current: dict, run_dir: Path) -> None:
    a, b = _flat(stored), _flat(current)
    resumable = RESUMABLE_KEYS
    if b.get("optimizer.schedule", "constant") != "constant":
        resumable = resumable - {"trainer.epochs"}  # the schedule's length is part of the run
    for key in sorted(set(a) | set(b)):
        if key not in resumable and a.get(key) != b.get(key):
            raise RunDirError(
                f"{run_dir} was started with {key}={a.get(key)}, not {b.get(key)}: resume with the same "
                "config, or start a new run directory"
            )


def _stored_result(run_dir: Path, cfg: DictConfig) -> Optional[RunResult]:
    """The result of a run that already finished in run_dir (resume=true returns it without training)."""
    path = run_dir / "metrics.json"
    if not path.is_file():
        return None
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # metrics.json is written last and atomically; unreadable means unfinished
    status = stored.get("status")
    done = status in ("failed", "pruned") or (
        status == "completed" and stored.get("epochs_completed", 0) >= cfg.trainer.epochs
    )
    if not done:
        return None
    last = run_dir / "checkpoints" / "last.pt"
    if last.exists():  # the stored result must belong to this config, not an earlier run's
        _check_same_config(checkpoint.load(last)["config"], OmegaConf.to_container(cfg, resolve=True), run_dir)
    known = set(RunResult.__dataclass_fields__) - {"extra"}
    extra = {k: v for k, v in stored.items() if k not in known}
    return RunResult(**{k: stored.get(k) for k in known if k in stored}, extra=extra)


def _resume_state(cfg: DictConfig, run_dir: Path, repair: bool = False) -> Optional[dict]:
    """The state to continue from, or None for a fresh start; refuses to overwrite without resume=true.

    An epoch ends by writing epoch_NNN.pt, then best.pt, then last.pt. A kill between those writes leaves
    an epoch file newer than last.pt (or no last.pt at all): that file is complete, so the run continues
    from it, and with repair=True the interrupted best.pt and last.pt writes are finished first.
    """
    ckpt_dir = run_dir / "checkpoints"
    has_checkpoints = ckpt_dir.is_dir() and any(ckpt_dir.glob("*.pt"))
    if not cfg.resume:
        if has_checkpoints or (run_dir / "metrics.json").exists():
            raise RunDirError(
                f"{run_dir} already holds a run (checkpoints or metrics.json); add resume=true to continue "
                "it, or pick a new directory with hydra.run.dir=... (hydra.sweep.dir=... for -m)"
            )
        return None
    last = ckpt_dir / "last.pt"
    newest = checkpoint.epoch_files(ckpt_dir)[-1:]
    state = checkpoint.load(last) if last.exists() else None
    interrupted = bool(newest) and (state is None or newest[0][0] > state["epoch"])
    if interrupted:
        state = checkpoint.load(newest[0][1])
    if state is None:
        log.debug("resume=true but %s has no checkpoint yet: starting from epoch 1", run_dir)
        return None
    _check_same_config(state["config"], OmegaConf.to_container(cfg, resolve=True), run_dir)
    if interrupted and repair:
        paths = [last]
        if select_best_epoch(state["history"], cfg.trainer.monitor) == state["epoch"]:
            paths.insert(0, ckpt_dir / "best.pt")
        checkpoint.save(state, paths)
    return state


# --------------------------------------------------------------------------- outputs


def _finish_failed(run_dir: Path, cfg: DictConfig, history: list[dict], seconds: float, error: str) -> None:
    best = None
    if any(math.isfinite(r["val_acc"]) for r in history):
        best = next(r for r in history if r["epoch"] == select_best_epoch(history, cfg.trainer.monitor))
    result = RunResult(
        best_epoch=best["epoch"] if best else None,
        best_val_acc=best["val_acc"] if best else None,
        best_val_loss=best["val_loss"] if best else None,
        train_acc=best["train_acc"] if best else None,
        test_acc=None, epochs_completed=len(history), seconds=round(seconds, 3),
        status="failed", objective=None, monitor=cfg.trainer.monitor, error=error,
    )
    atomic.atomic_write_json(run_dir / "metrics.json", result.to_json())


def _log_epoch(row: dict, epochs: int, best: dict, monitor: str) -> None:
    log.info(
        "epoch %d/%d  train_loss %.4f  train_acc %.4f  val_loss %.4f  val_acc %.4f  (best %s %.4f @ epoch %d)  %.1fs",
        row["epoch"], epochs, row["train_loss"], row["train_acc"], row["val_loss"], row["val_acc"],
        monitor, best[monitor], best["epoch"], row["seconds"],
    )


# --------------------------------------------------------------------------- the run


def train(cfg: DictConfig, run_dir: Path | str, epoch_hook: Optional[EpochHook] = None) -> RunResult:
    """Train, checkpoint and select as configured, writing every output into run_dir."""
    cfg = validate(cfg)
    run_dir = Path(run_dir)
    monitor = cfg.trainer.monitor
    if cfg.resume:
        stored = _stored_result(run_dir, cfg)
        if stored is not None:
            log.info("%s already finished (%s): returning its stored result without training", run_dir, stored.status)
            if stored.status == "failed":
                raise TrainingDiverged(stored.error or "the stored run failed")
            curves, last = run_dir / "curves.png", run_dir / "checkpoints" / "last.pt"
            if not curves.exists() and last.exists():  # killed before its figure was drawn
                sidecar.draw_curves(checkpoint.load(last)["history"], stored.best_epoch, curves, title=run_dir.name)
            return stored
    state = _resume_state(cfg, run_dir, repair=True)

    train_split, val_split = load_train_val(cfg.data)
    require_test_split(cfg.data)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, num_outputs(cfg.data))
    optimizer = build_optimizer(cfg.optimizer, model.parameters())
    history: list[dict] = []
    curve: list[dict] = []
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        history = [dict(r) for r in state["history"]]
        curve = [dict(r) for r in state.get("curve", [])]
        torch.set_rng_state(state["rng_torch"])
        log.info("resuming %s after epoch %d", run_dir, state["epoch"])

    ckpt_dir = run_dir / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    task, batch_size = cfg.data.task, cfg.data.batch_size
    iters_per_epoch = math.ceil(len(train_split) / batch_size)
    best: Optional[dict] = None
    for row in history:
        if is_better(row, best, monitor):
            best = row
    # history's seconds: cumulative compute (training and per-epoch evaluation), without I/O
    compute = history[-1]["seconds"] if history else 0.0
    wall_before = state["wall_seconds"] if state is not None else 0.0
    started = time.perf_counter()
    stopped_early = False

    every = cfg.trainer.eval_every
    lr_at = None
    if cfg.optimizer.schedule == "cosine":
        lr_at = cosine_lr(cfg.optimizer.lr, cfg.trainer.epochs * iters_per_epoch)

    for epoch in range(len(history) + 1, cfg.trainer.epochs + 1):
        order = _epoch_order(cfg.seed, epoch, len(train_split)) if cfg.data.shuffle else None
        epoch_start = time.perf_counter()

        def record(i: int, batch_loss: float, epoch: int = epoch) -> None:
            """The seed's per-iteration curves: accuracy on the whole train and val subsets."""
            iteration = (epoch - 1) * iters_per_epoch + i
            if iteration % every == 0:
                curve.append({"iteration": iteration, "epoch": epoch, "batch_loss": batch_loss,
                              "train_acc": evaluate(model, train_split, task, with_loss=False)[1],
                              "val_acc": evaluate(model, val_split, task, with_loss=False)[1]})

        train_loss = train_epoch(model, optimizer, train_split, batch_size, task, order, record if every else None,
                                 lr_at, (epoch - 1) * iters_per_epoch)
        _, train_acc = evaluate(model, train_split, task)
        val_loss, val_acc = evaluate(model, val_split, task)
        compute += time.perf_counter() - epoch_start
        row = {
            "epoch": epoch, "iterations": epoch * iters_per_epoch,
            "train_loss": train_loss, "train_acc": train_acc, "val_loss": val_loss, "val_acc": val_acc,
            "seconds": round(compute, 4),
        }
        if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
            msg = (f"training diverged at epoch {epoch} (train_loss={train_loss}, val_loss={val_loss}); "
                   "lower optimizer.lr")
            _finish_failed(run_dir, cfg, history, row["seconds"], msg)
            raise TrainingDiverged(msg)
        history.append(row)
        improved = is_better(row, best, monitor)
        if improved:
            best = row
        paths = [checkpoint.epoch_path(ckpt_dir, epoch)]
        if improved:
            paths.append(ckpt_dir / "best.pt")
        paths.append(ckpt_dir / "last.pt")  # last, so last.pt never points past best.pt
        checkpoint.save({
            "epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "history": history, "curve": curve, "rng_torch": torch.get_rng_state(), "config": resolved,
            "wall_seconds": wall_before + time.perf_counter() - started,
        }, paths)
        checkpoint.prune_epoch_files(ckpt_dir, cfg.trainer.keep_checkpoints)
        atomic.atomic_write_csv(run_dir / "history.csv", history, HISTORY_COLUMNS)
        if every:
            atomic.atomic_write_csv(run_dir / "iterations.csv", curve, CURVE_COLUMNS)
        _log_epoch(row, cfg.trainer.epochs, best, monitor)
        if epoch_hook is not None and epoch_hook(epoch, row):
            log.info("stopped early after epoch %d (pruned)", epoch)
            stopped_early = True
            break

    # Selection is final before the test split is even loaded.
    best_epoch = select_best_epoch(history, monitor)
    test_acc = evaluate_selected(cfg, ckpt_dir / "best.pt", best_epoch)
    chosen = history[best_epoch - 1]
    result = RunResult(
        best_epoch=best_epoch, best_val_acc=chosen["val_acc"], best_val_loss=chosen["val_loss"],
        train_acc=chosen["train_acc"], test_acc=test_acc, epochs_completed=len(history),
        seconds=round(wall_before + time.perf_counter() - started, 3),
        status="pruned" if stopped_early else "completed",
        objective=chosen["val_acc"], monitor=monitor,
    )
    sidecar.draw_curves(history, best_epoch, run_dir / "curves.png", title=run_dir.name)
    atomic.atomic_write_json(run_dir / "metrics.json", result.to_json())
    log.info("selected epoch %d on %s: val_acc %.4f; test_acc %.4f (test split used once, after selection)",
             best_epoch, monitor, result.best_val_acc, test_acc)
    return result


def evaluate_selected(cfg: DictConfig, best_path: Path, best_epoch: int) -> float:
    """The only place the test split is read: once, on the checkpoint that validation selected."""
    state = checkpoint.load(best_path)
    if state["epoch"] != best_epoch:
        raise CheckpointError(f"{best_path} holds epoch {state['epoch']}, but validation selected epoch "
                              f"{best_epoch}; copy checkpoints/epoch_{best_epoch:03d}.pt to best.pt and resume")
    model = build_model(cfg.model, num_outputs(cfg.data))
    model.load_state_dict(state["model"])
    _, acc = evaluate(model, load_test(cfg.data), cfg.data.task)
    return acc


# --------------------------------------------------------------------------- CLI


def _hydra_main(cfg: DictConfig) -> float:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from sweep.pruning import epoch_hook_from_env

    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    try:
        result = train(cfg, run_dir, epoch_hook=epoch_hook_from_env())
    except UserError as e:
        log.error("%s", e)
        if hc.mode == RunMode.MULTIRUN:
            raise  # the sweeper records this job as failed
        raise SystemExit(2) from None
    except TrainingDiverged as e:
        log.error("%s", e)
        if hc.mode == RunMode.MULTIRUN:
            return float("nan")  # a failed trial: the sweep goes on
        raise SystemExit(1) from None
    return float(result.objective)


def preflight(argv: list[str]) -> None:
    """For a single run, check the config and the run directory before Hydra creates or rewrites anything.

    Multiruns are checked job by job; command lines with Hydra flags are left to Hydra.
    """
    if any(a.startswith("-") for a in argv):
        return
    from hydra import compose, initialize_config_dir

    from sweep.config import CONF_DIR

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=argv, return_hydra_config=True)
        run_dir = Path(str(cfg.hydra.run.dir))
    cfg = validate(cfg)
    if run_dir.is_dir():
        _resume_state(cfg, run_dir)  # refuses an overwrite; on resume, checks last.pt and the config
    load_train_val(cfg.data)  # cached: the run itself reuses what this reads
    require_test_split(cfg.data)


def _rejected_flags(e: ValueError) -> bool:
    """Hydra refuses conflicting flags (-m with --cfg, --resolve without --cfg) with a bare ValueError,
    raised from its flag checks before anything runs."""
    last = traceback.extract_tb(e.__traceback__)[-1]
    return last.name == "_run_hydra" and Path(last.filename).parts[-3:-1] == ("hydra", "_internal")


def cli() -> None:
    """Run Hydra, turning every user error (ours, Hydra's, OmegaConf's) into one line on stderr."""
    import hydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    os.environ.setdefault("HYDRA_FULL_ERROR", "1")  # let errors reach us instead of Hydra's printer
    main = hydra.main(version_base="1.3", config_path="../conf", config_name="config")(_hydra_main)
    try:
        preflight(sys.argv[1:])
        main()
    except (UserError, HydraException, OmegaConfBaseException) as e:
        msg = " ".join(line.strip() for line in str(e).strip().splitlines() if line.strip())
        cause = e.__cause__
        if isinstance(cause, OmegaConfBaseException) and str(cause).strip():
            msg += ": " + str(cause).strip().splitlines()[0]
        print(f"error: {msg}", file=sys.stderr)
        raise SystemExit(2) from None
    except ValueError as e:
        if not _rejected_flags(e):
            raise
        print(f"error: {e}; see python -m sweep.train --help", file=sys.stderr)
        raise SystemExit(2) from None
    finally:
        # The interpreter's last garbage collections walk torch's whole object graph: about 0.35 s per
        # process. Frozen objects are skipped; atexit handlers and file closes still run as usual.
        gc.freeze()


if __name__ == "__main__":
    cli()
