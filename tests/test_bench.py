"""Every benchmark runs once in smoke mode (tiny sizes), so that none of them can rot. Not timed."""

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO


BENCHES = [
    # One seed_protocol run covers both of its comparisons: the seed's code is the slowest part of the file.
    ("seed_protocol.py --floor --extra trainer.eval_every=1", ["ratio sweep / seed", "ratio evaluations alone / seed"]),
    ("throughput.py", ["ratio sweep / tight"]),
    ("gpu_check.py", ["gpu_check: all parts ok"]),
    ("sweep_overhead.py", ["per trial: overhead"]),
    ("async_workers.py", ["wall-time ratio asynchronous / batches"]),
    ("peer_optuna.py", ["ratio sweep / plain, wall time", "ratio sweep / plain, s per epoch"]),
]


@pytest.mark.slow
@pytest.mark.parametrize("script, expect", BENCHES, ids=[script.split()[0] for script, _ in BENCHES])
def test_bench_smoke(script: str, expect: list[str], tmp_path: Path) -> None:
    name, *options = script.split()
    proc = subprocess.run([sys.executable, str(REPO / "bench" / name), "--smoke", *options], capture_output=True,
                          text=True, cwd=tmp_path, timeout=280)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    for line in expect:
        assert line in proc.stdout
    assert not list(tmp_path.iterdir()), "a bench wrote into the working directory"
