"""Wall time of the run-comparison report over a large synthetic sweep (no training).

    python bench/report_bench.py                   # 500 jobs: `python -m sweep.report DIR` 5 times, load_runs 5 times
    python bench/report_bench.py --jobs 2000       # a bigger sweep
    python bench/report_bench.py --task regression # jobs that monitored val_rmse (minimize)
    python bench/report_bench.py --smoke           # 20 jobs, one run of each: checks the bench still runs

The job folders hold the real file formats (.hydra/overrides.yaml, .hydra/hydra.yaml, metrics.json and
history.csv as sweep.rundir writes them, train.log) with a grid of model.num_hidden x optimizer.lr x seed,
a few failed, pruned, interrupted and running jobs among them. The report is timed as a whole process, as
a user runs it (imports, table, report files, plots), and load_runs alone in-process; medians are printed.
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from common import run_timed

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # sweep.rundir: the file formats, as training writes them

from sweep import rundir  # noqa: E402

HIDDEN = [15, 30, 60, 120, 240]
LRS = [0.001, 0.003, 0.01, 0.03, 0.1]
EPOCHS = 15
TASKS = {"binary": (["loss", "acc"], "val_acc", "maximize"),
         "regression": (["loss", "rmse", "mae"], "val_rmse", "minimize")}


def epoch_values(task: str, quality: float, noise: float) -> dict[str, float]:
    """One split's metrics for an epoch; quality in (0, 1): higher is a better model."""
    if task == "regression":
        rmse = 0.3 + 3.0 * (1 - quality) + noise
        return {"loss": rmse ** 2, "rmse": rmse, "mae": 0.8 * rmse}
    acc = quality + noise
    return {"loss": 1.1 - acc, "acc": acc}


def write_job(job_dir: Path, overrides: list[str], cwd: Path, rng: np.random.Generator, hidden: int, lr: float,
              fate: str, task: str = "binary") -> None:
    """One job folder as sweep.train leaves it: completed, pruned, failed, interrupted or running."""
    metrics, monitor, direction = TASKS[task]
    hydra = job_dir / rundir.HYDRA
    hydra.mkdir(parents=True)
    (hydra / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    (hydra / "hydra.yaml").write_text(f"hydra:\n  runtime:\n    cwd: {cwd}\n  mode: MULTIRUN\n")
    ceiling = 0.97 - 0.02 * abs(math.log10(lr) + 2) - 0.01 * abs(math.log2(hidden / 60))
    epochs = {"completed": EPOCHS, "pruned": 4, "failed": 3, "interrupted": 6, "running": 2}[fate]
    history, t = [], 0.0
    for e in range(1, epochs + 1):
        t += 0.8 + 0.1 * rng.random()
        quality = ceiling - 0.4 * math.exp(-e / 3)
        train = epoch_values(task, quality + 0.01, 0.0)
        val = epoch_values(task, quality, float(rng.normal(0, 0.004)))
        history.append({"epoch": e, "iterations": e * 32, **{f"train_{m}": v for m, v in train.items()},
                        **{f"val_{m}": v for m, v in val.items()}, "seconds": round(t, 4)})
    rundir.write_history(job_dir, history, metrics)
    (job_dir / rundir.LOG).write_text("".join(f"epoch {e}/{EPOCHS}\n" for e in range(1, epochs + 1)))
    if fate in ("interrupted", "running"):
        (job_dir / rundir.CHECKPOINTS).mkdir()
        (job_dir / rundir.CHECKPOINTS / rundir.LAST).write_bytes(b"")
        if fate == "interrupted":
            old = time.time() - 3600
            for p in (job_dir / rundir.LOG, job_dir / rundir.HISTORY, job_dir / rundir.CHECKPOINTS / rundir.LAST,
                      hydra / "overrides.yaml"):
                os.utime(p, (old, old))
        return
    pick = max if direction == "maximize" else min
    best = pick(history, key=lambda r: r[monitor])
    values = {f"best_val_{m}": best[f"val_{m}"] for m in metrics}
    values.update({f"train_{m}": best[f"train_{m}"] for m in metrics})
    values.update({f"test_{m}": None if fate == "failed" else best[f"val_{m}"] * 1.01 for m in metrics})
    result = rundir.RunResult(
        status=fate, monitor=monitor, direction=direction, task=task, best_epoch=best["epoch"],
        objective=None if fate == "failed" else best[monitor], epochs_completed=epochs, seconds=t, values=values,
        error="training diverged at epoch 4 (train_loss=nan, val_loss=nan); lower optimizer.lr"
        if fate == "failed" else None)
    rundir.write_result(job_dir, result)


def make_sweep(sweep_dir: Path, n_jobs: int, task: str = "binary") -> Path:
    """n_jobs job folders over a hidden x lr x seed grid, as `-m model.num_hidden=... optimizer.lr=... seed=...`."""
    rng = np.random.default_rng(0)
    sweep_dir.mkdir(parents=True)
    seeds = range(1, n_jobs // (len(HIDDEN) * len(LRS)) + 2)
    declared = [f"model.num_hidden={','.join(map(str, HIDDEN))}", f"optimizer.lr={','.join(map(str, LRS))}",
                f"seed={','.join(map(str, seeds))}"]  # Hydra's record of the sweep: what the report reads
    (sweep_dir / rundir.MULTIRUN).write_text(yaml.safe_dump({"hydra": {"overrides": {"task": declared}}}))
    grid = itertools.product(seeds, HIDDEN, LRS)  # seed varies slowest
    for n, (seed, hidden, lr) in zip(range(n_jobs), grid):
        fate = ("running" if n == n_jobs - 1 else "interrupted" if n == n_jobs - 2 else
                "failed" if n % 50 == 7 else "pruned" if n % 25 == 3 else "completed")
        overrides = ["data.root=/data/mnist", f"trainer.epochs={EPOCHS}", f"model.num_hidden={hidden}",
                     f"optimizer.lr={lr}", f"seed={seed}"]
        write_job(sweep_dir / f"job_{n}", overrides, sweep_dir.parent, rng, hidden, lr, fate, task)
    return sweep_dir


def time_cli(sweep_dir: Path) -> float:
    _, elapsed = run_timed([sys.executable, "-m", "sweep.report", str(sweep_dir)], cwd=sweep_dir.parent)
    if not (sweep_dir / "report_curves.png").is_file():
        sys.exit(f"error: python -m sweep.report wrote no report_curves.png in {sweep_dir}")
    return elapsed


def time_load_runs(sweep_dir: Path) -> float:
    from sweep.report import load_runs  # imported by the warm-up call, so not timed

    start = time.perf_counter()
    runs = load_runs(sweep_dir)
    elapsed = time.perf_counter() - start
    if len(runs) != sum(1 for _ in sweep_dir.glob("job_*")):
        sys.exit(f"error: load_runs read {len(runs)} rows from {sweep_dir}")
    return elapsed


def summary(name: str, times: list[float]) -> str:
    spread = f" (min {min(times):.3f}, max {max(times):.3f})" if len(times) > 1 else ""
    return f"{name}: median {statistics.median(times):.3f} s over {len(times)} run(s){spread}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=500, help="job folders in the synthetic sweep")
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each (after one warm-up CLI run)")
    parser.add_argument("--task", choices=sorted(TASKS), default="binary", help="what the jobs learned")
    parser.add_argument("--smoke", action="store_true", help="20 jobs, one run of each, no warm-up")
    args = parser.parse_args()
    n_jobs, runs = (20, 1) if args.smoke else (args.jobs, args.runs)
    with tempfile.TemporaryDirectory(prefix="report-bench-") as tmp:
        sweep_dir = make_sweep(Path(tmp) / "sweep", n_jobs, args.task)
        if not args.smoke:
            time_cli(sweep_dir)  # warm-up: file cache, .pyc files
        cli = [time_cli(sweep_dir) for _ in range(runs)]
        time_load_runs(sweep_dir)  # warm-up: imports pandas and sweep.report
        api = [time_load_runs(sweep_dir) for _ in range(runs)]
        print(summary(f"python -m sweep.report over {n_jobs} jobs (whole process: table, files, plots)", cli))
        print(summary(f"load_runs over {n_jobs} jobs (in-process)", api))


if __name__ == "__main__":
    main()
