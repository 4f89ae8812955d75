"""Every benchmark runs once in smoke mode (tiny sizes), so that none of them can rot. Not timed."""

import subprocess
import sys

import pytest

from conftest import REPO


@pytest.mark.parametrize("script, expect", [
    ("seed_protocol.py", "ratio sweep / seed"),
    ("seed_protocol.py --floor --extra trainer.eval_every=1", "ratio evaluations alone / seed"),
    ("throughput.py", "ratio sweep / tight"),
    ("sweep_overhead.py", "per trial: overhead"),
    ("async_workers.py", "wall-time ratio asynchronous / batches"),
])
def test_bench_smoke(script, expect, tmp_path):
    name, *options = script.split()
    proc = subprocess.run([sys.executable, str(REPO / "bench" / name), "--smoke", *options], capture_output=True,
                          text=True, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert expect in proc.stdout
