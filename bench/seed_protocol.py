"""Whole-process wall time of the seed comparison: `python -m sweep.train -m model.num_hidden=15,30,60`
against the seed chapter's own code (bench/seed_notebook.py) on the same real digits.

    python bench/seed_protocol.py                  # real MNIST digits from ../shared/data/mnist-test-split
    python bench/seed_protocol.py --mnist DIR      # a folder with t10k-images-idx3-ubyte.gz and labels
    python bench/seed_protocol.py --smoke          # fake digits, one round: checks the bench still runs
    python bench/seed_protocol.py --extra trainer.eval_every=1 --floor
                                                   # per-iteration evaluation, and its floor
    python bench/seed_protocol.py --threads 1      # one torch thread in every process (a busy machine)

Both sides use 10,000 real digits as their "training split" (train = first 1024, val = next 1024).
Runs alternate (ours, seed, ours, seed, ...) so that drift in machine speed hits both; the ratio is
taken pair by pair and its median printed. --floor also times bench/seed_eval_floor.py in every round:
a process that only imports torch and runs the seed's 2,880 per-iteration evaluations.
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import ratio_line, run_timed

REPO = Path(__file__).resolve().parent.parent
SEED_CODE = REPO / "bench" / "seed_notebook.py"
FLOOR_CODE = REPO / "bench" / "seed_eval_floor.py"
DEFAULT_MNIST = REPO.parent / "shared" / "data" / "mnist-test-split"


def prepare(source: Path | None, work: Path, smoke: bool) -> tuple[Path, Path]:
    """A flat IDX folder for sweep and torchvision's MNIST/raw layout for the seed code, same images."""
    flat = work / "flat"
    flat.mkdir()
    if smoke:
        from sweep.fake_data import write_dataset

        write_dataset(flat, 2100, 100)
        pairs = {f"{p}-{k}": flat / f"{p}-{k}.gz" for p in ("train", "t10k")
                 for k in ("images-idx3-ubyte", "labels-idx1-ubyte")}
    else:
        pairs = {}
        for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
            for prefix in ("train", "t10k"):
                dst = flat / f"{prefix}-{kind}.gz"
                shutil.copyfile(source / f"t10k-{kind}.gz", dst)
                pairs[f"{prefix}-{kind}"] = dst
    raw = work / "tv" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name, gz in pairs.items():
        with gzip.open(gz) as src, open(raw / name, "wb") as dst:
            shutil.copyfileobj(src, dst)
    return flat, work / "tv"


def timed(cmd: list[str], threads: int | None) -> float:
    """Wall time of one process; `threads` sets torch's thread pool by environment, so that the seed's
    code, which must stay as written, gets the same setting as sweep."""
    env = None if threads is None else {**os.environ, "OMP_NUM_THREADS": str(threads)}
    return run_timed(cmd, cwd=REPO, stdout=subprocess.DEVNULL, env=env)[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mnist", type=Path, default=DEFAULT_MNIST, help="folder with the MNIST t10k IDX files")
    parser.add_argument("--runs", type=int, default=5, help="timed pairs (after one warm-up pair)")
    parser.add_argument("--smoke", action="store_true", help="fake data, one pair, no warm-up")
    parser.add_argument("--extra", nargs="*", default=[], help="extra overrides for sweep, e.g. trainer.eval_every=1")
    parser.add_argument("--floor", action="store_true", help="also time the per-iteration evaluations alone")
    parser.add_argument("--threads", type=int, help="torch threads of every process (OMP_NUM_THREADS); on a busy "
                        "machine 1 keeps torch's thread pool from stalling on cores other processes hold")
    args = parser.parse_args()
    if not args.smoke and not (args.mnist / "t10k-images-idx3-ubyte.gz").is_file():
        sys.exit(f"error: no MNIST IDX files in {args.mnist}: pass --mnist DIR, or --smoke")
    with tempfile.TemporaryDirectory(prefix="seed-bench-") as tmp:
        work = Path(tmp)
        flat, tv = prepare(None if args.smoke else args.mnist, work, args.smoke)
        seed_cmd = [sys.executable, str(SEED_CODE), str(tv)]
        floor_cmd = [sys.executable, str(FLOOR_CODE), *(["--iterations", "4"] if args.smoke else [])]
        rounds = 1 if args.smoke else args.runs + 1
        ours_t, seed_t, floor_t = [], [], []
        for i in range(rounds):
            ours_cmd = [sys.executable, "-m", "sweep.train", "-m", "model.num_hidden=15,30,60",
                        f"data.root={flat}", f"hydra.sweep.dir={work / f'sweep{i}'}", *args.extra]
            ours_t.append(timed(ours_cmd, args.threads))
            seed_t.append(timed(seed_cmd, args.threads))
            if args.floor:
                floor_t.append(timed(floor_cmd, args.threads))
            print(f"round {i}{' (warm-up)' if i == 0 and not args.smoke else ''}: "
                  f"sweep {ours_t[-1]:.2f} s, seed code {seed_t[-1]:.2f} s"
                  + (f", evaluations alone {floor_t[-1]:.2f} s" if args.floor else ""), flush=True)
        if not args.smoke:
            ours_t, seed_t, floor_t = ours_t[1:], seed_t[1:], floor_t[1:]
        extra = " ".join(args.extra) or "per-epoch evaluation (default)"
        threads = f"{args.threads} torch thread(s)" if args.threads else "torch's default threads"
        print(f"\nseed protocol, 3 models x 15 epochs, {extra}, {threads}, {len(ours_t)} timed pair(s):")
        print(f"  sweep -m model.num_hidden=15,30,60  median {statistics.median(ours_t):6.2f} s")
        print(f"  seed notebook code                  median {statistics.median(seed_t):6.2f} s")
        print(ratio_line("ratio sweep / seed", ours_t, seed_t))
        if args.floor:
            print(f"  the seed's evaluations alone       median {statistics.median(floor_t):6.2f} s")
            print(ratio_line("ratio evaluations alone / seed", floor_t, seed_t))


if __name__ == "__main__":
    main()
