"""Optuna search through the real CLI: persistence, resume, parallel trials, failures, PostgreSQL."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml

from conftest import run_cli, tiny
from sweep.fake_data import write_dataset
from sweep.storage import mask

SPACE = ["model.num_hidden=int(interval(4, 32))", "optimizer.lr=tag(log, interval(0.01, 0.3))"]


def search(root: Path, sweep_dir: Path, n_trials: int, *extra: str) -> list[str]:
    return ["-m", "search=optuna", *tiny(root, "trainer.epochs=2"), *SPACE, f"hydra.sweep.dir={sweep_dir}",
            f"hydra.sweeper.n_trials={n_trials}", *extra]


def load_study(sweep_dir: Path, name: str = "pigeon") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{sweep_dir / 'study.db'}")


def states(study: optuna.Study) -> dict[str, int]:
    out: dict[str, int] = {}
    for t in study.trials:
        out[t.state.name] = out.get(t.state.name, 0) + 1
    return out


def test_search_records_a_persistent_study(idx_root, tmp_path):
    sweep_dir = tmp_path / "opt"
    proc = run_cli(*search(idx_root, sweep_dir, 4), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    study = load_study(sweep_dir)
    assert states(study) == {"COMPLETE": 4}
    for t in study.trials:
        assert 4 <= t.params["model.num_hidden"] <= 32 and 0.01 <= t.params["optimizer.lr"] <= 0.3
        job = sweep_dir / f"trial_{t.number:04d}"
        metrics = json.loads((job / "metrics.json").read_text())
        assert metrics["objective"] == pytest.approx(t.value)  # the value is the selected val accuracy
        assert json.loads((job / "trial.json").read_text())["params"] == t.params
    rows = (sweep_dir / "trials.csv").read_text().splitlines()
    assert rows[0].startswith("number,state,value,duration_s,job_dir,params_")
    assert len(rows) == 5 and all(",COMPLETE," in r for r in rows[1:])
    results = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    best = study.best_trial
    assert results["best_value"] == pytest.approx(best.value) and results["best_trial"] == best.number
    assert Path(results["best_checkpoint"]) == sweep_dir / f"trial_{best.number:04d}" / "checkpoints" / "best.pt"
    assert Path(results["best_checkpoint"]).is_file()


def test_rerun_continues_the_study_without_redoing_or_overwriting(idx_root, tmp_path):
    sweep_dir = tmp_path / "opt"
    assert run_cli(*search(idx_root, sweep_dir, 2), cwd=tmp_path).returncode == 0
    first = {p: p.stat().st_mtime_ns for p in sweep_dir.glob("trial_*/**/*") if p.is_file()}
    proc = run_cli(*search(idx_root, sweep_dir, 3), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "2 of 3 trials already finished" in proc.stderr + proc.stdout
    assert states(load_study(sweep_dir)) == {"COMPLETE": 3}
    assert sorted(p.name for p in sweep_dir.glob("trial_*")) == ["trial_0000", "trial_0001", "trial_0002"]
    assert {p: p.stat().st_mtime_ns for p in first} == first  # nothing of the first run was rewritten
    again = run_cli(*search(idx_root, sweep_dir, 3), cwd=tmp_path)  # already complete: runs nothing
    assert again.returncode == 0 and "trial 3 started" not in again.stderr + again.stdout
    assert len(load_study(sweep_dir).trials) == 3


def _pids_with_open_file(root_pid: int, path: Path) -> list[int]:
    """Processes under root_pid (itself included) that hold `path` open."""
    found, todo = [], [root_pid]
    while todo:
        pid = todo.pop()
        try:
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") == str(path) for fd in os.listdir(f"/proc/{pid}/fd")):
                found.append(pid)
            for task in os.listdir(f"/proc/{pid}/task"):
                todo += [int(c) for c in open(f"/proc/{pid}/task/{task}/children").read().split()]
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return found


def _start_and_kill_during_trial(args: list[str], cwd: Path, job: Path, kill_sweeper: bool) -> subprocess.Popen:
    """Run a sweep and SIGKILL the process training `job` (or the whole sweeper) once epoch 1 is saved."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "sweep.train", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while True:
        assert time.monotonic() < deadline and proc.poll() is None, "the trial ended before it could be killed"
        if (job / "checkpoints" / "epoch_001.pt").exists():
            victims = [proc.pid] if kill_sweeper else [
                p for p in _pids_with_open_file(proc.pid, (job / "train.log").resolve()) if p != proc.pid]
            if victims:
                break
        time.sleep(0.02)
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    return proc


@pytest.fixture(scope="module")
def slow_root(tmp_path_factory):
    """Enough images that a batch-size-1 epoch lasts long enough to be interrupted."""
    return write_dataset(tmp_path_factory.mktemp("slow"), 2600, 100)


def slow(root: Path, sweep_dir: Path, n_trials: int, *extra: str) -> list[str]:
    return ["-m", "search=optuna", f"data.root={root}", "data.train_size=2500", "data.val_size=100",
            "data.batch_size=1", "trainer.epochs=3", "model.num_hidden=choice(8, 16)", "optimizer.lr=0.01",
            f"hydra.sweep.dir={sweep_dir}", f"hydra.sweeper.n_trials={n_trials}", *extra]


def test_interrupted_search_resumes_the_killed_trial_from_its_checkpoint(slow_root, tmp_path):
    sweep_dir = tmp_path / "opt"
    beat = ["hydra.sweeper.heartbeat_interval=1", "hydra.sweeper.grace_period=2"]
    proc = _start_and_kill_during_trial(slow(slow_root, sweep_dir, 2, *beat), tmp_path, sweep_dir / "trial_0001",
                                        kill_sweeper=True)
    proc.wait()
    assert states(load_study(sweep_dir)) == {"COMPLETE": 1, "RUNNING": 1}
    trial0 = {p: p.stat().st_mtime_ns for p in (sweep_dir / "trial_0000").rglob("*") if p.is_file()}

    resumed = run_cli(*slow(slow_root, sweep_dir, 2, *beat), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    study = load_study(sweep_dir)
    by_state = states(study)
    assert by_state == {"COMPLETE": 2, "FAIL": 1}  # the stale trial failed, its retry completed
    retry = next(t for t in study.trials if t.state.name == "COMPLETE" and t.number != 0)
    assert retry.system_attrs["failed_trial"] == 1 and retry.user_attrs["job_dir"] == "trial_0001"
    log = (sweep_dir / "trial_0001" / "train.log").read_text()
    assert "resuming" in log and "after epoch 1" in log  # finished from its checkpoint, not from scratch
    assert {p: p.stat().st_mtime_ns for p in trial0} == trial0
    assert sorted(p.name for p in sweep_dir.glob("trial_*")) == ["trial_0000", "trial_0001"]


def test_a_killed_worker_fails_its_trial_and_the_sweep_goes_on(slow_root, tmp_path):
    sweep_dir = tmp_path / "opt"
    proc = _start_and_kill_during_trial(slow(slow_root, sweep_dir, 2, "hydra/launcher=joblib",
                                             "hydra.sweeper.max_failure_rate=0.5"), tmp_path,
                                        sweep_dir / "trial_0000", kill_sweeper=False)
    out, _ = proc.communicate(timeout=180)
    assert proc.returncode == 0, out
    study = load_study(sweep_dir)
    failed = [t for t in study.trials if t.state.name == "FAIL"]
    assert [t.number for t in failed] == [0] and "process died" in failed[0].user_attrs["failure"]
    assert "process died" in json.loads((sweep_dir / "trial_0000" / "trial.json").read_text())["error"]
    assert [t.number for t in study.trials if t.state.name == "COMPLETE"] == [1]


def test_parallel_trials_with_joblib(idx_root, tmp_path):
    sweep_dir = tmp_path / "opt"
    proc = run_cli(*search(idx_root, sweep_dir, 4, "hydra/launcher=joblib", "hydra.sweeper.n_jobs=2"),
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    study = load_study(sweep_dir)
    assert states(study) == {"COMPLETE": 4}
    spans = sorted((t.datetime_start, t.datetime_complete) for t in study.trials)
    assert any(b_start < a_end for (_, a_end), (b_start, _) in zip(spans, spans[1:])), "no two trials overlapped"


def test_failing_trials_are_recorded_and_the_sweep_goes_on(idx_root, tmp_path):
    sweep_dir = tmp_path / "opt"
    # num_hidden=-1 raises a config error in the job; lr=1e30 diverges to NaN.
    args = ["-m", "search=optuna", *tiny(idx_root, "trainer.epochs=2", "optimizer.momentum=0"),
            "model.num_hidden=choice(8, -1)", "optimizer.lr=choice(0.05, 1e30)", f"hydra.sweep.dir={sweep_dir}",
            "hydra.sweeper.n_trials=6", "hydra.sweeper.max_failure_rate=1.0"]
    proc = run_cli(*args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    study = load_study(sweep_dir)
    assert len(study.trials) == 6
    for t in study.trials:
        job = json.loads((sweep_dir / f"trial_{t.number:04d}" / "trial.json").read_text())
        if t.params["model.num_hidden"] == -1:
            assert t.state.name == "FAIL" and "model.num_hidden=-1 is out of range" in t.user_attrs["failure"]
            assert "out of range" in job["error"]
        elif t.params["optimizer.lr"] > 1:
            assert t.state.name == "FAIL" and "diverged" in t.user_attrs["failure"] and "diverged" in job["error"]
        else:
            assert t.state.name == "COMPLETE" and job["error"] is None


def test_too_many_failures_stop_the_sweep_with_one_line(idx_root, tmp_path):
    sweep_dir = tmp_path / "opt"
    proc = run_cli(*search(idx_root, sweep_dir, 8, "model.num_hidden=-1", "hydra.sweeper.max_failure_rate=0.2"),
                   cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error: 2 of 8 trials failed, more than")
    assert "Traceback" not in proc.stderr
    assert len(load_study(sweep_dir).trials) == 2
    assert len((sweep_dir / "trials.csv").read_text().splitlines()) == 3


def test_grid_search_is_the_seed_comparison(idx_root, tmp_path):
    sweep_dir = tmp_path / "grid"
    proc = run_cli("-m", "search=grid", *tiny(idx_root, "trainer.epochs=1"), f"hydra.sweep.dir={sweep_dir}",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    study = load_study(sweep_dir, "grid")
    assert sorted(t.params["model.num_hidden"] for t in study.trials) == [15, 30, 60]


def test_bad_storage_url_is_one_line(idx_root, tmp_path):
    proc = run_cli(*search(idx_root, tmp_path / "opt", 1, "hydra.sweeper.storage=nosuchdb://u:hunter2@h/x"),
                   cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: cannot open Optuna storage nosuchdb://u:***@h/x")
    assert "hunter2" not in proc.stderr + proc.stdout


def test_mask_hides_passwords():
    assert mask("postgresql://bob:s3cr:t@db.example:5432/x") == "postgresql://bob:***@db.example:5432/x"
    assert mask("sqlite:///outputs/a.db") == "sqlite:///outputs/a.db"
    assert mask("see postgresql+psycopg2://a:b@h/d and mysql://c:d@e/f") == \
        "see postgresql+psycopg2://a:***@h/d and mysql://c:***@e/f"


POSTGRES_URL = os.environ.get("SWEEP_TEST_POSTGRES_URL")


@pytest.mark.skipif(not POSTGRES_URL, reason="no PostgreSQL server (SWEEP_TEST_POSTGRES_URL; .ci/start-postgres)")
def test_two_workers_share_one_postgresql_study(idx_root, tmp_path):
    password = POSTGRES_URL.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
    study_name = f"two-workers-{os.getpid()}-{time.time_ns()}"
    sweep_dir = tmp_path / "shared-sweep"
    # With pruning on, every job also reaches its own trial through PostgreSQL to report each epoch.
    base = [sys.executable, "-m", "sweep.train", *search(idx_root, sweep_dir, 8), f"hydra.sweeper.study_name={study_name}",
            "hydra.sweeper.pruner=median", "hydra.sweeper.pruner_args={n_startup_trials: 8}"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # One worker gets the URL on its command line, the other from the environment: both must stay secret.
    workers = [
        subprocess.Popen([*base, f"hydra.sweeper.storage={POSTGRES_URL}"], cwd=tmp_path, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True),
        subprocess.Popen(base, cwd=tmp_path, env={**env, "SWEEP_OPTUNA_STORAGE": POSTGRES_URL},
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True),
    ]
    outputs = [w.communicate(timeout=240)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    study = optuna.load_study(study_name=study_name, storage=POSTGRES_URL)
    completed = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(completed) == 8
    assert all(sorted(t.intermediate_values) == [1, 2] for t in completed)  # reported by the jobs
    assert sorted({t.number for t in completed}) == sorted(t.number for t in completed)
    dirs = [t.user_attrs["job_dir"] for t in completed]
    assert len(set(dirs)) == 8 and all((sweep_dir / d / "metrics.json").is_file() for d in dirs)
    started = [out.count(" started") for out in outputs]
    assert all(n >= 1 for n in started), f"a worker ran no trial: {started}"
    for path in sweep_dir.rglob("*"):
        if path.is_file() and path.suffix != ".pt":
            assert password not in path.read_text(errors="replace"), f"password in {path}"
    assert all(password not in out for out in outputs)
    assert ":***@" in (sweep_dir / "optimization_results.yaml").read_text()


def test_pruning_stops_a_trial_that_cannot_learn(idx_root, tmp_path):
    """lr=1e-7 cannot learn: once two trials have finished, the median pruner stops such trials early."""
    sweep_dir = tmp_path / "opt"
    args = ["-m", "search=optuna", *tiny(idx_root, "trainer.epochs=4", "model.num_hidden=16", "data.batch_size=16"),
            "optimizer.lr=choice(0.1, 1e-7)", "optimizer.momentum=0.9", f"hydra.sweep.dir={sweep_dir}",
            "hydra.sweeper.n_trials=6", "hydra.sweeper.pruner=median",
            "hydra.sweeper.pruner_args={n_startup_trials: 2, n_warmup_steps: 0}"]
    proc = run_cli(*args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    study = load_study(sweep_dir)
    pruned = [t for t in study.trials if t.state.name == "PRUNED"]
    assert pruned, f"nothing was pruned: {[(t.number, t.params, t.state.name) for t in study.trials]}"
    for t in pruned:
        assert t.params["optimizer.lr"] == 1e-7
        job = sweep_dir / f"trial_{t.number:04d}"
        metrics = json.loads((job / "metrics.json").read_text())
        assert metrics["status"] == "pruned" and metrics["epochs_completed"] < 4
        assert metrics["best_epoch"] <= metrics["epochs_completed"] and metrics["test_acc"] is not None
        assert len((job / "history.csv").read_text().splitlines()) == 1 + metrics["epochs_completed"]
        assert (job / "checkpoints" / "best.pt").is_file() and (job / "checkpoints" / "last.pt").is_file()
        assert sorted(t.intermediate_values) == list(range(1, metrics["epochs_completed"] + 1))
        assert t.value == t.intermediate_values[metrics["epochs_completed"]]  # Optuna's value of a pruned trial
    learners = [t for t in study.trials if t.params["optimizer.lr"] == 0.1]
    assert learners and all(t.state.name == "COMPLETE" for t in learners)

    from sweep.report import load_runs

    runs = load_runs(sweep_dir).set_index("job")
    for t in pruned:
        row = runs.loc[f"trial_{t.number:04d}"]
        assert row["status"] == "pruned" and row["epochs_completed"] < 4


def test_asynchronous_scheduling_keeps_n_jobs_in_flight(idx_root, tmp_path):
    """Trials of very unequal length: a new trial starts as soon as one ends, not when a batch ends."""
    sweep_dir = tmp_path / "opt"
    args = ["-m", "search=optuna", *tiny(idx_root), "trainer.epochs=choice(1, 12)", f"hydra.sweep.dir={sweep_dir}",
            "hydra.sweeper.n_trials=6", "hydra/launcher=joblib", "hydra.sweeper.n_jobs=2"]
    proc = run_cli(*args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    trials = sorted(load_study(sweep_dir).trials, key=lambda t: t.datetime_start)
    assert len(trials) == 6 and all(t.state.name == "COMPLETE" for t in trials)
    spans = [(t.datetime_start.timestamp(), t.datetime_complete.timestamp()) for t in trials]

    def in_flight(at: float) -> int:
        return sum(start <= at < end for start, end in spans)

    assert max(in_flight(start) for start, _ in spans) <= 2
    # Each later trial starts while another is still running: its slot was freed by one trial ending,
    # where synchronous batches would have waited for both.
    overlapped = [in_flight(start) == 2 for start, _ in spans[2:]]
    assert sum(overlapped) >= len(overlapped) - 1, spans


def test_fixed_params_are_one_user_attribute_and_may_not_be_searched_too():
    import types

    from optuna.distributions import IntUniformDistribution

    from sweep.search import FIXED_ATTR, ResumableOptunaSweeper

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = {"model.num_hidden": IntUniformDistribution(8, 16)}
    fixed = {"trainer.epochs": 3, "data.root": "/data"}
    plain = types.SimpleNamespace(custom_search_space_extender=None, config=None)
    trial = optuna.create_study().ask()
    (overrides,) = ResumableOptunaSweeper._configure_trials(plain, [trial], space, fixed)
    assert set(overrides) == {f"model.num_hidden={trial.params['model.num_hidden']}", "trainer.epochs=3",
                              "data.root=/data"}
    assert trial.user_attrs == {FIXED_ATTR: fixed}
    extender = types.SimpleNamespace(config=None,
                                     custom_search_space_extender=lambda cfg, t: t.suggest_int("trainer.epochs", 1, 5))
    with pytest.raises(ValueError, match="both fixed and searched.*trainer.epochs"):
        ResumableOptunaSweeper._configure_trials(extender, [optuna.create_study().ask()], space, fixed)
