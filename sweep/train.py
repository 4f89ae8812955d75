"""Train one configuration: checkpoint every epoch, select the best epoch on validation data only,
then evaluate the test split once, on that checkpoint.

    python -m sweep.train [overrides]        # the CLI (sweep.cli)
    train(cfg, run_dir) -> RunResult         # the same, as a plain function

Everything a run needs is built first, by `sweep.build.prepare(cfg)`, before anything is written; the
epochs are `sweep.loop`'s, the files `sweep.rundir`'s.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from omegaconf import DictConfig, OmegaConf

from sweep import checkpoint, device, rundir, trial
from sweep.build import Prepared, build_model, build_optimizer, build_scheduler, interval, prepare, split
from sweep.errors import CheckpointError, RunDirError, TrainingDiverged
from sweep.loop import Loader, evaluate, is_better, select_best_epoch, train_epoch
from sweep.rundir import RunResult
from sweep.tasks import Accumulator

log = logging.getLogger("sweep.train")  # not __name__: that is "__main__" under -m

# Called after every epoch with (epoch, monitored validation value); returning True stops the run ("pruned").
EpochHook = Callable[[int, float], bool]


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a run: the CLI prints where it stopped and how to continue."""

    def __init__(self, run_dir: Path, epochs_done: int) -> None:
        super().__init__(f"interrupted after epoch {epochs_done}")
        self.run_dir, self.epochs_done = run_dir, epochs_done
        self.sweep_dir: Optional[Path] = None  # set by the CLI when the run is a job of a multirun


# --------------------------------------------------------------------------- the run


def _row(epoch: int, iterations: int, train_loss: float, train_values: dict, val_values: dict, names: list[str],
         seconds: float) -> dict:
    """One history.csv row: train_<m> and val_<m> for every metric m, and the cumulative compute time."""
    row: dict[str, Any] = {"epoch": epoch, "iterations": iterations}
    row.update({f"train_{m}": (train_loss if m == "loss" else train_values[m]) for m in names})
    row.update({f"val_{m}": val_values[m] for m in names})
    row["seconds"] = round(seconds, 4)
    return row


def _result(prep: Prepared, history: list[dict], status: str, seconds: float, test: Optional[dict] = None,
            error: Optional[str] = None) -> RunResult:
    """metrics.json's values, all taken from the epoch selected on validation (test_<m> once known)."""
    task, monitor = prep.task, prep.monitor
    names = task.metric_names
    finite = [r for r in history if math.isfinite(r[monitor])]
    chosen = history[select_best_epoch(history, monitor, task.higher_is_better(monitor)) - 1] if finite else None
    values: dict[str, Optional[float]] = {}
    for m in names:
        values[f"best_val_{m}"] = chosen[f"val_{m}"] if chosen else None
        values[f"train_{m}"] = chosen[f"train_{m}"] if chosen else None
        values[f"test_{m}"] = (test or {}).get(m)
    return RunResult(status=status, monitor=monitor, direction=task.direction(monitor), task=task.name,
                     best_epoch=chosen["epoch"] if chosen else None,
                     objective=chosen[monitor] if chosen and status != "failed" else None,
                     epochs_completed=len(history), seconds=round(seconds, 3), values=values, error=error)


def _log_epoch(row: dict, epochs: int, best: dict, prep: Prepared) -> None:
    """One console and train.log line per epoch, with the best epoch so far."""
    shown = "  ".join(f"{k} {row[k]:.4f}" for k in row if k.startswith(("train_", "val_")) and math.isfinite(row[k]))
    log.info("epoch %d/%d  %s  (best %s %.4f @ epoch %d)  %.1fs", row["epoch"], epochs, shown, prep.monitor,
             best[prep.monitor], best["epoch"], row["seconds"])


@contextlib.contextmanager
def _writing(run_dir: Path, what: str) -> Iterator[None]:
    """A write that fails (a full disk, a file too large, no permission) is one line, naming what was being
    written and that the run can continue from its last complete epoch."""
    try:
        yield
    except OSError as e:
        raise RunDirError(f"cannot write {what} in {run_dir} ({e.strerror or e}): free space (or raise the file "
                          "size limit) or choose a writable hydra.run.dir; the run continues from its last complete "
                          "epoch with resume=true") from None


def _write_epoch(prep: Prepared, run_dir: Path, state: dict, improved: bool, history: list[dict],
                 curve: list[dict]) -> None:
    """Checkpoint files (epoch, best, last: in that order, so last.pt never points past best.pt), then history.
    With no epoch files kept, none is written: a kill before last.pt then redoes the epoch, bit for bit."""
    ckpt_dir = run_dir / rundir.CHECKPOINTS
    keep = checkpoint.epoch_files_kept(prep.cfg.trainer.keep_checkpoints, trial.current() is not None)
    paths = [] if keep == 0 else [checkpoint.epoch_path(ckpt_dir, state["epoch"])]
    if improved:
        paths.append(ckpt_dir / rundir.BEST)
    paths.append(ckpt_dir / rundir.LAST)
    with _writing(run_dir, f"the checkpoint of epoch {state['epoch']}"):
        checkpoint.save(state, paths)
        checkpoint.prune_epoch_files(ckpt_dir, keep)
        rundir.write_history(run_dir, history, prep.task.metric_names)
        if prep.cfg.trainer.eval_every:
            rundir.write_iterations(run_dir, curve, prep.task.metrics[0].name)


def train(cfg: DictConfig, run_dir: Path | str, epoch_hook: Optional[EpochHook] = None,
          prepared: Optional[Prepared] = None) -> RunResult:
    """Train, checkpoint and select as configured, writing every output into run_dir.

    Raises TrainingDiverged (after writing a failed metrics.json), a UserError, or Interrupted on Ctrl-C.
    """
    run_dir = Path(run_dir)
    prep = prepared or prepare(cfg)
    cfg, monitor = prep.cfg, prep.monitor
    resolved = OmegaConf.to_container(cfg, resolve=True)
    log.info("run directory: %s", run_dir)
    try:
        stored = rundir.stored_result(run_dir, resolved, cfg.trainer.epochs) if cfg.resume else None
        if stored is not None:
            return _stored(run_dir, stored, monitor)
        state, interrupted = rundir.resume_state(run_dir, resolved, cfg.resume)
        return _run(prep, run_dir, state, interrupted, resolved, epoch_hook)
    except KeyboardInterrupt:
        raise Interrupted(run_dir, _epochs_saved(run_dir / rundir.CHECKPOINTS)) from None


def _epochs_saved(ckpt_dir: Path) -> int:
    """The epoch that resume=true will start after: the newest epoch file's, else last.pt's."""
    saved = checkpoint.epoch_files(ckpt_dir)[-1:]
    if saved:
        return saved[0][0]
    return checkpoint.load(ckpt_dir / rundir.LAST)["epoch"] if (ckpt_dir / rundir.LAST).exists() else 0


def _stored(run_dir: Path, stored: RunResult, monitor: str) -> RunResult:
    """A run that already finished: its stored result, without training (a failed one raises again)."""
    log.info("%s already finished (%s): returning its stored result without training", run_dir, stored.status)
    if stored.status == "failed":
        raise TrainingDiverged(stored.error or "the stored run failed")
    last = run_dir / rundir.CHECKPOINTS / rundir.LAST
    if not (run_dir / rundir.CURVES).exists() and last.exists():  # killed before its figure was drawn
        _draw(run_dir, checkpoint.load(last)["history"], stored.best_epoch, monitor, stored.status)
    log.info("results in %s", run_dir)
    return stored


def _run(prep: Prepared, run_dir: Path, state: Optional[dict], interrupted: bool, resolved: dict,
         epoch_hook: Optional[EpochHook]) -> RunResult:
    """The epochs still to train (after those in `state`), then selection and the test evaluation."""
    cfg, task, monitor, compute = prep.cfg, prep.task, prep.monitor, prep.compute
    higher = task.higher_is_better(monitor)
    history: list[dict] = [dict(r) for r in state["history"]] if state is not None else []
    device.seed_everything(cfg.seed)
    model = build_model(cfg, prep.input_shape, prep.num_outputs).to(compute.device)
    optimizer = build_optimizer(cfg, model.parameters())
    scheduler = build_scheduler(cfg, optimizer, cfg.trainer.epochs, len(prep.train))
    per_iteration = scheduler if interval(cfg) == "iteration" else None
    curve: list[dict] = []
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None and state.get("scheduler") is not None:
            scheduler.load_state_dict(state["scheduler"])
        if compute.scaler is not None and state.get("scaler") is not None:
            compute.scaler.load_state_dict(state["scaler"])
        curve = [dict(r) for r in state.get("curve", [])]
        device.set_rng_state(state["rng"], compute.device)
        if interrupted:  # a kill fell between the epoch file and best.pt/last.pt: finish those writes first
            best_epoch = select_best_epoch(history, monitor, higher)
            _write_epoch(prep, run_dir, state, best_epoch == state["epoch"], history, curve)
        log.info("resuming %s after epoch %d", run_dir, state["epoch"])
    with _writing(run_dir, "the checkpoints folder"):
        (run_dir / rundir.CHECKPOINTS).mkdir(parents=True, exist_ok=True)

    best: Optional[dict] = None
    for row in history:
        if is_better(row[monitor], None if best is None else best[monitor], higher):
            best = row
    names = task.metric_names
    compute_s = history[-1]["seconds"] if history else 0.0  # training and evaluation, without I/O
    wall_before = state["wall_seconds"] if state is not None else 0.0
    started = time.perf_counter()
    stopped_early = False
    every = cfg.trainer.eval_every
    iters = len(prep.train)
    for epoch in range(len(history) + 1, cfg.trainer.epochs + 1):
        epoch_start = time.perf_counter()

        def record(i: int, batch_loss: float, epoch: int = epoch) -> None:
            """The seed's per-iteration curves: the task's first metric on the whole train and val splits."""
            iteration = (epoch - 1) * iters + i
            if iteration % every == 0:
                metric = task.metrics[0].name
                curve.append({"iteration": iteration, "epoch": epoch, "batch_loss": batch_loss,
                              **{f"{s}_{metric}": evaluate(model, loader, compute, with_loss=False)[metric]
                                 for s, loader in (("train", prep.train), ("val", prep.val))}})

        running = None if cfg.trainer.eval_train else Accumulator(task)
        train_loss = train_epoch(model, optimizer, prep.train, compute, epoch, per_iteration,
                                 record if every else None, running)
        if scheduler is not None and per_iteration is None:
            scheduler.step()
        train_values = (evaluate(model, prep.train, compute, with_loss=False) if running is None
                        else running.compute())
        val_values = evaluate(model, prep.val, compute)
        compute_s += time.perf_counter() - epoch_start
        row = _row(epoch, epoch * iters, train_loss, train_values, val_values, names, compute_s)
        if not (math.isfinite(train_loss) and math.isfinite(val_values["loss"])):
            msg = (f"training diverged at epoch {epoch} (train_loss={train_loss}, val_loss={val_values['loss']}); "
                   "lower optimizer.lr")
            with _writing(run_dir, rundir.METRICS):
                rundir.write_result(run_dir, _result(prep, history, "failed", compute_s, error=msg))
            raise TrainingDiverged(msg)
        history.append(row)
        improved = is_better(row[monitor], None if best is None else best[monitor], higher)
        if improved:
            best = row
        _write_epoch(prep, run_dir, {
            "epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "scaler": compute.scaler.state_dict() if compute.scaler is not None else None,
            "history": history, "curve": curve, "rng": device.rng_state(compute.device),
            "device": compute.device.type, "config": resolved,
            "wall_seconds": wall_before + time.perf_counter() - started,
        }, improved, history, curve)
        _log_epoch(row, cfg.trainer.epochs, best, prep)
        if epoch_hook is not None and epoch_hook(epoch, row[monitor]):
            log.info("stopped early after epoch %d (pruned)", epoch)
            stopped_early = True
            break

    # Selection is final before the test split is even built.
    best_epoch = select_best_epoch(history, monitor, higher)
    test = evaluate_selected(prep, run_dir / rundir.CHECKPOINTS / rundir.BEST, best_epoch)
    result = _result(prep, history, "pruned" if stopped_early else "completed",
                     wall_before + time.perf_counter() - started, test=test)
    _draw(run_dir, history, best_epoch, monitor, result.status)
    with _writing(run_dir, rundir.METRICS):
        rundir.write_result(run_dir, result)
    _warn_if_trivial(prep, result)
    shown = ", ".join(f"test_{m} {v:.4f}" for m, v in test.items())
    log.info("selected epoch %d on %s: %s %.4f; %s (test split used once, after selection)", best_epoch, monitor,
             monitor, result.objective, shown)
    log.info("results in %s", run_dir)
    return result


def _draw(run_dir: Path, history: list[dict], best_epoch: int, monitor: str, status: str) -> None:
    """curves.png, titled with what sets the run apart and its status; a figure that cannot be drawn is a
    warning, never a failed run."""
    from sweep.plots import draw_curves

    title = f"{' '.join(_shown(o) for o in rundir.swept_values(run_dir)) or run_dir.name} · {status}"
    try:
        draw_curves(history, best_epoch, run_dir / rundir.CURVES, monitor, title=title)
    except Exception as e:
        log.warning("cannot draw %s: %s: %s", run_dir / rundir.CURVES, type(e).__name__, e)


def _shown(override: str) -> str:
    """"optimizer.lr=0.041921636" as "optimizer.lr=0.0419": a title to read, not to copy."""
    key, _, value = override.partition("=")
    try:
        number = float(value)
    except ValueError:
        return override
    return f"{key}={number:.3g}" if any(c in value for c in ".eE") else override


def _warn_if_trivial(prep: Prepared, result: RunResult) -> None:
    """A classifier no better than always answering the most common class has learned nothing."""
    majority = prep.val.majority  # known: the validation split was evaluated every epoch
    if not prep.task.classifies or majority is None or result.best_val_acc is None:
        return
    if result.best_val_acc <= majority:
        log.warning("the selected val_acc %.4f is no better than always predicting the most common class (%.4f): "
                    "the model learned nothing; try another optimizer.lr or more epochs", result.best_val_acc, majority)


def evaluate_selected(prep: Prepared, best_path: Path, best_epoch: int) -> dict[str, float]:
    """The only place the test split is read: once, on the checkpoint that validation selected."""
    state = checkpoint.load(best_path)
    if state["epoch"] != best_epoch:
        raise CheckpointError(f"{best_path} holds epoch {state['epoch']}, but validation selected epoch "
                              f"{best_epoch}; copy checkpoints/epoch_{best_epoch:03d}.pt to best.pt and resume")
    model = build_model(prep.cfg, prep.input_shape, prep.num_outputs).to(prep.compute.device)
    model.load_state_dict(state["model"])
    test_data = split(prep.datamodule, "test_dataset", prep.cfg.data._target_)
    test = Loader(test_data, prep.task, prep.train.batch_size, False, prep.train.num_workers, prep.cfg.seed,
                  prep.compute)
    return evaluate(model, test, prep.compute)


if __name__ == "__main__":
    from sweep.cli import main

    main()
