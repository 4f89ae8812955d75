"""`hydra/sweeper=sweep_optuna`: an Optuna study run through Hydra's launcher, for any Hydra app.

Built on Hydra's public Sweeper API and Optuna's public API; it keeps upstream hydra-optuna-sweeper's
config schema and override syntax (see hydra_plugins/sweep_optuna_sweeper/config.py and the README). What
it adds: the study persists (SQLite in the sweep folder by default) and a rerun continues it; `n_trials` is
the number of trials the study should hold, over every run and worker; `n_jobs` trials are always in
flight; a failing trial is recorded and the sweep goes on up to `max_failure_rate`; a dead worker's trial
and the trials stopped by Ctrl-C are queued again and continue from their checkpoints; pruning works
across processes and machines (sweep.trial); a changed space, direction or setting is refused
(sweep.study); each in-flight trial may get its own device.

The loop: ask the study for a trial, launch it as a Hydra job in a thread (the launcher blocks until its
job ends), finish the trials whose jobs ended, record the study into the sweep folder; repeat.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import io
import json
import logging
import math
import os
import sys
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import numpy as np
import optuna
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus
from hydra.types import HydraContext, TaskFunction
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict
from optuna.trial import TrialState

from sweep import rundir, storage as storage_mod
from sweep.atomic import atomic_write_json, atomic_write_text
from sweep.errors import UserError, first_line
from sweep.space import Space, grid_choices, parse_space, quoted, value_text
from sweep.study import (DIR_ATTR, FAILURE_ATTR, REQUEUED_ATTR, SURPLUS_ATTR, WORKER_ATTR, Trials, counts_toward_n_trials, failed, fixed_settings, open_study, trial_dir_name,
                         write_results)
from sweep.trial import TRIAL_ENV, TrialInterrupted, make_pruner

log = logging.getLogger("sweep.search")

POLL_S = 1.0
RESULTS_EVERY_S = 5.0  # trials.csv and optimization_results.yaml mirror the study at most this stale
DIRECTIONS = ("minimize", "maximize")
SAMPLER_GROUP = "hydra/sweeper/sampler"


@dataclass
class Running:
    trial: optuna.trial.Trial
    job_dir: Path
    device: Optional[str]
    started: float
    future: cf.Future


def _in_thread(fn: Any, *args: Any) -> cf.Future:
    """fn(*args) in a daemon thread: a second Ctrl-C may leave a job that ignores stop requests behind."""
    future: cf.Future = cf.Future()

    def run() -> None:
        try:
            future.set_result(fn(*args))
        except BaseException as e:  # a job's KeyboardInterrupt too: the sweeper decides what it means
            future.set_exception(e)

    threading.Thread(target=run, daemon=True, name="trial").start()
    return future


@contextlib.contextmanager
def _sweep_environment(url: str) -> Iterator[None]:
    """For the sweep's duration only: the storage URL for jobs (never written to disk), and Optuna's messages
    through Hydra's logging (plain text, no colour codes). (Our own overrides all start with `hydra.`, which
    launchers leave out when they echo a job's overrides.)"""
    before = os.environ.get(storage_mod.STORAGE_ENV)
    os.environ[storage_mod.STORAGE_ENV] = url
    optuna.logging.disable_default_handler()
    optuna.logging.enable_propagation()
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(verbosity)
        optuna.logging.disable_propagation()
        optuna.logging.enable_default_handler()
        if before is None:
            os.environ.pop(storage_mod.STORAGE_ENV, None)
        else:
            os.environ[storage_mod.STORAGE_ENV] = before


def _number(name: str, value: Any, low: float, kind: type = int, high: Optional[float] = None) -> Any:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (kind is float or value == int(value))
    if not ok or value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        what = "a number" if kind is float else "a whole number"
        raise UserError(f"hydra.sweeper.{name}={value} is not valid: give {what} {bound}")
    return kind(value)


class OptunaSweeper:
    """The implementation behind hydra_plugins.sweep_optuna_sweeper.SweepOptunaSweeper."""

    def __init__(self, sampler: DictConfig, direction: Any, storage: Optional[str], study_name: Optional[str],
                 n_trials: int, n_jobs: int, max_failure_rate: float, params: Optional[DictConfig],
                 custom_search_space: Optional[str], search_space: Any, pruner: str, pruner_args: Any,
                 heartbeat_interval: int, grace_period: int, max_retry: int, synchronous: bool,
                 devices: Optional[Sequence[Any]]) -> None:
        if search_space is not None:
            raise UserError("hydra.sweeper.search_space was removed from the Optuna sweeper: write the space as "
                            "hydra.sweeper.params, e.g. {x: 'interval(-5.0, 5.0)', y: 'choice(1, 2)'}")
        self.sampler_cfg = sampler
        self.directions = self._directions(direction)
        self.storage, self.study_name = storage, study_name
        self.n_trials = _number("n_trials", n_trials, 1)
        self.n_jobs = _number("n_jobs", n_jobs, 1)
        self.max_failure_rate = _number("max_failure_rate", max_failure_rate, 0, float, 1)
        self.heartbeat_interval = _number("heartbeat_interval", heartbeat_interval, 1, float)
        self.grace_period = _number("grace_period", grace_period, self.heartbeat_interval * 2, float)
        self.max_retry = _number("max_retry", max_retry, 0)
        self.params = OmegaConf.to_container(params) if isinstance(params, DictConfig) else params
        self.custom_search_space = custom_search_space
        self.synchronous = synchronous
        self.pruner_name = pruner
        self.pruner_args = OmegaConf.to_container(pruner_args) if isinstance(pruner_args, DictConfig) else pruner_args
        make_pruner(pruner, self.pruner_args)  # fail now on a bad name or argument
        if pruner != "none" and len(self.directions) > 1:
            raise UserError(f"hydra.sweeper.pruner={pruner} needs a single objective (Optuna cannot prune "
                            "multi-objective trials): set hydra.sweeper.pruner=none")
        self.devices = [f"cuda:{d}" if isinstance(d, int) else str(d) for d in (devices or [])]
        if devices is not None and len(self.devices) < self.n_jobs:
            raise UserError(f"hydra.sweeper.devices lists {len(self.devices)} device(s) for n_jobs={self.n_jobs} "
                            "trials in flight: list one device per trial, or lower hydra.sweeper.n_jobs")
        self._sampler_for(0, {})  # fail now on an unknown sampler or a bad keyword

    @staticmethod
    def _directions(direction: Any) -> list[str]:
        items = list(direction) if isinstance(direction, (list, tuple, ListConfig)) else [direction]
        names = [str(getattr(d, "name", d)).lower() for d in items]
        bad = [n for n in names if n not in DIRECTIONS]
        if bad or not names:
            raise UserError(f"hydra.sweeper.direction={direction} is not valid: give minimize or maximize, or a list "
                            "of them for several objectives")
        return names

    def _sampler_for(self, number: int, space: dict) -> Any:
        """The configured sampler, seeded for this trial number: reproducible for one worker, and distinct for
        workers that share a study (each trial number gets its own random stream)."""
        cfg = OmegaConf.to_container(self.sampler_cfg)
        target = str(cfg.get("_target_", ""))
        if target.endswith("MOTPESampler"):
            raise UserError("hydra/sweeper/sampler=motpe was removed (Optuna dropped MOTPESampler): use "
                            "hydra/sweeper/sampler=tpe, which handles several objectives, or nsgaii")
        if cfg.get("seed") is not None:
            cfg["seed"] = int(np.random.SeedSequence([int(cfg["seed"]), number]).generate_state(1)[0])
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                sampler = instantiate(cfg)
                if target.endswith("GridSampler"):
                    sampler = sampler(grid_choices(space)) if space else None
        except UserError:
            raise
        except Exception as e:
            cause = e.__cause__ or e
            raise UserError(f"hydra.sweeper.sampler ({target or 'no _target_'}) cannot be built: {first_line(cause)}; "
                            f"choose one with {SAMPLER_GROUP}=tpe|random|cmaes|nsgaii|qmc|gp|grid and check its keys"
                            ) from None
        return sampler

    # ------------------------------------------------------------------ setup

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(hydra_context=hydra_context,
                                                                task_function=task_function, config=config)
        self.sweep_dir = Path(str(config.hydra.sweep.dir))
        self._check_direction(config)
        self._prepare_job_overrides(config)
        task_keys = [k for k in config if k != "hydra"]
        self.resumable = "resume" in task_keys  # sweep.train and apps like it continue a job from its checkpoint
        self.device_key = "trainer.device" if OmegaConf.select(config, "trainer.device") is not None else None

    def _check_direction(self, config: DictConfig) -> None:
        """An app with sweep.train's trainer.monitor: the study must optimise the way the monitor is better."""
        if OmegaConf.select(config, "trainer.monitor", default="absent") == "absent" or len(self.directions) != 1:
            return
        from sweep.tasks import expected_direction

        wanted = expected_direction(config)
        if wanted is not None and wanted != self.directions[0]:
            monitor = OmegaConf.select(config, "trainer.monitor") or "the task's default monitor"
            raise UserError(f"hydra.sweeper.direction={self.directions[0]} does not fit trainer.monitor={monitor}, "
                            f"which is better when {'higher' if wanted == 'maximize' else 'lower'}: set "
                            f"hydra.sweeper.direction={wanted}")

    def _prepare_job_overrides(self, config: DictConfig) -> None:
        """Hydra saves hydra.sweeper.storage and the command-line overrides into every job: mask both."""
        with open_dict(config):
            if config.hydra.sweeper.storage:
                config.hydra.sweeper.storage = storage_mod.mask(str(config.hydra.sweeper.storage))
            overrides = config.hydra.overrides.hydra
            for i, item in enumerate(overrides):
                overrides[i] = storage_mod.mask(str(item))
            # Every job's config starts from these: declare the keys each trial then sets with a plain
            # `hydra.` override, which launchers leave out when they echo a job's overrides.
            overrides.extend([f"++hydra.job.env_set.{k}=''" for k in (TRIAL_ENV, "CUDA_VISIBLE_DEVICES")
                              if k == TRIAL_ENV or self.devices])

    # ------------------------------------------------------------------ the sweep

    def sweep(self, arguments: list[str]) -> None:
        space = parse_space(self.params, arguments)
        if "GridSampler" in str(self.sampler_cfg.get("_target_", "")):
            size = int(np.prod([len(v) for v in grid_choices(space.distributions).values()]))
            if size < self.n_trials:
                log.info("grid sampler: the grid has %d points, so %d trials", size, size)
            self.n_trials = min(self.n_trials, size)
        self.url = storage_mod.resolve_url(self.storage, self.sweep_dir)  # creates the sweep folder
        self.shown_url = storage_mod.describe(self.url)
        with _sweep_environment(self.url):
            storage = storage_mod.open_storage(self.url)
            study = open_study(storage, self.shown_url, self.study_name, self.directions,
                               self._sampler_for(0, space.distributions),
                               make_pruner(self.pruner_name, self.pruner_args), space,
                               fixed_settings(self.config, space))
            self.study_name = study.study_name
            self.trials = Trials(study, storage, self.grace_period, self.max_retry)
            self._run(study, space)

    def _concurrency(self) -> int:
        if self.n_jobs > 1 and type(self.launcher).__name__ == "BasicLauncher":
            log.warning("hydra.sweeper.n_jobs=%d needs a launcher that runs jobs in parallel (hydra/launcher=joblib "
                        "or submitit_local); the basic launcher runs one trial at a time", self.n_jobs)
            return 1
        return self.n_jobs

    def _run(self, study: optuna.Study, space: Space) -> None:
        self.concurrency = concurrency = self._concurrency()
        trials = study.get_trials(deepcopy=False)
        done = sum(1 for t in trials if counts_toward_n_trials(t) and t.state.is_finished())
        log.info("study %s in %s: %d of %d trials finished; sampler %s, pruner %s, up to %d at a time",
                 self.study_name, self.shown_url, done, self.n_trials, type(study.sampler).__name__,
                 self.pruner_name, concurrency)
        if done >= self.n_trials:
            log.info("the study holds hydra.sweeper.n_trials=%d finished trials: nothing to run (raise n_trials to "
                     "run more)", self.n_trials)
        self.free_devices = list(self.devices)
        self.durations: list[float] = []
        self.last_stale, self.last_beat, self.last_results = -math.inf, time.monotonic(), time.monotonic()
        self.waiting_for, self.unwritten = 0, False
        running: list[Running] = []
        try:
            while True:
                trials = study.get_trials(deepcopy=False)
                self._requeue_stale(trials, running)  # dead workers' trials first: they continue before new ones
                stop_launching = failed(trials) > self.max_failure_rate * self.n_trials
                if not stop_launching:
                    self._launch_more(study, space, trials, running, concurrency)  # ask and launch
                if not running:
                    if stop_launching or not self._wait_for_others(trials):
                        break
                    continue
                finished, _ = cf.wait([r.future for r in running], timeout=POLL_S, return_when=cf.FIRST_COMPLETED)
                for run in [r for r in running if r.future in finished]:
                    running.remove(run)
                    self._finish(study, run)  # finish
                self._record(study, running, bool(finished))  # record
        except KeyboardInterrupt:
            self._stop(study, running)
        finally:
            write_results(study, self.sweep_dir, self.shown_url)
        n_failed = failed(study.get_trials(deepcopy=False))
        if n_failed > self.max_failure_rate * self.n_trials:
            raise UserError(f"{n_failed} of {self.n_trials} trials failed, more than hydra.sweeper.max_failure_rate="
                            f"{self.max_failure_rate} allows; see {self.sweep_dir / rundir.TRIALS} and the failed "
                            "trials' logs")

    def _launch_more(self, study: optuna.Study, space: Space, trials: Sequence[optuna.trial.FrozenTrial],
                     running: list[Running], concurrency: int) -> None:
        """Start trials until n_jobs are in flight or the study holds n_trials (queued retries fill slots,
        and ask() hands them out first); synchronous mode starts a new batch only when the last one is done."""
        if self.synchronous and running:
            return
        open_slots = self.n_trials - sum(1 for t in trials if counts_toward_n_trials(t) and t.state != TrialState.WAITING)
        while len(running) < concurrency and open_slots > 0:
            run = self._start(study, space)
            if run is None:
                return
            running.append(run)
            open_slots -= 1

    def _wait_for_others(self, trials: Sequence[optuna.trial.FrozenTrial]) -> bool:
        """With nothing of ours to run: wait a poll for other workers' trials, if any are running or queued."""
        elsewhere = [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
        if not elsewhere:
            return False
        if len(elsewhere) != self.waiting_for:
            self.waiting_for = len(elsewhere)
            log.info("waiting for %d trial(s) of other workers; a dead worker's trial is queued again after "
                     "hydra.sweeper.grace_period=%gs without a heartbeat", self.waiting_for, self.grace_period)
        time.sleep(POLL_S)
        return True

    def _record(self, study: optuna.Study, running: list[Running], finished: bool) -> None:
        """Mirror the study into the sweep folder (at most every RESULTS_EVERY_S) and send heartbeats."""
        self.unwritten = self.unwritten or finished
        if self.unwritten and time.monotonic() - self.last_results >= RESULTS_EVERY_S:
            write_results(study, self.sweep_dir, self.shown_url)
            self.last_results, self.unwritten = time.monotonic(), False
        if time.monotonic() - self.last_beat >= self.heartbeat_interval:
            self.trials.beat([r.trial for r in running])
            self.last_beat = time.monotonic()

    def _requeue_stale(self, trials: Sequence[optuna.trial.FrozenTrial], running: list[Running]) -> None:
        """At most once a poll: fail and queue again the trials of workers that died."""
        if time.monotonic() - self.last_stale < POLL_S:
            return
        self.last_stale = time.monotonic()
        for t, reason in self.trials.stale(trials, {r.trial.number for r in running}):
            if self.trials.requeue(t, reason, died=True):
                log.warning("trial %d's worker is gone (%s: %s): queued again, to continue in %s", t.number,
                            (t.user_attrs.get(WORKER_ATTR) or {}).get("id", "unknown"), reason,
                            t.user_attrs.get(DIR_ATTR, "its folder"))

    # ------------------------------------------------------------------ one trial

    def _job_dir_name(self, trial: optuna.trial.Trial) -> str:
        """A retry keeps its trial's folder; a new trial never takes a folder that holds another study's trial."""
        name = trial.user_attrs.get(DIR_ATTR)
        if name:
            return name
        name = trial_dir_name(trial.number)
        if (self.sweep_dir / name).exists():
            name = f"{self.study_name}_{name}"
            suffix = 1
            while (self.sweep_dir / name).exists():
                name, suffix = f"{self.study_name}_{trial_dir_name(trial.number)}_{suffix}", suffix + 1
        return name

    def _ask(self, study: optuna.Study, space: Space) -> Optional[optuna.trial.Trial]:
        """The next trial, sampled from a stream seeded by its number, so that trials in flight together (on
        one worker or several) never share a stream; None once the study holds n_trials."""
        while True:
            before = study.get_trials(deepcopy=False)
            number = len(before)  # the number the next new trial gets
            study.sampler = self._sampler_for(number, space.distributions)
            trial = study.ask(fixed_distributions=space.distributions)  # a queued retry comes first
            taken = sum(1 for t in before if counts_toward_n_trials(t) and t.number < trial.number)
            raced = trial.number > number  # another worker asked in between: ours used its stream
            if taken >= self.n_trials or raced:
                self._discard(study, trial)
            if taken >= self.n_trials:  # another worker took the last slot first
                return None
            if not raced:
                return trial

    def _discard(self, study: optuna.Study, trial: optuna.trial.Trial) -> None:
        """A trial that is never run: failed, marked surplus, left out of counts and results."""
        trial.set_user_attr(SURPLUS_ATTR, True)
        study.tell(trial, state=TrialState.FAIL)

    def _start(self, study: optuna.Study, space: Space) -> Optional[Running]:
        trial = self._ask(study, space)
        if trial is None:
            return None
        try:
            if self.custom_search_space:
                extend = instantiate({"_target_": self.custom_search_space, "_partial_": True})
                extend(self.config, trial)
            overlap = sorted(trial.params.keys() & space.fixed.keys())
            if overlap:
                raise UserError(f"{', '.join(overlap)} both fixed and searched: drop one of them")
        except BaseException:  # nothing was launched: leave no RUNNING trial behind
            self._discard(study, trial)
            raise
        retry_of = trial.user_attrs.get("retry_of")
        name = self._job_dir_name(trial)
        if trial.user_attrs.get(DIR_ATTR) != name:
            trial.set_user_attr(DIR_ATTR, name)
        self.trials.claim(trial)
        job_dir = self.sweep_dir / name
        (job_dir / rundir.STOP).unlink(missing_ok=True)
        device = self.free_devices.pop(0) if self.free_devices else None
        shown = [f"{k}={value_text(v)}" for k, v in trial.params.items()]
        overrides = [*shown, *(f"{k}={v}" for k, v in space.fixed.items())]
        if device is not None:
            overrides.append(f"{self.device_key}={device}" if self.device_key
                             else f"hydra.job.env_set.CUDA_VISIBLE_DEVICES={device.rpartition(':')[2]}")
        link = {"storage": self.shown_url, "study": self.study_name, "number": trial.number,
                "pruner": self.pruner_name, "pruner_args": self.pruner_args}
        link_text = quoted(json.dumps(link, separators=(",", ":")))
        overrides += [f"hydra.sweep.subdir={name}", f"hydra.job.env_set.{TRIAL_ENV}={link_text}"]
        if self.resumable:  # a retried or requeued (preempted) job continues from its last epoch checkpoint
            overrides.append("resume=true")
        note = f" (continuing trial {retry_of} in {name})" if retry_of is not None else ""
        log.info("trial %d started%s: %s%s", trial.number, note, " ".join(shown) or "(no searched keys)",
                 f" on {device}" if device else "")
        self._write_trial_json(job_dir, trial, "RUNNING", None, None)
        future = _in_thread(self._launch, overrides, trial.number)
        return Running(trial, job_dir, device, time.monotonic(), future)

    def _launch(self, overrides: list[str], number: int) -> JobReturn:
        return self.launcher.launch([overrides], initial_job_idx=number)[0]

    def _outcome(self, run: Running) -> tuple[Optional[list[float]], Optional[BaseException]]:
        """The job's objective values, or the exception it ended with."""
        try:
            ret = run.future.result()
        except BaseException as e:  # the job's process died, or a launcher error
            return None, e
        if ret.status != JobStatus.COMPLETED:
            try:  # the public getter raises the job's exception, after printing a line we do not want
                with contextlib.redirect_stderr(io.StringIO()):
                    ret.return_value
            except BaseException as e:
                return None, e
            return None, RuntimeError(f"job ended as {ret.status}")
        raw = ret.return_value
        try:
            values = [float(v) for v in (raw if isinstance(raw, (list, tuple, ListConfig)) else [raw])]
        except (TypeError, ValueError):
            return None, ValueError(f"the task function returned {raw!r}: return a number (a list of "
                                    f"{len(self.directions)} numbers for {len(self.directions)} objectives)")
        if len(values) != len(self.directions):
            return None, ValueError(f"the task function returned {len(values)} value(s) for "
                                    f"{len(self.directions)} objective(s) (hydra.sweeper.direction)")
        return values, None

    def _finish(self, study: optuna.Study, run: Running, stopping: bool = False) -> None:
        trial = run.trial
        if run.device is not None:
            self.free_devices.append(run.device)
        values, error = self._outcome(run)
        metrics = rundir.read_metrics(run.job_dir) or {}
        seconds = time.monotonic() - run.started
        interrupted = isinstance(error, (TrialInterrupted, KeyboardInterrupt)) or (stopping and values is None)
        try:
            if interrupted:
                self.trials.requeue(trial, "interrupted (Ctrl-C)", died=False)
                state, shown = "INTERRUPTED", "continues on the next run"
            elif isinstance(error, optuna.TrialPruned) or (values is not None and metrics.get("status") == "pruned"):
                frozen = study.tell(trial, state=TrialState.PRUNED)  # its value: the last one reported
                state, shown, values = "PRUNED", f"value {_fmt(frozen.values)}", frozen.values
            elif values is not None and all(math.isfinite(v) for v in values):
                study.tell(trial, values=values)
                state, shown = "COMPLETE", f"value {_fmt(values)}"
            else:
                reason = first_line(error) if error is not None else metrics.get("error") or f"it returned {values}"
                if error is not None and not isinstance(error, UserError):
                    reason = f"{type(error).__name__}: {reason}"
                trial.set_user_attr(FAILURE_ATTR, reason[:2000])
                study.tell(trial, state=TrialState.FAIL)
                state, shown = "FAIL", reason
        except (optuna.exceptions.UpdateFinishedTrialError, RuntimeError) as e:
            log.warning("trial %d was already finished elsewhere (another worker took it as dead?): %s",
                        trial.number, first_line(e))
            return
        self._write_trial_json(run.job_dir, trial, state, values, None if state != "FAIL" else shown)
        if state != "INTERRUPTED":
            self.durations.append(seconds)
        self._progress(study, trial.number, state, shown, seconds)

    def _progress(self, study: optuna.Study, number: int, state: str, shown: str, seconds: float) -> None:
        """One line per finished trial: where the study stands and roughly how long the rest takes."""
        trials = [t for t in study.get_trials(deepcopy=False) if counts_toward_n_trials(t)]
        done = [t for t in trials if t.state.is_finished()]
        counts = {s: sum(t.state == s for t in done) for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
        best = ""
        complete = [t for t in done if t.state == TrialState.COMPLETE]
        if complete:
            if len(self.directions) == 1:
                b = (max if self.directions[0] == "maximize" else min)(complete, key=lambda t: t.value)
                best = f"; best {b.value:.6g} (trial {b.number})"
            else:
                best = f"; Pareto front: {len(study.best_trials)} trial(s)"
        left = self.n_trials - len(done)
        eta = ""
        if left > 0 and self.durations and np.mean(self.durations) * left >= 1:
            eta = f"; about {_duration(np.mean(self.durations) * left / self.concurrency)} left"
        line = (f"trial {number} {state} ({len(done)}/{self.n_trials}) after {seconds:.1f}s: {shown}{best}; "
                f"{counts[TrialState.COMPLETE]} complete, {counts[TrialState.PRUNED]} pruned, "
                f"{counts[TrialState.FAIL]} failed{eta}")
        (log.warning if state == "FAIL" else log.info)("%s", line)

    def _write_trial_json(self, job_dir: Path, trial: optuna.trial.Trial, state: str, values: Optional[list],
                          error: Optional[str]) -> None:
        job_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(job_dir / rundir.TRIAL, {
            "number": trial.number, "study_name": self.study_name, "storage": self.shown_url, "params": trial.params,
            "state": state, "value": values[0] if values and len(values) == 1 else None, "values": values,
            "error": error,
        })

    # ------------------------------------------------------------------ Ctrl-C

    def _stop(self, study: optuna.Study, running: list[Running]) -> None:
        """Ctrl-C: ask every running trial to stop (a STOP file, read at its next epoch boundary), wait for them
        (a second Ctrl-C stops waiting), queue them again, and exit 130 with one line."""
        for run in running:
            atomic_write_text(run.job_dir / rundir.STOP, "the sweep was interrupted\n")
        if running:
            print(f"stopping {len(running)} running trial(s) at their next epoch boundary (Ctrl-C again to stop "
                  "waiting)...", file=sys.stderr)
        try:
            cf.wait([r.future for r in running])
        except KeyboardInterrupt:
            pass
        for run in running:
            if run.future.done():
                self._finish(study, run, stopping=True)
            else:
                self.trials.requeue(run.trial, "interrupted (Ctrl-C)", died=False)
        queued = sorted(t.number for t in study.get_trials(deepcopy=False) if t.user_attrs.get(REQUEUED_ATTR)
                        and t.number in {r.trial.number for r in running})
        what = f"trial(s) {', '.join(map(str, queued))} will continue from their checkpoints; " if queued else ""
        write_results(study, self.sweep_dir, self.shown_url)
        print(f"interrupted: {what}run the same command again to continue study {self.study_name}", file=sys.stderr)
        raise SystemExit(130)


def _fmt(values: Optional[list[float]]) -> str:
    if not values:
        return "none"
    return ", ".join(f"{v:.6g}" for v in values)


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"
