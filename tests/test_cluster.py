"""The Optuna sweeper on a cluster's terms, on one machine: trials in flight through submitit_local, the
journal file backend (continued, and a dead or frozen worker's trial retried), and one device per trial."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml

from conftest import assert_one_line_error, cli_env, run_cli, tiny
from sweep.storage import open_storage

APP = Path(__file__).resolve().parent / "apps" / "quadratic.py"
SPACE = ["model.num_hidden=int(interval(4, 32))", "optimizer.lr=tag(log, interval(0.01, 0.3))"]


def quadratic(sweep_dir: Path, *overrides: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """The toy app's sweep, run to its end from sweep_dir's parent."""
    return subprocess.run([sys.executable, str(APP), "-m", f"hydra.sweep.dir={sweep_dir}", *overrides],
                          capture_output=True, text=True, timeout=timeout, env=cli_env(), cwd=sweep_dir.parent)


def start_quadratic(sweep_dir: Path, *overrides: str) -> subprocess.Popen:
    """The toy app's sweep in its own process group (so that its jobs go with it), logging beside sweep_dir."""
    with open(sweep_dir.parent / f"{sweep_dir.name}.log", "w") as log:
        return subprocess.Popen([sys.executable, str(APP), "-m", f"hydra.sweep.dir={sweep_dir}", *overrides],
                                stdout=log, stderr=subprocess.STDOUT, env=cli_env(), cwd=sweep_dir.parent,
                                start_new_session=True)


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the whole process group (a stopped one too) and reap it, so that its pid is gone."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)


def wait_running(proc: subprocess.Popen, job_dir: Path, timeout: float = 30) -> None:
    """Until the sweeper has started the trial whose job folder is job_dir."""
    record = job_dir / "trial.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if record.exists() and json.loads(record.read_text())["state"] == "RUNNING":
            return
        assert proc.poll() is None, f"the sweeper exited ({proc.returncode}) before its trial started"
        time.sleep(0.05)
    raise AssertionError(f"no trial started in {job_dir} within {timeout}s")


def freeze_outside_lock(proc: subprocess.Popen, journal: Path) -> None:
    """SIGSTOP the process group at a moment it holds no journal lock (a frozen or killed lock holder would
    make the next worker wait out Optuna's 30 s lock grace period, which is not what is tested here)."""
    lock = journal.with_name(journal.name + ".lock")
    for _ in range(100):
        os.killpg(proc.pid, signal.SIGSTOP)
        if not os.path.lexists(lock):
            return
        os.killpg(proc.pid, signal.SIGCONT)
        time.sleep(0.02)
    raise AssertionError(f"{lock} was held at every try")


def journal_study(sweep_dir: Path) -> optuna.Study:
    """The one study in the sweep's journal, read back through the project's storage opener."""
    return optuna.load_study(study_name=None, storage=open_storage(f"journal://{sweep_dir / 'study.journal'}"))


def rows(sweep_dir: Path) -> list[dict[str, str]]:
    with open(sweep_dir / "trials.csv", newline="") as f:
        return list(csv.DictReader(f))


def calls(sweep_dir: Path) -> list[dict[str, Any]]:
    """What every job of the toy app recorded (config, pid, start and end times, CUDA_VISIBLE_DEVICES)."""
    return [json.loads(line) for path in sorted(sweep_dir.glob("*/calls.jsonl"))
            for line in path.read_text().splitlines()]


def most_in_flight(records: list[dict[str, Any]]) -> int:
    """The largest number of jobs running at one instant."""
    events = sorted([(r["start"], 1) for r in records] + [(r["end"], -1) for r in records])
    now = peak = 0
    for _, step in events:
        now += step
        peak = max(peak, now)
    return peak


def overlap(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a["start"] < b["end"] and b["start"] < a["end"]


# --------------------------------------------------------------------------- submitit_local


@pytest.mark.slow
def test_submitit_local_keeps_n_jobs_trials_in_flight(tmp_path):
    sweep_dir = tmp_path / "sub"
    proc = quadratic(sweep_dir, "hydra/launcher=submitit_local", "hydra.sweeper.n_trials=4",
                     "hydra.sweeper.n_jobs=2", "steps=3", "sleep=0.5")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    records = calls(sweep_dir)
    assert len(records) == 4
    assert most_in_flight(records) == 2  # two at a time, never more
    assert len({r["pid"] for r in records}) == 4  # each trial a job process of its own
    table = rows(sweep_dir)
    assert [r["state"] for r in table] == ["COMPLETE"] * 4
    assert len({(r["params_x"], r["params_y"]) for r in table}) == 4
    assert sorted((r["x"], r["y"]) for r in records) == sorted((float(r["params_x"]), float(r["params_y"]))
                                                               for r in table)


@pytest.mark.slow
def test_sweep_train_runs_through_submitit_local(idx_root, tmp_path):
    sweep_dir = tmp_path / "opt"
    proc = run_cli("-m", "search=optuna", *tiny(idx_root, "trainer.epochs=1"), *SPACE, f"hydra.sweep.dir={sweep_dir}",
                   "hydra.sweeper.n_trials=2", "hydra.sweeper.n_jobs=2", "hydra/launcher=submitit_local",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    table = rows(sweep_dir)
    assert [r["state"] for r in table] == ["COMPLETE"] * 2
    for r in table:
        metrics = json.loads((sweep_dir / r["job_dir"] / "metrics.json").read_text())
        assert metrics["objective"] == pytest.approx(float(r["value"]))
    results = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    assert results["best_value"] == pytest.approx(max(float(r["value"]) for r in table))  # val_acc: maximised


# --------------------------------------------------------------------------- the journal backend


@pytest.mark.slow
def test_journal_storage_is_written_and_continued(tmp_path):
    sweep_dir = tmp_path / "j"
    first = quadratic(sweep_dir, "hydra.sweeper.storage=journal", "hydra.sweeper.n_trials=2")
    assert first.returncode == 0, first.stdout + first.stderr
    assert (sweep_dir / "study.journal").stat().st_size > 0 and not (sweep_dir / "study.db").exists()
    params = [t.params for t in journal_study(sweep_dir).trials]
    again = quadratic(sweep_dir, "hydra.sweeper.storage=journal", "hydra.sweeper.n_trials=2")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "started" not in again.stdout + again.stderr
    assert [t.params for t in journal_study(sweep_dir).trials] == params
    more = quadratic(sweep_dir, "hydra.sweeper.storage=journal", "hydra.sweeper.n_trials=3")
    assert more.returncode == 0, more.stdout + more.stderr
    study = journal_study(sweep_dir)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3
    assert [t.params for t in study.trials[:2]] == params
    assert [r["number"] for r in rows(sweep_dir)] == ["0", "1", "2"]


def assert_retried_once(study: optuna.Study, reason: str) -> None:
    """Trial 0 failed as stale and queued again; trial 1 continued it in its folder, and completed."""
    stale, retry = study.trials
    assert stale.state.name == "FAIL" and reason in stale.user_attrs["requeued"]
    assert "failure" not in stale.user_attrs  # not counted toward max_failure_rate
    assert retry.state.name == "COMPLETE" and retry.user_attrs["retry_of"] == 0
    assert retry.params == stale.params
    assert retry.user_attrs["job_dir"] == stale.user_attrs["job_dir"] == "trial_0000"


@pytest.mark.slow
def test_journal_a_killed_worker_on_this_host_is_retried_at_once(tmp_path):
    sweep_dir = tmp_path / "j"
    args = ["hydra.sweeper.storage=journal", "hydra.sweeper.n_trials=1", "steps=4", "sleep=0.5"]
    worker = start_quadratic(sweep_dir, *args)
    try:
        wait_running(worker, sweep_dir / "trial_0000")
        freeze_outside_lock(worker, sweep_dir / "study.journal")
    finally:
        kill_group(worker)
    assert not (sweep_dir / "trial_0000" / "calls.jsonl").exists()  # killed inside trial 0
    began = time.monotonic()
    # The default grace period is 60 s: finishing well before it shows the dead pid was seen, not waited out.
    proc = quadratic(sweep_dir, *args, "hydra.sweeper.grace_period=60", timeout=30)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert time.monotonic() - began < 30
    assert "trial 0's worker is gone" in proc.stdout + proc.stderr
    assert_retried_once(journal_study(sweep_dir), "its sweeper process on this host is gone")
    assert len(calls(sweep_dir)) == 1  # the retry's one job, in trial 0's folder
    assert [r["job_dir"] for r in rows(sweep_dir)] == ["trial_0000", "trial_0000"]


@pytest.mark.slow
def test_journal_a_frozen_worker_is_retried_after_the_grace_period(tmp_path):
    """Its pid is alive (as another host's worker would look): only its missing heartbeats tell."""
    sweep_dir = tmp_path / "j"
    args = ["hydra.sweeper.storage=journal", "hydra.sweeper.n_trials=1", "steps=4", "sleep=0.5",
            "hydra.sweeper.heartbeat_interval=1", "hydra.sweeper.grace_period=3"]
    frozen = start_quadratic(sweep_dir, *args)
    try:
        wait_running(frozen, sweep_dir / "trial_0000")
        freeze_outside_lock(frozen, sweep_dir / "study.journal")
        began = time.monotonic()
        proc = quadratic(sweep_dir, *args, timeout=40)
        took = time.monotonic() - began
        assert frozen.poll() is None  # still there, stopped, all along
    finally:
        kill_group(frozen)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    log = proc.stdout + proc.stderr
    assert "waiting for 1 trial(s) of other workers" in log and "trial 0's worker is gone" in log
    assert took >= 3 + 2  # the grace period, then the trial's own 2 s
    study = journal_study(sweep_dir)
    assert f":{frozen.pid}" in str(study.trials[0].user_attrs["worker"])  # "host:pid", whatever its record
    assert_retried_once(study, "no heartbeat for 3s")


# --------------------------------------------------------------------------- one device per trial


@pytest.mark.slow
def test_each_trial_in_flight_gets_its_own_device(tmp_path):
    sweep_dir = tmp_path / "dev"
    proc = quadratic(sweep_dir, "hydra/launcher=joblib", "hydra.sweeper.n_jobs=2", "hydra.sweeper.n_trials=4",
                     "hydra.sweeper.devices=[0,1]", "steps=3", "sleep=0.3")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    records = calls(sweep_dir)
    assert len(records) == 4 and {r["cuda_visible_devices"] for r in records} <= {"0", "1"}
    pairs = [(a, b) for i, a in enumerate(records) for b in records[i + 1:] if overlap(a, b)]
    assert pairs, "no two trials overlapped: the test shows nothing"
    for a, b in pairs:
        assert a["cuda_visible_devices"] != b["cuda_visible_devices"], (a, b)


@pytest.mark.slow
def test_sweep_train_gets_its_device_through_trainer_device(idx_root, tmp_path):
    sweep_dir = tmp_path / "opt"
    proc = run_cli("-m", "search=optuna", *tiny(idx_root, "trainer.epochs=1"), *SPACE, f"hydra.sweep.dir={sweep_dir}",
                   "hydra.sweeper.n_trials=2", "hydra.sweeper.devices=[cpu]", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    jobs = sorted(sweep_dir.glob("trial_*"))
    assert len(jobs) == 2
    for job in jobs:
        assert "trainer.device=cpu" in yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text())


def test_fewer_devices_than_trials_in_flight_is_one_line(tmp_path):
    sweep_dir = tmp_path / "dev"
    proc = quadratic(sweep_dir, "hydra/launcher=joblib", "hydra.sweeper.n_jobs=2", "hydra.sweeper.devices=[0]")
    assert proc.returncode == 2
    assert_one_line_error(proc.returncode, proc.stderr, proc.stdout, "hydra.sweeper.devices", "n_jobs=2")
    assert not (sweep_dir / "trial_0000").exists()
