"""Wall time of the run-comparison report over a large synthetic sweep (no training).

    python bench/report_bench.py              # 500 jobs: `python -m sweep.report DIR` 5 times, load_runs 5 times
    python bench/report_bench.py --jobs 2000  # a bigger sweep
    python bench/report_bench.py --smoke      # 20 jobs, one run of each: checks the bench still runs

The job folders hold the real file formats (.hydra/overrides.yaml, .hydra/hydra.yaml, metrics.json,
history.csv, train.log) with a grid of model.num_hidden x optimizer.lr x seed, a few failed, pruned,
interrupted and running jobs among them. The report is timed as a whole process, as a user runs it
(imports, table, report files, plots), and load_runs alone in-process; medians are printed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import run_timed

REPO = Path(__file__).resolve().parent.parent
HIDDEN = [15, 30, 60, 120, 240]
LRS = [0.001, 0.003, 0.01, 0.03, 0.1]
EPOCHS = 15


def write_job(job_dir: Path, overrides: list[str], cwd: Path, rng: np.random.Generator, hidden: int, lr: float,
              fate: str) -> None:
    """One job folder as sweep.train leaves it: completed, pruned, failed, interrupted or running."""
    hydra = job_dir / ".hydra"
    hydra.mkdir(parents=True)
    (hydra / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    (hydra / "hydra.yaml").write_text(f"hydra:\n  runtime:\n    cwd: {cwd}\n  mode: MULTIRUN\n")
    ceiling = 0.97 - 0.02 * abs(math.log10(lr) + 2) - 0.01 * abs(math.log2(hidden / 60))
    epochs = {"completed": EPOCHS, "pruned": 4, "failed": 3, "interrupted": 6, "running": 2}[fate]
    rows, t = [], 0.0
    for e in range(1, epochs + 1):
        t += 0.8 + 0.1 * rng.random()
        val_acc = ceiling - 0.4 * math.exp(-e / 3) + rng.normal(0, 0.004)
        rows.append(f"{e},{e * 32},{1 - val_acc:.6f},{val_acc + 0.01:.6f},{1.1 - val_acc:.6f},{val_acc:.6f},{t:.4f}")
    (job_dir / "history.csv").write_text(
        "epoch,iterations,train_loss,train_acc,val_loss,val_acc,seconds\n" + "\n".join(rows) + "\n")
    (job_dir / "train.log").write_text("".join(f"epoch {e}/{EPOCHS}\n" for e in range(1, epochs + 1)))
    if fate in ("interrupted", "running"):
        (job_dir / "checkpoints").mkdir()
        (job_dir / "checkpoints" / "last.pt").write_bytes(b"")
        if fate == "interrupted":
            old = time.time() - 3600
            for p in (job_dir / "train.log", job_dir / "history.csv", job_dir / "checkpoints" / "last.pt",
                      hydra / "overrides.yaml"):
                os.utime(p, (old, old))
        return
    best = max(range(epochs), key=lambda i: float(rows[i].split(",")[5]))
    fields = rows[best].split(",")
    metrics = {
        "best_epoch": best + 1, "best_val_acc": float(fields[5]), "best_val_loss": float(fields[4]),
        "train_acc": float(fields[3]), "test_acc": None if fate == "failed" else float(fields[5]) - 0.005,
        "epochs_completed": epochs, "seconds": t, "status": fate, "monitor": "val_acc",
        "objective": None if fate == "failed" else float(fields[5]),
        "error": "training diverged at epoch 4 (train_loss=nan, val_loss=nan); lower optimizer.lr"
        if fate == "failed" else None,
    }
    (job_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")


def make_sweep(sweep_dir: Path, n_jobs: int) -> Path:
    """n_jobs job folders over a hidden x lr x seed grid, as `-m model.num_hidden=... optimizer.lr=... seed=...`."""
    rng = np.random.default_rng(0)
    sweep_dir.mkdir(parents=True)
    (sweep_dir / "multirun.yaml").write_text("hydra:\n  sweeper:\n    _target_: hydra._internal.core_plugins."
                                             "basic_sweeper.BasicSweeper\n")
    seeds = range(1, n_jobs // (len(HIDDEN) * len(LRS)) + 2)
    grid = itertools.product(seeds, HIDDEN, LRS)  # seed varies slowest
    for n, (seed, hidden, lr) in zip(range(n_jobs), grid):
        fate = ("running" if n == n_jobs - 1 else "interrupted" if n == n_jobs - 2 else
                "failed" if n % 50 == 7 else "pruned" if n % 25 == 3 else "completed")
        overrides = ["data.root=/data/mnist", f"trainer.epochs={EPOCHS}", f"model.num_hidden={hidden}",
                     f"optimizer.lr={lr}", f"seed={seed}"]
        write_job(sweep_dir / f"job_{n}", overrides, sweep_dir.parent, rng, hidden, lr, fate)
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
    parser.add_argument("--smoke", action="store_true", help="20 jobs, one run of each, no warm-up")
    args = parser.parse_args()
    n_jobs, runs = (20, 1) if args.smoke else (args.jobs, args.runs)
    with tempfile.TemporaryDirectory(prefix="report-bench-") as tmp:
        sweep_dir = make_sweep(Path(tmp) / "sweep", n_jobs)
        if not args.smoke:
            time_cli(sweep_dir)  # warm-up: file cache, .pyc files
        cli = [time_cli(sweep_dir) for _ in range(runs)]
        time_load_runs(sweep_dir)  # warm-up: imports pandas and sweep.report
        api = [time_load_runs(sweep_dir) for _ in range(runs)]
        print(summary(f"python -m sweep.report over {n_jobs} jobs (whole process: table, files, plots)", cli))
        print(summary(f"load_runs over {n_jobs} jobs (in-process)", api))


if __name__ == "__main__":
    main()
