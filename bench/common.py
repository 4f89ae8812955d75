"""What the benchmark scripts share: running one whole process, and the search benchmarks' options."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from typing import Any


def run_timed(cmd: list[str], **kwargs: Any) -> tuple[subprocess.CompletedProcess, float]:
    """Run one whole process and time it; a failure ends the benchmark with the tail of its stderr."""
    kwargs.setdefault("stdout", subprocess.PIPE)
    start = time.perf_counter()
    proc = subprocess.run(cmd, stderr=subprocess.PIPE, text=True, **kwargs)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"error: {' '.join(cmd[1:5])} ... failed:\n{proc.stderr[-3000:]}")
    return proc, elapsed


def search_options(doc: str, trials: int, smoke_trials: int) -> tuple[int, int]:
    """--trials, --runs and --smoke of the search benchmarks: how many trials, in how many runs."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=trials)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help=f"{smoke_trials} trials, one run")
    args = parser.parse_args()
    return (smoke_trials, 1) if args.smoke else (args.trials, args.runs)
