"""optuna-dashboard, started on 127.0.0.1 against a study a test sweep wrote, serves that study back."""

from __future__ import annotations

import csv
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import cli_env

pytest.importorskip("optuna_dashboard", reason='optuna-dashboard is not installed: pip install -e ".[dashboard]"')

APP = Path(__file__).resolve().parent / "apps" / "quadratic.py"
DASHBOARD = Path(sys.executable).with_name("optuna-dashboard")
# Straight to 127.0.0.1, whatever proxy the environment names.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str) -> Any:
    with OPENER.open(url, timeout=5) as response:
        return json.load(response)


def wait_for_api(base: str, server: subprocess.Popen, log: Path, timeout: float = 30) -> Any:
    """/api/studies, once the server answers; fails with its log if it exits or never answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, f"optuna-dashboard exited ({server.returncode}): {log.read_text()}"
        try:
            return get_json(f"{base}/api/studies")
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    raise AssertionError(f"optuna-dashboard did not answer within {timeout}s: {log.read_text()}")


@pytest.mark.slow
def test_dashboard_serves_the_sweeps_study(tmp_path):
    if not DASHBOARD.exists():
        pytest.skip(f"no optuna-dashboard console script beside {sys.executable}: pip install -e \".[dashboard]\"")
    sweep_dir = tmp_path / "sweep"
    proc = subprocess.run([sys.executable, str(APP), "-m", f"hydra.sweep.dir={sweep_dir}",
                           "hydra.sweeper.study_name=dash", "hydra.sweeper.n_trials=3"],
                          capture_output=True, text=True, timeout=60, env=cli_env(), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open(sweep_dir / "trials.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    results = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())

    base = f"http://127.0.0.1:{free_port()}"
    log = tmp_path / "dashboard.log"
    with open(log, "w") as out:
        server = subprocess.Popen([str(DASHBOARD), f"sqlite:///{sweep_dir / 'study.db'}", "--host", "127.0.0.1",
                                   "--port", base.rpartition(":")[2]], stdout=out, stderr=subprocess.STDOUT,
                                  cwd=tmp_path, env=cli_env())
    try:
        studies = wait_for_api(base, server, log)["study_summaries"]
        assert [s["study_name"] for s in studies] == [results["study_name"]] == ["dash"]
        assert studies[0]["directions"] == ["minimize"]
        detail = get_json(f"{base}/api/studies/{studies[0]['study_id']}")
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
    assert detail["name"] == "dash"
    assert len(detail["trials"]) == len(rows) == 3
    assert [t["number"] for t in detail["trials"]] == [int(r["number"]) for r in rows]
    assert [t["values"][0] for t in detail["trials"]] == pytest.approx([float(r["value"]) for r in rows])
    [best] = detail["best_trials"]
    assert best["number"] == results["best_trial"]
    assert best["values"] == pytest.approx([results["best_value"]])
