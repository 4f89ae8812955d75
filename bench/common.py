"""What the benchmark scripts share: running one whole process, reading Fashion-MNIST into memory, the
pair-by-pair summary lines, and the search benchmarks' options."""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is imported where it is used: the process-timing benches never need it
    import torch

FASHION_TRAIN_IMAGES = 60_000  # the official training split


def run_timed(cmd: list[str], **kwargs: Any) -> tuple[subprocess.CompletedProcess, float]:
    """Run one whole process and time it; a failure ends the benchmark with the tail of its stderr."""
    kwargs.setdefault("stdout", subprocess.PIPE)
    start = time.perf_counter()
    proc = subprocess.run(cmd, stderr=subprocess.PIPE, text=True, **kwargs)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"error: {' '.join(cmd[1:5])} ... failed:\n{proc.stderr[-3000:]}")
    return proc, elapsed


def has_idx_files(root: Path) -> bool:
    """Whether a flat folder holds an IDX training split (gzipped or not), as sweep's readers take it."""
    return any(root.glob("train-images-idx3-ubyte*")) and any(root.glob("train-labels-idx1-ubyte*"))


def fashion_images(root: Path, n: int = FASHION_TRAIN_IMAGES) -> tuple[torch.Tensor, torch.Tensor]:
    """The first n training images, float32 [n, 1, 28, 28] and int64 labels, read by sweep's own data
    module (its train and val splits end to end, since a split cannot be empty)."""
    import torch

    from sweep.data.idx import FashionMNIST

    module = FashionMNIST(str(root), download=False, train_size=n - n // 6, val_size=n // 6)
    (x_train, y_train), (x_val, y_val) = module.train_dataset(), module.val_dataset()
    return torch.cat([x_train, x_val]), torch.cat([y_train, y_val])


def ratio_line(label: str, a: list[float], b: list[float]) -> str:
    """The median of the pair-by-pair ratios a/b, with their spread."""
    ratios = [x / y for x, y in zip(a, b)]
    return f"  {label:<35} median {statistics.median(ratios):6.3f}  (min {min(ratios):.3f}, max {max(ratios):.3f})"


def search_options(doc: str, trials: int, smoke_trials: int) -> tuple[int, int]:
    """--trials, --runs and --smoke of the search benchmarks: how many trials, in how many runs."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=trials)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help=f"{smoke_trials} trials, one run")
    args = parser.parse_args()
    return (smoke_trials, 1) if args.smoke else (args.trials, args.runs)
