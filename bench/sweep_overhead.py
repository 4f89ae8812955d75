"""What a trial costs beyond training itself, in a 50-trial Optuna search of small trials.

    python bench/sweep_overhead.py           # 3 runs of a 50-trial search
    python bench/sweep_overhead.py --smoke   # one run of 3 trials: checks the bench still runs

Each run is the real CLI (`python -m sweep.train -m search=optuna ...`) as one process, on small
generated digits (1,024 train / 512 validation images, 3 epochs). Training itself is each trial's
compute time from its history.csv (training steps and per-epoch evaluation); everything else per trial
(process start-up shared by all trials, Hydra's config composition and job set-up, data access,
checkpoint and metric writes, plots, the test evaluation, and the study's storage) is overhead.
"""

from __future__ import annotations

import csv
import statistics
import sys
import tempfile
from pathlib import Path

from common import run_timed, search_options
from sweep.fake_data import write_dataset


def one_run(root: Path, sweep_dir: Path, n_trials: int) -> dict:
    cmd = [sys.executable, "-m", "sweep.train", "-m", "search=optuna", f"data.root={root}",
           "data.train_size=1024", "data.val_size=512", "data.test_size=500", "trainer.epochs=3",
           f"hydra.sweep.dir={sweep_dir}", f"hydra.sweeper.n_trials={n_trials}"]
    proc, wall = run_timed(cmd)
    compute = 0.0
    for history in sweep_dir.glob("trial_*/history.csv"):
        rows = list(csv.DictReader(history.open()))
        compute += float(rows[-1]["seconds"])
    return {"wall": wall, "compute": compute, "trials": len(list(sweep_dir.glob("trial_*/metrics.json")))}


def main() -> None:
    n_trials, runs = search_options(__doc__, trials=50, smoke_trials=3)
    with tempfile.TemporaryDirectory(prefix="sweep-overhead-") as tmp:
        root = write_dataset(Path(tmp) / "data", 1600, 500)
        results = []
        for i in range(runs):
            r = one_run(root, Path(tmp) / f"sweep{i}", n_trials)
            assert r["trials"] == n_trials, r
            per_trial, per_compute = r["wall"] / n_trials, r["compute"] / n_trials
            r["overhead"] = per_trial - per_compute
            r["fraction"] = r["overhead"] / per_trial
            results.append(r)
            print(f"run {i}: {n_trials} trials in {r['wall']:.1f} s; per trial {per_trial:.3f} s, of which training "
                  f"{per_compute:.3f} s and overhead {r['overhead']:.3f} s ({100 * r['fraction']:.0f}%)", flush=True)
    med = lambda key: statistics.median(r[key] for r in results)  # noqa: E731
    print(f"\n{n_trials}-trial Optuna search, {runs} run(s), medians:")
    print(f"  wall time of the search        {med('wall'):8.2f} s")
    print(f"  per trial: training itself     {med('compute') / n_trials:8.3f} s")
    print(f"  per trial: overhead            {med('overhead'):8.3f} s  ({100 * med('fraction'):.0f}% of a trial)")


if __name__ == "__main__":
    main()
