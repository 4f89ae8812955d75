"""Idle workers: our asynchronous scheduler against upstream-style synchronous batches.

    python bench/async_workers.py           # 3 runs of each: 12 trials, 2 joblib workers
    python bench/async_workers.py --smoke   # one run of 4 trials each: checks the bench still runs

Trials are made deliberately unequal (trainer.epochs is sampled from {1, 10}). Upstream
hydra-optuna-sweeper launches batches of n_jobs trials and waits for the slowest of each batch; ours
starts a trial whenever one ends. The batch side is our sweeper with hydra.sweeper.synchronous=true,
which schedules exactly as upstream does: since our sampler is seeded per trial number, both sides then
run the very same trials, and only the scheduling differs. Both use the joblib launcher with 2
workers, a seeded random sampler and SQLite storage, and are read back from their studies: the span
from the first trial's start to the last trial's end, and
worker utilisation: the share of worker time spent in a trial, from the first trial's end (both
workers are up by then) to the last trial's end.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

import optuna

from common import run_timed, search_options
from sweep.fake_data import write_dataset

SWEEPERS = {
    "asynchronous (ours)": ["search=random", "hydra.sweeper.synchronous=false"],
    "synchronous batches": ["search=random", "hydra.sweeper.synchronous=true"],
}


def one_run(extra: list[str], root: Path, sweep_dir: Path, n_trials: int) -> dict:
    sweep_dir.mkdir(parents=True)
    storage = f"sqlite:///{sweep_dir / 'bench.db'}"
    cmd = [sys.executable, "-m", "sweep.train", "-m", *extra, "hydra/launcher=joblib", "hydra.sweeper.n_jobs=2",
           "hydra.sweeper.sampler.seed=1", f"hydra.sweeper.n_trials={n_trials}",
           f"hydra.sweeper.storage={storage}", "hydra.sweeper.study_name=bench", f"hydra.sweep.dir={sweep_dir}",
           f"data.root={root}", "data.train_size=4096", "data.val_size=256", "data.test_size=100",
           "data.batch_size=16", "trainer.epochs=choice(1, 10)"]
    run_timed(cmd)
    trials = optuna.load_study(study_name="bench", storage=storage).trials
    spans = [(t.datetime_start.timestamp(), t.datetime_complete.timestamp()) for t in trials]
    # Measure from the first trial's end, once both workers have started: worker start-up is the
    # same for both sweepers and would only blur the scheduling difference.
    t0, t1 = min(e for _, e in spans), max(e for _, e in spans)
    busy = sum(max(0.0, min(e, t1) - max(s, t0)) for s, e in spans)
    epochs = sum(t.params["trainer.epochs"] for t in trials)
    return {"span": t1 - min(s for s, _ in spans), "util": busy / (2 * (t1 - t0)), "epochs": epochs}


def main() -> None:
    n_trials, runs = search_options(__doc__, trials=12, smoke_trials=4)
    results: dict[str, list[dict]] = {name: [] for name in SWEEPERS}
    with tempfile.TemporaryDirectory(prefix="sweep-async-") as tmp:
        root = write_dataset(Path(tmp) / "data", 4400, 100)
        for i in range(runs):
            for name, extra in SWEEPERS.items():
                r = one_run(extra, root, Path(tmp) / f"{i}-{extra[1].split('=')[1]}", n_trials)
                results[name].append(r)
                print(f"run {i} {name:20s} span {r['span']:6.2f} s, {r['epochs']} epochs, "
                      f"utilisation {r['util']:.2f}", flush=True)
    print(f"\n{n_trials} trials of 1 or 10 epochs, 2 joblib workers, {runs} run(s), medians:")
    for name, rs in results.items():
        print(f"  {name:20s} span {statistics.median(r['span'] for r in rs):6.2f} s   utilisation "
              f"{statistics.median(r['util'] for r in rs):.2f}   ({rs[0]['epochs']} epochs)")
    ours, batches = (results[name] for name in SWEEPERS)
    ratios = [a["span"] / b["span"] for a, b in zip(ours, batches)]
    print(f"  wall-time ratio asynchronous / batches, median {statistics.median(ratios):.2f} "
          f"(min {min(ratios):.2f}, max {max(ratios):.2f})")


if __name__ == "__main__":
    main()
