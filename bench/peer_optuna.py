"""sweep's Fashion-MNIST budget search against the same search as a plain Optuna script, as whole processes.

    python bench/peer_optuna.py                # one round: each side takes about 6 minutes on 2 cores
    python bench/peer_optuna.py --rounds 3     # three rounds, alternating which side goes first
    python bench/peer_optuna.py --extra trainer.eval_train=false   # overrides for the sweep side only
    python bench/peer_optuna.py --smoke        # a few hundred images, 6 trials of 3 epochs: checks the bench runs

sweep's side is `python -m sweep.train -m search=fashion_budget` (30 TPE trials, median pruning, at most
10 epochs, 2 trials at a time in joblib processes of one torch thread each), read back from its sweep
folder: trials.csv for the trials' states, each trial's history.csv for the epochs it trained and its
metrics.json for its validation and test accuracy. The plain side is bench/optuna_plain.py: the same
data, space, sampler seed and pruner, `study.optimize(n_jobs=2)` in threads, the models in memory and no
checkpoints. Both train on the CPU.

The two sides sample different trials (and prune differently), so besides the wall-time ratio the bench
quotes seconds per epoch trained (wall time / epochs), seconds per epoch of the same model (wall time over
epochs weighted by each trial's multiply-adds per image), the epochs, and the best trial's validation and
test accuracy on each side (best by validation only). The target is a wall-time ratio sweep / plain of
1.10 or less for everything sweep adds: checkpoints, resume, records and figures.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import tempfile
from pathlib import Path

from common import has_idx_files, ratio_line, run_timed
from sweep import rundir

PLAIN = Path(__file__).resolve().parent / "optuna_plain.py"
# trials, epochs per trial, train / val / test images (None: the whole test split)
FULL = {"n_trials": 30, "epochs": 10, "train": 50_000, "val": 10_000, "test": None}
SMOKE = {"n_trials": 6, "epochs": 3, "train": 300, "val": 200, "test": 200}


def work(trials: list[tuple[dict, int]]) -> float:
    """Epochs trained weighted by the trial's model size: multiply-adds per image of the MLP, in millions,
    summed over epochs. The two sides sample different models, so seconds per unit of this work compare
    what an epoch costs each side for the same model."""
    total = 0.0
    for params, epochs in trials:
        hidden, layers = int(params["model.num_hidden"]), int(params["model.num_layers"])
        total += epochs * (784 * hidden + (layers - 1) * hidden * hidden + 10 * hidden) / 1e6
    return total


def sweep_side(sizes: dict, root: Path, sweep_dir: Path, extra: list[str], cwd: Path) -> dict:
    """One whole `sweep.train -m search=fashion_budget` process, its results read from the sweep folder."""
    test = "null" if sizes["test"] is None else sizes["test"]
    cmd = [sys.executable, "-m", "sweep.train", "-m", "search=fashion_budget", f"hydra.sweep.dir={sweep_dir}",
           f"hydra.sweeper.n_trials={sizes['n_trials']}", f"trainer.epochs={sizes['epochs']}",
           f"data.train_size={sizes['train']}", f"data.val_size={sizes['val']}", f"data.test_size={test}",
           f"data.root={root}", "trainer.device=cpu", *extra]
    _, wall = run_timed(cmd, cwd=cwd)
    with open(sweep_dir / rundir.TRIALS, newline="") as f:
        trials = list(csv.DictReader(f))
    epochs, best, done = 0, None, []
    for t in trials:
        job_dir = sweep_dir / t["job_dir"]
        trained = len(rundir.read_history(job_dir))
        epochs += trained
        done.append(({k.removeprefix("params_"): v for k, v in t.items() if k.startswith("params_")}, trained))
        metrics = rundir.read_metrics(job_dir)
        if t["state"] == "COMPLETE" and metrics is not None and (
                best is None or metrics["best_val_acc"] > best["best_val_acc"]):
            best = {**metrics, "params": done[-1][0]}
    return {"wall": wall, "epochs": epochs, "work": work(done),
            "complete": sum(t["state"] == "COMPLETE" for t in trials),
            "pruned": sum(t["state"] == "PRUNED" for t in trials),
            "val": best["best_val_acc"] if best else None, "test": best["test_acc"] if best else None,
            "params": best["params"] if best else None}


def plain_side(sizes: dict, root: Path, cwd: Path) -> dict:
    """One whole bench/optuna_plain.py process; it reports its results as one JSON line."""
    cmd = [sys.executable, str(PLAIN), f"--n-trials={sizes['n_trials']}", f"--epochs={sizes['epochs']}",
           f"--train-size={sizes['train']}", f"--val-size={sizes['val']}", f"--data={root}",
           *([] if sizes["test"] is None else [f"--test-size={sizes['test']}"])]
    proc, wall = run_timed(cmd, cwd=cwd)
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"wall": wall, "epochs": r["epochs"], "work": work([(t["params"], t["epochs"]) for t in r["trials"]]),
            "complete": r["complete"], "pruned": r["pruned"],
            "val": r["best_val_acc"], "test": r["test_acc"], "params": r["params"]}


def data_folder(given: Path | None, tmp: Path, smoke: bool) -> Path:
    """The Fashion-MNIST folder both sides read: --data, else where sweep looks; fake images for a smoke run
    on a machine without Fashion-MNIST."""
    from sweep.data.idx import FashionMNIST

    root = FashionMNIST(None if given is None else str(given), download=False).root
    if has_idx_files(root):
        return root
    if smoke:
        from sweep.fake_data import write_dataset

        return write_dataset(tmp / "data", SMOKE["train"] + SMOKE["val"], SMOKE["test"])
    sys.exit(f"error: no Fashion-MNIST IDX files in {root}: apt-get install dataset-fashion-mnist, pass --data DIR, "
             "or run --smoke")


def _params(params: dict | None) -> str:
    """The best trial's parameters, short: num_hidden=512 num_layers=1 ..."""
    if not params:
        return "no complete trial"
    return " ".join(f"{k.rpartition('.')[2]}={float(v):.3g}" if "." in str(v) else f"{k.rpartition('.')[2]}={v}"
                    for k, v in params.items())


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def show(label: str, sides: dict[str, list[dict]], key: str, spec: str) -> None:
    """One table line: the median of `key` over the rounds, per side."""
    cells = []
    for rs in sides.values():
        values = [r[key] for r in rs if r[key] is not None]
        cells.append(fmt(statistics.median(values) if values else None, spec))
    print(f"  {label:<30}" + "".join(f"{c:>12}" for c in cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=1, help="rounds of one process per side")
    parser.add_argument("--data", type=Path, help="a folder of Fashion-MNIST IDX files (default: where sweep looks)")
    parser.add_argument("--extra", nargs="*", default=[], help="overrides for the sweep side only")
    parser.add_argument("--smoke", action="store_true", help="a few hundred images, 6 trials of 3 epochs, one round")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    sizes, rounds = (SMOKE, 1) if args.smoke else (FULL, args.rounds)
    sides: dict[str, list[dict]] = {"sweep": [], "plain": []}
    with tempfile.TemporaryDirectory(prefix="peer-optuna-") as tmp:
        work = Path(tmp)
        root = data_folder(args.data, work, args.smoke)
        for i in range(rounds):
            order = ["sweep", "plain"] if i % 2 == 0 else ["plain", "sweep"]
            for side in order:
                r = (sweep_side(sizes, root, work / f"sweep{i}", args.extra, work) if side == "sweep"
                     else plain_side(sizes, root, work))
                if not r["epochs"]:
                    sys.exit(f"error: the {side} side trained no epochs; run it alone to see why")
                r["per_epoch"] = r["wall"] / r["epochs"]
                r["per_work"] = r["wall"] / r["work"]
                sides[side].append(r)
            print(f"round {i} ({order[0]} first): " + "; ".join(
                f"{side} {r['wall']:.1f} s, {r['epochs']} epochs, {r['complete']}/{r['pruned']} complete/pruned, "
                f"val {fmt(r['val'], '.4f')}, test {fmt(r['test'], '.4f')} ({_params(r['params'])})"
                for side, r in ((s, sides[s][-1]) for s in sides)), flush=True)
    test = "all" if sizes["test"] is None else f"{sizes['test']:,}"
    print(f"\nFashion-MNIST budget search, {sizes['n_trials']} trials of at most {sizes['epochs']} epochs, 2 at a "
          f"time, {sizes['train']:,} / {sizes['val']:,} / {test} images, {rounds} round(s), medians:")
    if args.extra:
        print(f"  sweep side with {' '.join(args.extra)}")
    print(f"  {'':<30}" + "".join(f"{side:>12}" for side in sides))
    show("wall time (s)", sides, "wall", ".1f")
    show("epochs trained", sides, "epochs", ".0f")
    show("seconds per epoch", sides, "per_epoch", ".3f")
    show("epochs x M multiply-adds/image", sides, "work", ".1f")
    show("seconds per unit of that", sides, "per_work", ".3f")
    show("trials complete", sides, "complete", ".0f")
    show("trials pruned", sides, "pruned", ".0f")
    show("best trial's val acc", sides, "val", ".4f")
    show("its test acc", sides, "test", ".4f")
    ours, plain = sides["sweep"], sides["plain"]
    print(ratio_line("ratio sweep / plain, wall time", [r["wall"] for r in ours], [r["wall"] for r in plain]))
    print(ratio_line("ratio sweep / plain, s per epoch", [r["per_epoch"] for r in ours],
                     [r["per_epoch"] for r in plain]))
    print(ratio_line("ratio sweep / plain, s per epoch of the same model", [r["per_work"] for r in ours],
                     [r["per_work"] for r in plain]))
    print("  target: wall-time ratio 1.10 or less")


if __name__ == "__main__":
    main()
