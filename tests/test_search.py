"""The Optuna sweeper (hydra/sweeper=sweep_optuna) end to end, in subprocesses: sweep.train on tiny data, and
the toy Hydra apps of tests/apps. Elsewhere: submitit, journal storage and devices (test_cluster.py), storage
URLs (test_storage.py), search-space syntax (test_space.py)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Callable, Iterator, NamedTuple, Optional

import optuna
import pytest
import yaml

from conftest import POSTGRES_URL, REPO, assert_one_line_error, cli_env, needs_postgres, run_cli, tiny
from sweep import checkpoint
from sweep.fake_data import write_dataset
from sweep.storage import STORAGE_ENV

APPS = REPO / "tests" / "apps"
SPACE = ["model.num_hidden=int(interval(4, 32))", "optimizer.lr=tag(log, interval(0.01, 0.3))"]
# One line per finished trial (sweep.search), e.g. "trial 3 COMPLETE (4/6) after 0.1s: value 1.5; best 1.2
# (trial 1); 4 complete, 0 pruned, 0 failed; about 2 s left"
PROGRESS = re.compile(r"trial (?P<number>\d+) (?P<state>COMPLETE|PRUNED|FAIL) \((?P<done>\d+)/(?P<total>\d+)\) "
                      r"after (?P<seconds>\d+\.\d)s: (?P<shown>.*?)"
                      r"(?:; best (?P<best>\S+) \(trial (?P<best_trial>\d+)\))?"
                      r"; (?P<complete>\d+) complete, (?P<pruned>\d+) pruned, (?P<failed>\d+) failed"
                      r"(?:; about .+ left)?$", re.MULTILINE)


# --------------------------------------------------------------------------- helpers


def search(root: Path, sweep_dir: Path, n_trials: int, *extra: str) -> list[str]:
    """search=optuna with num_hidden and lr narrowed, on the tiny data set (2 epochs a trial)."""
    return ["-m", "search=optuna", *tiny(root, "trainer.epochs=2"), *SPACE, f"hydra.sweep.dir={sweep_dir}",
            f"hydra.sweeper.n_trials={n_trials}", *extra]


def app(name: str, sweep_dir: Path, *overrides: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """A toy app of tests/apps as a user runs it, with -m and its sweep folder."""
    return subprocess.run([sys.executable, str(APPS / f"{name}.py"), "-m", f"hydra.sweep.dir={sweep_dir}", *overrides],
                          capture_output=True, text=True, timeout=timeout, env=cli_env(), cwd=cwd)


def load_study(sweep_dir: Path, name: Optional[str] = "pigeon") -> optuna.Study:
    """The study in the sweep folder's study.db (name None: the only one there)."""
    return optuna.load_study(study_name=name, storage=f"sqlite:///{sweep_dir / 'study.db'}")


def states(study: optuna.Study) -> dict[str, int]:
    return dict(Counter(t.state.name for t in study.trials))


def counted_failures(study: optuna.Study) -> list[int]:
    """Trials that count toward max_failure_rate (a stopped-and-requeued trial is FAIL too, but does not)."""
    return [t.number for t in study.trials if "failure" in t.user_attrs]


def epoch_saved(job: Path) -> int:
    """The epoch a trial's last.pt holds (0: none yet). Trials keep no epoch files (keep_checkpoints: auto)."""
    last = job / "checkpoints" / "last.pt"
    return checkpoint.load(last)["epoch"] if last.exists() else 0


def mtimes(sweep_dir: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in sweep_dir.glob("trial_*/**/*") if p.is_file()}


def no_ansi_in_logs(sweep_dir: Path) -> None:
    logs = list(sweep_dir.rglob("*.log"))
    assert logs
    for path in logs:
        assert "\x1b[" not in path.read_text(), f"colour codes in {path}"


def start(args: list[str], cwd: Path, new_session: bool = False) -> subprocess.Popen:
    """sweep.train in the background, its output in files (a full pipe would block it while a test waits)."""
    out, err = (open(cwd / name, "w") for name in ("stdout.txt", "stderr.txt"))
    with out, err:
        return subprocess.Popen([sys.executable, "-m", "sweep.train", *args], cwd=cwd, env=cli_env(), stdout=out,
                                stderr=err, text=True, start_new_session=new_session)


def wait_for(condition: Callable[[], bool], proc: subprocess.Popen, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"the sweep ended before {what}"
        assert time.monotonic() < deadline, f"no {what} after {timeout} s"
        time.sleep(0.02)


def _pids_with_open_file(root_pid: int, path: Path) -> list[int]:
    """Processes under root_pid (itself included) that hold `path` open."""
    found, todo = [], [root_pid]
    while todo:
        pid = todo.pop()
        try:
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") == str(path) for fd in os.listdir(f"/proc/{pid}/fd")):
                found.append(pid)
            for task in os.listdir(f"/proc/{pid}/task"):
                todo += [int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return found


@pytest.fixture(scope="module")
def slow_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Enough images that a batch-size-1 epoch lasts about half a second: long enough to kill a trial in."""
    return write_dataset(tmp_path_factory.mktemp("slow"), 2600, 100)


def slow(root: Path, sweep_dir: Path, n_trials: int, epochs: int, *extra: str, train_size: int = 2500) -> list[str]:
    return ["-m", "search=optuna", f"data.root={root}", f"data.train_size={train_size}", "data.val_size=100",
            "data.batch_size=1", f"trainer.epochs={epochs}", "model.num_hidden=choice(8, 16)", "optimizer.lr=0.01",
            f"hydra.sweep.dir={sweep_dir}", f"hydra.sweeper.n_trials={n_trials}", *extra]


# --------------------------------------------------------------------------- sweep.train: a persistent study


@pytest.mark.slow
def test_search_records_a_persistent_study(idx_root: Path, tmp_path: Path) -> None:
    sweep_dir = tmp_path / "opt"
    proc = run_cli(*search(idx_root, sweep_dir, 3), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    study = load_study(sweep_dir)
    assert states(study) == {"COMPLETE": 3}
    # the study's fixed settings, recorded once: the command line's values (the last of trainer.epochs wins)
    fixed = study.user_attrs["sweep_fixed"]
    assert fixed["data.train_size"] == "128" and "data.root" not in fixed and "trainer.epochs" not in fixed
    for t in study.trials:
        assert 4 <= t.params["model.num_hidden"] <= 32 and 0.01 <= t.params["optimizer.lr"] <= 0.3
        overrides = yaml.safe_load((sweep_dir / t.user_attrs["job_dir"] / ".hydra" / "overrides.yaml").read_text())
        assert "trainer.epochs=2" in overrides and "trainer.epochs=3" not in overrides
        job = sweep_dir / f"trial_{t.number:04d}"
        assert t.user_attrs["job_dir"] == job.name
        metrics = json.loads((job / "metrics.json").read_text())
        assert metrics["objective"] == pytest.approx(t.value)  # the value is the selected val accuracy
        record = json.loads((job / "trial.json").read_text())
        assert record["params"] == t.params and record["number"] == t.number and record["study_name"] == "pigeon"
        # trainer.keep_checkpoints: auto keeps no epoch files in a study's trials
        assert sorted(p.name for p in (job / "checkpoints").iterdir()) == ["best.pt", "last.pt"]
        assert record["state"] == "COMPLETE" and record["value"] == pytest.approx(t.value) and record["error"] is None
    rows = (sweep_dir / "trials.csv").read_text().splitlines()
    assert rows[0].startswith("number,state,value,duration_s,job_dir,requeued,params_")
    assert len(rows) == 4 and all(",COMPLETE," in r for r in rows[1:])
    results = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    best = study.best_trial
    assert results["best_params"] == best.params
    assert results["best_value"] == pytest.approx(best.value) and results["best_trial"] == best.number
    assert Path(results["best_job_dir"]) == sweep_dir / f"trial_{best.number:04d}"
    assert Path(results["best_checkpoint"]) == sweep_dir / f"trial_{best.number:04d}" / "checkpoints" / "best.pt"
    assert Path(results["best_checkpoint"]).is_file()


@pytest.mark.slow
def test_rerun_continues_the_study_without_redoing_or_overwriting(idx_root: Path, tmp_path: Path) -> None:
    sweep_dir = tmp_path / "opt"
    assert run_cli(*search(idx_root, sweep_dir, 2), cwd=tmp_path).returncode == 0
    first = mtimes(sweep_dir)
    assert len(first) > 10
    again = run_cli(*search(idx_root, sweep_dir, 2), cwd=tmp_path)  # already complete: runs nothing
    assert again.returncode == 0, again.stderr
    assert "2 of 2 trials finished" in again.stdout + again.stderr
    assert " started" not in again.stdout + again.stderr
    more = run_cli(*search(idx_root, sweep_dir, 3), cwd=tmp_path)
    assert more.returncode == 0, more.stderr
    assert "2 of 3 trials finished" in more.stdout + more.stderr
    study = load_study(sweep_dir)
    assert states(study) == {"COMPLETE": 3}
    assert sorted(p.name for p in sweep_dir.glob("trial_*")) == ["trial_0000", "trial_0001", "trial_0002"]
    assert {p: p.stat().st_mtime_ns for p in first} == first  # nothing of the first run was rewritten


@pytest.mark.slow
def test_a_killed_sweeper_s_trial_continues_from_its_checkpoint_without_waiting(slow_root: Path,
                                                                                 tmp_path: Path) -> None:
    sweep_dir, job = tmp_path / "opt", tmp_path / "opt" / "trial_0000"
    args = slow(slow_root, sweep_dir, 1, 3, "hydra.sweeper.grace_period=60")
    proc = start(args, tmp_path)
    wait_for(lambda: epoch_saved(job) > 0, proc, "checkpoint of epoch 1")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    saved = epoch_saved(job)
    assert states(load_study(sweep_dir)) == {"RUNNING": 1}

    began = time.monotonic()
    rerun = run_cli(*args, cwd=tmp_path)
    took = time.monotonic() - began
    assert rerun.returncode == 0, rerun.stderr
    assert took < 30, f"the rerun took {took:.0f} s: it waited for the grace period"
    study = load_study(sweep_dir)
    killed, retry = study.trials
    assert killed.state.name == "FAIL" and "requeued" in killed.user_attrs and "failure" not in killed.user_attrs
    assert retry.state.name == "COMPLETE" and retry.user_attrs["job_dir"] == "trial_0000"
    assert retry.user_attrs["retry_of"] == 0 and retry.params == killed.params
    assert counted_failures(study) == []
    assert re.search(rf"resuming \S*trial_0000 after epoch {saved}\b", (job / "train.log").read_text())
    assert len((job / "history.csv").read_text().splitlines()) == 1 + 3  # epochs 1..3, each trained once
    assert sorted(p.name for p in sweep_dir.glob("trial_*")) == ["trial_0000"]
    last = list(PROGRESS.finditer(rerun.stdout + rerun.stderr))[-1]
    assert (last["state"], last["failed"]) == ("COMPLETE", "0")


@pytest.mark.slow
def test_a_killed_job_process_fails_its_trial_and_the_sweep_goes_on(tmp_path: Path) -> None:
    """joblib: the worker process running trial 0 is killed, not the sweeper."""
    sweep_dir = tmp_path / "q"
    log = (sweep_dir / "trial_0000" / "quadratic.log").resolve()
    proc = subprocess.Popen([sys.executable, str(APPS / "quadratic.py"), "-m", f"hydra.sweep.dir={sweep_dir}",
                             "hydra/launcher=joblib", "hydra.sweeper.n_trials=2", "hydra.sweeper.max_failure_rate=0.5",
                             "steps=20", "sleep=0.1"], cwd=tmp_path, env=cli_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    victims: list[int] = []

    def worker_found() -> bool:
        victims[:] = [p for p in _pids_with_open_file(proc.pid, log) if p != proc.pid]
        return bool(victims)

    wait_for(worker_found, proc, "worker running trial 0")
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    assert proc.wait(timeout=120) == 0
    study = load_study(sweep_dir, None)
    failed = [t for t in study.trials if t.state.name == "FAIL"]
    assert [t.number for t in failed] == [0] and "terminated" in failed[0].user_attrs["failure"]
    assert "terminated" in json.loads((sweep_dir / "trial_0000" / "trial.json").read_text())["error"]
    assert [t.number for t in study.trials if t.state.name == "COMPLETE"] == [1]


# --------------------------------------------------------------------------- Ctrl-C


@pytest.mark.slow
def test_ctrl_c_requeues_the_trial_and_the_next_run_continues_it(slow_root: Path, tmp_path: Path) -> None:
    """SIGINT to the sweeper alone; the basic launcher runs the trial in the sweeper's process."""
    sweep_dir, job = tmp_path / "opt", tmp_path / "opt" / "trial_0000"
    args = slow(slow_root, sweep_dir, 1, 6)
    proc = start(args, tmp_path, new_session=True)
    wait_for(lambda: epoch_saved(job) > 0, proc, "checkpoint of epoch 1")
    at_signal = epoch_saved(job)
    os.kill(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    assert (tmp_path / "stderr.txt").read_text().strip().splitlines()[-1].startswith("interrupted:")
    stopped = epoch_saved(job)
    assert stopped <= at_signal + 1 < 6  # at the next epoch boundary
    trials = load_study(sweep_dir).trials
    assert [t.state.name for t in trials] == ["FAIL", "WAITING"]
    assert "interrupted" in trials[0].user_attrs["requeued"] and "failure" not in trials[0].user_attrs
    assert trials[1].user_attrs["job_dir"] == "trial_0000"

    rerun = run_cli(*args, cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    study = load_study(sweep_dir)
    assert states(study) == {"FAIL": 1, "COMPLETE": 1} and counted_failures(study) == []
    assert re.search(rf"resuming \S*trial_0000 after epoch {stopped}\b", (job / "train.log").read_text())
    assert len((job / "history.csv").read_text().splitlines()) == 1 + 6
    assert sorted(p.name for p in sweep_dir.glob("trial_*")) == ["trial_0000"]


@pytest.mark.slow
def test_ctrl_c_in_a_terminal_stops_parallel_trials_at_once(slow_root: Path, tmp_path: Path) -> None:
    """SIGINT to the whole process group, as a terminal sends it: the joblib workers stop too."""
    sweep_dir = tmp_path / "opt"
    jobs = [sweep_dir / "trial_0000", sweep_dir / "trial_0001"]
    args = slow(slow_root, sweep_dir, 2, 8, "hydra/launcher=joblib", "hydra.sweeper.n_jobs=2", "trainer.threads=1",
                train_size=1200)
    proc = start(args, tmp_path, new_session=True)
    wait_for(lambda: all(epoch_saved(j) for j in jobs), proc, "checkpoint of epoch 1 in both trials")
    at_signal = [epoch_saved(j) for j in jobs]
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    assert (tmp_path / "stderr.txt").read_text().strip().splitlines()[-1].startswith("interrupted:")
    stopped = [epoch_saved(j) for j in jobs]
    assert all(s <= a + 1 < 8 for s, a in zip(stopped, at_signal)), (at_signal, stopped)  # 8: the last epoch
    trials = load_study(sweep_dir).trials
    assert Counter(t.state.name for t in trials) == {"FAIL": 2, "WAITING": 2}
    assert sorted(t.user_attrs["job_dir"] for t in trials if t.state.name == "WAITING") == [j.name for j in jobs]

    rerun = run_cli(*args, cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    study = load_study(sweep_dir)
    assert states(study) == {"FAIL": 2, "COMPLETE": 2} and counted_failures(study) == []
    for job, epoch in zip(jobs, stopped):
        assert re.search(rf"resuming \S*{job.name} after epoch {epoch}\b", (job / "train.log").read_text())
    assert sorted(p.name for p in sweep_dir.glob("trial_*")) == [j.name for j in jobs]


# --------------------------------------------------------------------------- failures


@pytest.mark.slow
def test_failing_trials_are_recorded_and_the_sweep_goes_on(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "q"
    proc = app("quadratic", sweep_dir, "fail_above=10", "hydra.sweeper.max_failure_rate=1.0", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    study = load_study(sweep_dir, None)
    assert len(study.trials) == 6
    rows = {r.split(",")[0]: r.split(",")[1] for r in (sweep_dir / "trials.csv").read_text().splitlines()[1:]}
    for t in study.trials:
        value = (t.params["x"] - 2) ** 2 + (t.params["y"] + 1) ** 2
        record = json.loads((sweep_dir / f"trial_{t.number:04d}" / "trial.json").read_text())
        assert rows[str(t.number)] == t.state.name == record["state"]
        if value > 10:
            assert t.state.name == "FAIL" and "is above fail_above" in t.user_attrs["failure"]
            assert record["error"].startswith("ValueError: value")
        else:
            assert t.state.name == "COMPLETE" and t.value == pytest.approx(value) and record["error"] is None
    assert {"FAIL", "COMPLETE"} <= set(states(study))


@pytest.mark.slow
def test_too_many_failures_stop_the_sweep_with_one_line(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "q"
    proc = app("quadratic", sweep_dir, "fail_above=-1", "hydra.sweeper.n_trials=8",
               "hydra.sweeper.max_failure_rate=0.2", cwd=tmp_path)
    assert proc.returncode == 2
    assert_one_line_error(proc.returncode, proc.stderr, proc.stdout, "error: 2 of 8 trials failed, more than "
                          "hydra.sweeper.max_failure_rate=0.2")
    assert states(load_study(sweep_dir, None)) == {"FAIL": 2}
    assert len((sweep_dir / "trials.csv").read_text().splitlines()) == 3


@pytest.mark.slow
def test_diverged_runs_are_failed_trials_and_bad_values_are_refused_before_the_study(idx_root: Path,
                                                                                    tmp_path: Path) -> None:
    """lr=1e30 is a valid setting that diverges to NaN in its trial; a value no trial could run (a searched
    choice, an end of a range, a fixed setting, a mistyped key) is refused before the study is created."""
    sweep_dir = tmp_path / "grid"
    common = ["-m", "search=grid", *tiny(idx_root, "trainer.epochs=2"), "optimizer.momentum=0",
              f"hydra.sweep.dir={sweep_dir}", "hydra.sweeper.n_trials=4", "hydra.sweeper.max_failure_rate=1.0"]
    proc = run_cli(*common, "model.num_hidden=choice(8, 16)", "optimizer.lr=choice(0.05, 1e30)", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    study = load_study(sweep_dir, "grid")
    assert len(study.trials) == 4
    for t in study.trials:
        error = json.loads((sweep_dir / f"trial_{t.number:04d}" / "trial.json").read_text())["error"]
        if t.params["optimizer.lr"] > 1:
            assert t.state.name == "FAIL" and "diverged" in t.user_attrs["failure"] and "diverged" in error
        else:
            assert t.state.name == "COMPLETE" and error is None

    for bad, says in ((["model.num_hidden=choice(8, -1)"], ["the search space reaches model.num_hidden=-1",
                                                              "must be at least 1"]),
                      (["optimizer.lr=interval(-1, 1)"], ["the search space reaches optimizer.lr=-1.0", "above 0"]),
                      (["model.dropout=1.5"], ["model.dropout=1.5 is out of range"]),
                      (["model.num_hiden=choice(8, 16)"], ["did you mean model.num_hidden?"])):
        other = tmp_path / "other"
        proc = run_cli(*common, *bad, f"hydra.sweep.dir={other}", cwd=tmp_path)
        assert_one_line_error(proc.returncode, proc.stderr, proc.stdout, *says)
        assert proc.returncode == 2 and not other.exists()


# --------------------------------------------------------------------------- samplers, workers, pruning


@pytest.mark.slow
def test_grid_search_is_the_seed_comparison(idx_root: Path, tmp_path: Path) -> None:
    sweep_dir = tmp_path / "grid"
    proc = run_cli("-m", "search=grid", *tiny(idx_root, "trainer.epochs=1"), f"hydra.sweep.dir={sweep_dir}",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    study = load_study(sweep_dir, "grid")
    assert states(study) == {"COMPLETE": 3}
    assert sorted(t.params["model.num_hidden"] for t in study.trials) == [15, 30, 60]


@pytest.mark.slow
def test_asynchronous_scheduling_keeps_n_jobs_in_flight(tmp_path: Path) -> None:
    """Trials of very unequal length: a new trial starts as soon as one ends, not when a batch ends."""
    sweep_dir = tmp_path / "q"
    proc = app("quadratic", sweep_dir, "hydra/launcher=joblib", "hydra.sweeper.n_jobs=2", "steps=1",
               "sleep=choice(0.6, 2.0)", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    calls = [json.loads(p.read_text()) for p in sorted(sweep_dir.glob("trial_*/calls.jsonl"))]
    assert len(calls) == 6
    spans = sorted((c["start"], c["end"]) for c in calls)

    def in_flight(at: float) -> int:
        return sum(start <= at < end for start, end in spans)

    assert max(in_flight(start) for start, _ in spans) <= 2
    # Each later trial starts while another is still running: its slot was freed by one trial ending,
    # where synchronous batches would have waited for both.
    overlapped = [in_flight(start) == 2 for start, _ in spans[2:]]
    assert sum(overlapped) >= len(overlapped) - 1, spans




class SharedSweep(NamedTuple):
    sweep_dir: Path
    outputs: list[str]
    trials: list[optuna.trial.FrozenTrial]


@pytest.fixture(scope="module")
def shared_sweep(idx_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedSweep]:
    """Two sweep.train workers started together on one PostgreSQL study of 8 trials, in one sweep folder."""
    assert POSTGRES_URL is not None
    study_name = f"two-workers-{os.getpid()}-{time.time_ns()}"
    cwd = tmp_path_factory.mktemp("postgres")
    sweep_dir = cwd / "shared-sweep"
    # With pruning on, every job also reaches its own trial through PostgreSQL to report each epoch.
    base = [sys.executable, "-m", "sweep.train", *search(idx_root, sweep_dir, 8),
            f"hydra.sweeper.study_name={study_name}", "hydra.sweeper.pruner=median",
            "hydra.sweeper.pruner_args={n_startup_trials: 8}"]
    env = cli_env()
    env.pop(STORAGE_ENV, None)
    # One worker gets the URL on its command line, the other from the environment: both must stay secret.
    workers = [
        subprocess.Popen([*base, f"hydra.sweeper.storage={POSTGRES_URL}"], cwd=cwd, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True),
        subprocess.Popen(base, cwd=cwd, env={**env, STORAGE_ENV: POSTGRES_URL},
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True),
    ]
    try:
        outputs = [w.communicate(timeout=240)[0] for w in workers]
        assert [w.returncode for w in workers] == [0, 0], outputs
        trials = optuna.load_study(study_name=study_name, storage=POSTGRES_URL).trials
        yield SharedSweep(sweep_dir, outputs, [t for t in trials if "surplus" not in t.user_attrs])
    finally:
        for w in workers:
            w.kill()
        optuna.delete_study(study_name=study_name, storage=POSTGRES_URL)


@pytest.mark.slow
@needs_postgres
def test_two_workers_share_one_postgresql_study(shared_sweep: SharedSweep) -> None:
    assert POSTGRES_URL is not None
    password = POSTGRES_URL.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
    sweep_dir, outputs, trials = shared_sweep
    assert [t.state.name for t in trials] == ["COMPLETE"] * 8
    assert all(sorted(t.intermediate_values) == [1, 2] for t in trials)  # reported by the jobs
    dirs = [t.user_attrs["job_dir"] for t in trials]
    assert len(set(dirs)) == 8 and all((sweep_dir / d / "metrics.json").is_file() for d in dirs)
    started = [sorted(int(n) for n in re.findall(r"trial (\d+) started", out)) for out in outputs]
    assert all(started), f"a worker ran no trial: {started}"
    assert sorted(started[0] + started[1]) == [t.number for t in trials]  # each trial ran once, by one worker
    for path in sweep_dir.rglob("*"):
        if path.is_file() and path.suffix != ".pt":
            assert password not in path.read_text(errors="replace"), f"password in {path}"
    assert all(password not in out for out in outputs)
    assert ":***@" in (sweep_dir / "optimization_results.yaml").read_text()


@pytest.mark.slow
@needs_postgres
def test_two_workers_sample_distinct_trials(shared_sweep: SharedSweep) -> None:
    params = [tuple(sorted(t.params.items())) for t in shared_sweep.trials]
    assert len(set(params)) == len(params) == 8, params


@pytest.mark.slow
def test_pruning_stops_a_trial_that_cannot_learn(idx_root: Path, tmp_path: Path) -> None:
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
        assert json.loads((job / "trial.json").read_text())["state"] == "PRUNED"
    learners = [t for t in study.trials if t.params["optimizer.lr"] == 0.1]
    assert learners and all(t.state.name == "COMPLETE" for t in learners)

    from sweep.report import load_runs

    runs = load_runs(sweep_dir).set_index("job")
    for t in pruned:
        row = runs.loc[f"trial_{t.number:04d}"]
        assert row["status"] == "pruned" and row["epochs_completed"] < 4


@pytest.mark.slow
def test_any_app_prunes_through_report_value(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "q"
    proc = app("quadratic", sweep_dir, "steps=4", "hydra.sweeper.n_trials=8", "hydra.sweeper.pruner=median",
               "hydra.sweeper.pruner_args={n_startup_trials: 2, n_warmup_steps: 0}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    study = load_study(sweep_dir, None)
    pruned = [t for t in study.trials if t.state.name == "PRUNED"]
    assert pruned and states(study).get("COMPLETE", 0) >= 2, states(study)
    for t in study.trials:
        job = sweep_dir / f"trial_{t.number:04d}"
        steps = sorted(t.intermediate_values)
        if t.state.name == "PRUNED":
            assert steps == list(range(len(steps))) and len(steps) < 4  # stopped within its steps
            assert not (job / "calls.jsonl").exists()  # the app raised TrialPruned before writing its record
        else:
            assert steps == [0, 1, 2, 3]
    lines = [m.groupdict() for m in PROGRESS.finditer(proc.stdout + proc.stderr)]
    assert [(int(m["number"]), m["state"]) for m in lines] == [(t.number, t.state.name) for t in study.trials]
    assert [int(m["pruned"]) for m in lines] == [sum(m["state"] == "PRUNED" for m in lines[:i + 1])
                                                 for i in range(len(lines))]
    no_ansi_in_logs(sweep_dir)


# --------------------------------------------------------------------------- any Hydra app


@pytest.mark.slow
def test_any_app_runs_its_trials_and_logs_progress(tmp_path: Path) -> None:
    """quadratic.py has no `resume` key: the sweeper must not give it one."""
    sweep_dir = tmp_path / "q"
    proc = app("quadratic", sweep_dir, "hydra.sweeper.n_trials=4", cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, proc.stderr
    assert "Could not override" not in out
    study = load_study(sweep_dir, None)
    assert states(study) == {"COMPLETE": 4}
    for t in study.trials:
        (call,) = [json.loads(line) for line in (sweep_dir / f"trial_{t.number:04d}" / "calls.jsonl").open()]
        assert (call["x"], call["y"]) == (t.params["x"], t.params["y"])
    lines = [m.groupdict() for m in PROGRESS.finditer(out)]
    assert [int(m["number"]) for m in lines] == [0, 1, 2, 3]
    values: list[float] = []
    for done, m in enumerate(lines, 1):
        values.append(float(m["shown"].removeprefix("value ")))
        assert m["state"] == "COMPLETE" and (int(m["done"]), int(m["total"])) == (done, 4)
        assert float(m["best"]) == pytest.approx(min(values), rel=1e-5)
        assert int(m["best_trial"]) == values.index(min(values))
        assert (int(m["complete"]), int(m["pruned"]), int(m["failed"])) == (done, 0, 0)
    assert [float(m["shown"].removeprefix("value ")) for m in lines] == pytest.approx(
        [t.value for t in study.trials], rel=1e-5)
    no_ansi_in_logs(sweep_dir)
    assert "\x1b[" not in out


@pytest.mark.slow
def test_two_objectives_write_a_non_dominated_pareto_front(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "two"
    proc = app("two_objective", sweep_dir, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    study = load_study(sweep_dir, None)
    assert states(study) == {"COMPLETE": 8}
    solutions = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())["solutions"]
    assert solutions and all(set(s) == {"params", "values"} and len(s["values"]) == 2 for s in solutions)
    rows = (sweep_dir / "pareto_front.csv").read_text().splitlines()
    assert rows[0].startswith("number,state,values_0,values_1,") and len(rows) == 1 + len(solutions)

    def dominates(a: list[float], b: list[float]) -> bool:
        return all(x <= y for x, y in zip(a, b)) and a != b

    every = [t.values for t in study.trials]
    for s in solutions:
        x, y = s["params"]["x"], s["params"]["y"]
        assert s["values"] == pytest.approx([x ** 2 + y, (x - 2) ** 2 + y ** 2])
        assert not any(dominates(v, s["values"]) for v in every)
    assert all(any(v == s["values"] for s in solutions) for v in every if not any(dominates(w, v) for w in every))


@pytest.mark.slow
def test_a_custom_search_space_keeps_its_bound(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "custom"
    proc = app("custom_space", sweep_dir, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    study = load_study(sweep_dir, None)
    assert states(study) == {"COMPLETE": 5}
    for t in study.trials:
        assert set(t.params) == {"x", "z"} and abs(t.params["z"] - t.params["x"]) <= 0.5 + 1e-9


# --------------------------------------------------------------------------- study guards


def assert_refused(proc: subprocess.CompletedProcess, study: optuna.Study, trials: int, *fragments: str) -> None:
    """One line and exit 2, and the study as it was: no trial added, none left RUNNING."""
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert_one_line_error(proc.returncode, proc.stderr, proc.stdout, "error: ", *fragments)
    assert len(study.trials) == trials and "RUNNING" not in states(study)


@pytest.mark.slow
def test_a_changed_space_or_direction_is_refused(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "q"
    assert app("quadratic", sweep_dir, "hydra.sweeper.n_trials=2", cwd=tmp_path).returncode == 0
    study = load_study(sweep_dir, None)
    assert_refused(app("quadratic", sweep_dir, "hydra.sweeper.n_trials=3", "x=interval(-1.0, 1.0)", cwd=tmp_path),
                   study, 2, "another search space", "x:")
    assert_refused(app("quadratic", sweep_dir, "hydra.sweeper.n_trials=3", "hydra.sweeper.direction=maximize",
                       cwd=tmp_path), study, 2, "optimises ['minimize'], not ['maximize']", "study_name")
    assert_refused(app("quadratic", sweep_dir, "hydra.sweeper.n_trials=3", "steps=2", cwd=tmp_path),
                   study, 2, "other fixed settings", "steps: 0 -> 2")


@pytest.mark.slow
def test_without_a_study_name_a_rerun_continues_the_single_study(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "q"
    assert app("quadratic", sweep_dir, "hydra.sweeper.n_trials=2", cwd=tmp_path).returncode == 0
    first = mtimes(sweep_dir)
    assert app("quadratic", sweep_dir, "hydra.sweeper.n_trials=3", cwd=tmp_path).returncode == 0
    (name,) = optuna.study.get_all_study_names(f"sqlite:///{sweep_dir / 'study.db'}")
    assert states(load_study(sweep_dir, name)) == {"COMPLETE": 3}
    # A second study in the same folder numbers its trials from 0 again, in folders of its own.
    assert app("quadratic", sweep_dir, "hydra.sweeper.n_trials=2", "hydra.sweeper.study_name=other",
               cwd=tmp_path).returncode == 0
    assert sorted(p.name for p in sweep_dir.glob("*trial_*")) == [
        "other_trial_0000", "other_trial_0001", "trial_0000", "trial_0001", "trial_0002"]
    assert {p: p.stat().st_mtime_ns for p in first} == first
    proc = app("quadratic", sweep_dir, "hydra.sweeper.n_trials=4", cwd=tmp_path)
    assert_one_line_error(proc.returncode, proc.stderr, proc.stdout, "holds 2 studies", "hydra.sweeper.study_name=")
    assert proc.returncode == 2


@pytest.mark.slow
def test_a_key_both_fixed_and_searched_is_refused_before_a_trial_starts(tmp_path: Path) -> None:
    """custom_space.py searches z in Python; fixing z on the command line as well is a contradiction."""
    sweep_dir = tmp_path / "custom"
    proc = app("custom_space", sweep_dir, "z=0.5", cwd=tmp_path)
    assert_one_line_error(proc.returncode, proc.stderr, proc.stdout, "z both fixed and searched")
    assert proc.returncode == 2
    assert "RUNNING" not in states(load_study(sweep_dir, None))


@pytest.mark.slow
def test_a_changed_fixed_setting_is_refused_but_volatile_keys_are_not(idx_root: Path, tmp_path: Path) -> None:
    sweep_dir = tmp_path / "opt"
    assert run_cli(*search(idx_root, sweep_dir, 1), cwd=tmp_path).returncode == 0
    study = load_study(sweep_dir)
    proc = run_cli(*search(idx_root, sweep_dir, 2, "trainer.eval_train=false"), cwd=tmp_path)
    assert_refused(proc, study, 1, "other fixed settings", "trainer.eval_train: True -> False")
    moved = shutil.copytree(idx_root, tmp_path / "moved")
    proc = run_cli(*search(moved, sweep_dir, 2, "trainer.threads=1"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert states(load_study(sweep_dir)) == {"COMPLETE": 2}


@pytest.mark.slow
def test_the_direction_follows_the_monitor(idx_root: Path, tmp_path: Path) -> None:
    sweep_dir = tmp_path / "opt"
    proc = run_cli(*search(idx_root, sweep_dir, 1, "trainer.monitor=val_loss"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    study = load_study(sweep_dir)
    assert [d.name for d in study.directions] == ["MINIMIZE"]
    assert study.best_value == pytest.approx(json.loads((sweep_dir / "trial_0000" / "metrics.json").read_text())
                                             ["best_val_loss"])
    other = tmp_path / "other"
    proc = run_cli(*search(idx_root, other, 1, "trainer.monitor=val_loss", "hydra.sweeper.direction=maximize"),
                   cwd=tmp_path)
    assert_one_line_error(proc.returncode, proc.stderr, proc.stdout, "hydra.sweeper.direction=maximize",
                          "trainer.monitor=val_loss", "hydra.sweeper.direction=minimize")
    assert proc.returncode == 2 and not list(other.glob("*"))


# --------------------------------------------------------------------------- bad settings


@pytest.mark.parametrize("overrides, says", [
    (["hydra.sweeper.n_trials=0"], "hydra.sweeper.n_trials=0 is not valid"),
    (["hydra.sweeper.n_trials=-1"], "hydra.sweeper.n_trials=-1 is not valid"),
    (["hydra.sweeper.n_jobs=0"], "hydra.sweeper.n_jobs=0 is not valid"),
    (["hydra.sweeper.pruner=nosuch"], "use one of none, median"),
    (["hydra/sweeper/sampler=motpe"], "use hydra/sweeper/sampler=tpe"),
    (["+hydra.sweeper.search_space={x: 1}"], "write the space as hydra.sweeper.params"),
    (["+hydra.sweeper.sampler.nosuch=1"], "unexpected keyword argument 'nosuch'"),
    (["x=tag(log, interval(-1.0, 1.0))"], "x: 'tag(log, interval(-1.0, 1.0))': a log scale needs a low bound above 0"),
])
@pytest.mark.slow
def test_bad_settings_are_one_line(tmp_path: Path, overrides: list[str], says: str) -> None:
    sweep_dir = tmp_path / "q"
    proc = app("quadratic", sweep_dir, *overrides, cwd=tmp_path)
    assert_one_line_error(proc.returncode, proc.stderr, proc.stdout, "error: ", says)
    assert proc.returncode == 2
    assert not sweep_dir.exists() or not any(sweep_dir.iterdir()), list(sweep_dir.iterdir())


# --------------------------------------------------------------------------- the sweeper's process


@pytest.mark.parametrize("before", [None, "postgresql://a:b@h/d"])
def test_the_storage_variable_is_set_for_the_sweep_only(monkeypatch: pytest.MonkeyPatch,
                                                        before: Optional[str]) -> None:
    from sweep.search import _sweep_environment

    if before is None:
        monkeypatch.delenv(STORAGE_ENV, raising=False)
    else:
        monkeypatch.setenv(STORAGE_ENV, before)
    verbosity = optuna.logging.get_verbosity()
    with pytest.raises(RuntimeError):
        with _sweep_environment("sqlite:////tmp/s.db"):
            assert os.environ[STORAGE_ENV] == "sqlite:////tmp/s.db"
            raise RuntimeError("the sweep failed")
    assert os.environ.get(STORAGE_ENV) == before
    assert optuna.logging.get_verbosity() == verbosity
