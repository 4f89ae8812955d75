"""The Optuna search behind `search=optuna`: upstream hydra-optuna-sweeper, made resumable and robust.

Differences from upstream (see the README):
- the study persists by default (SQLite in the sweep dir) and a rerun continues it: finished trials are
  never run again, job directories are named by trial number and never reused for another trial;
- `n_trials` is the number of trials the study should hold, shared by every worker on the study;
- trials run asynchronously: a new one starts as soon as one ends, `n_jobs` in flight;
- a trial that raises, diverges or whose process dies is recorded as FAIL and the sweep goes on, until
  more than `max_failure_rate * n_trials` trials have failed;
- a trial whose sweeper process was killed is detected by its missing heartbeat, failed, and retried in
  its own job directory from its last epoch checkpoint;
- storage URLs are masked wherever Hydra would save or print them;
- trials.csv and the best trial's job directory and checkpoint are written to the sweep directory;
- pruning: each job reports its validation accuracy per epoch to its trial through the storage.
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
import json
import logging
import math
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import optuna
from hydra.core.utils import JobReturn, JobStatus
from hydra.types import HydraContext, TaskFunction
from hydra_plugins.hydra_optuna_sweeper._impl import OptunaSweeperImpl, create_params_from_overrides
from omegaconf import DictConfig, OmegaConf, open_dict
from optuna.exceptions import ExperimentalWarning
from optuna.trial import TrialState

from sweep import rundir, storage as storage_mod
from sweep.atomic import atomic_write_csv, atomic_write_json, atomic_write_text
from sweep.compose import compose_once
from sweep.errors import UserError
from sweep.pruning import DIRECTION_ENV, PRUNER_ENV, STUDY_ENV, TRIAL_ENV, make_pruner

log = logging.getLogger("sweep.search")

DIR_ATTR = "job_dir"          # user attr: the trial's job directory (copied onto retries)
FAILURE_ATTR = "failure"      # user attr: why the trial failed (set by us, so not a stale trial)
SURPLUS_ATTR = "surplus"      # user attr: asked beyond n_trials by a racing worker, never run
FIXED_ATTR = "fixed_params"   # user attr: the search's fixed (not sampled) overrides, as one dict
POLL_S = 1.0
RESULTS_EVERY_S = 5.0  # trials.csv and optimization_results.yaml mirror the study at most this stale


@dataclass
class Running:
    trial: optuna.trial.Trial
    job_dir: Path
    started: float
    future: cf.Future


def trial_dir_name(number: int) -> str:
    return f"trial_{number:04d}"


def counts_toward_n_trials(t: optuna.trial.FrozenTrial) -> bool:
    """Finished trials, ones in flight and queued retries count; stale or surplus FAILs do not."""
    if t.state == TrialState.FAIL:
        return FAILURE_ATTR in t.user_attrs
    return True


def _reseed(sampler: Any, seed: Optional[int], number: int) -> None:
    """Seed the sampler per trial number: reproducible, and distinct across workers sharing a study."""
    if seed is None:
        return
    state = int(np.random.SeedSequence([int(seed), number]).generate_state(1)[0])
    for obj in (sampler, getattr(sampler, "_random_sampler", None)):
        if obj is not None and hasattr(obj, "_rng"):
            obj._rng = np.random.RandomState(state)


class ResumableOptunaSweeper(OptunaSweeperImpl):
    def __init__(self, pruner: str, pruner_args: Optional[DictConfig], heartbeat_interval: int,
                 grace_period: int, max_retry: int, synchronous: bool, **upstream: Any) -> None:
        super().__init__(**upstream)
        self.synchronous = synchronous
        self.pruner_name = pruner
        self.pruner_args = OmegaConf.to_container(pruner_args) if pruner_args else {}
        self.heartbeat_interval = heartbeat_interval
        self.grace_period = grace_period
        self.max_retry = max_retry
        make_pruner(self.pruner_name, self.pruner_args)  # fail now on a bad name or argument

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        super().setup(hydra_context=compose_once(hydra_context, config), task_function=task_function, config=config)
        self.url = storage_mod.resolve_url(self.storage, Path(self.sweep_dir))
        self.shown_url = storage_mod.mask(self.url)
        # Jobs (in this process or in launcher workers started later) reach the study through this.
        os.environ[storage_mod.STORAGE_ENV] = self.url
        os.environ[PRUNER_ENV] = json.dumps([self.pruner_name, self.pruner_args])
        directions = [str(d).lower() for d in self._get_directions()]
        if len(directions) == 1:  # jobs check that their monitor is optimised the right way
            os.environ[DIRECTION_ENV] = directions[0]
        self._hide_credentials(config)

    def _hide_credentials(self, config: DictConfig) -> None:
        """Hydra saves hydra.sweeper.storage and the command-line overrides into every job: mask both."""
        with open_dict(config):
            if config.hydra.sweeper.storage:
                config.hydra.sweeper.storage = storage_mod.mask(str(config.hydra.sweeper.storage))
            overrides = config.hydra.overrides.hydra
            for i, item in enumerate(overrides):
                overrides[i] = storage_mod.mask(str(item))
            self.storage = config.hydra.sweeper.storage

    # ------------------------------------------------------------------ study

    def _search_space(self, arguments: list[str]) -> tuple[dict, dict]:
        self._process_searchspace_config()
        params_conf = self._parse_sweeper_params_config() + list(arguments)
        distributions, fixed = create_params_from_overrides(params_conf)
        if self.search_space_distributions:
            distributions = {**self.search_space_distributions, **distributions}
        for name in fixed:
            distributions.pop(name, None)
        if isinstance(self.sampler, functools.partial) and self.sampler.func == optuna.samplers.GridSampler:
            grid = {name: self._to_grid_sampler_choices(d) for name, d in distributions.items()}
            self.sampler = self.sampler(grid)
            self.n_trials = min(self.n_trials, int(np.prod([len(v) for v in grid.values()])))
            log.info("grid sampler: %d trials cover the grid", self.n_trials)
        return distributions, fixed

    def _open_study(self) -> optuna.Study:
        storage = storage_mod.open_storage(self.url, self.heartbeat_interval, self.grace_period, self.max_retry)
        directions = self._get_directions()
        for attempt in range(5):  # several workers may create the same study at once
            try:
                study = optuna.create_study(study_name=self.study_name, storage=storage, sampler=self.sampler,
                                            directions=directions, load_if_exists=True,
                                            pruner=make_pruner(self.pruner_name, self.pruner_args))
                break
            except optuna.exceptions.DuplicatedStudyError:
                time.sleep(0.2 * (attempt + 1))
        else:
            raise UserError(f"could not create or load study {self.study_name} in {self.shown_url}")
        stored = [d.name.lower() for d in study.directions]
        if stored != [d.lower() for d in directions]:
            raise UserError(f"study {self.study_name} in {self.shown_url} optimises {stored}, not {directions}: "
                            "use another hydra.sweeper.study_name")
        return study

    def _counted(self, study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
        return [t for t in study.get_trials(deepcopy=False) if counts_toward_n_trials(t)]

    def _open_slots(self, trials: list[optuna.trial.FrozenTrial]) -> int:
        """Trials still to start; queued retries (WAITING) fill slots, and ask() hands them out first."""
        taken = [t for t in trials if counts_toward_n_trials(t) and t.state != TrialState.WAITING]
        return self.n_trials - len(taken)

    # ------------------------------------------------------------------ one trial

    def _start(self, study: optuna.Study, distributions: dict, fixed: dict) -> Optional[Running]:
        trial = study.ask()
        earlier = [t for t in self._counted(study) if t.number < trial.number]
        if len(earlier) >= self.n_trials:  # another worker took the last slot first
            trial.set_user_attr(SURPLUS_ATTR, True)
            study.tell(trial, state=TrialState.FAIL)
            return None
        _reseed(self.sampler, OmegaConf.select(self.config, "hydra.sweeper.sampler.seed"), trial.number)
        overrides = list(self._configure_trials([trial], distributions, fixed)[0])
        retried = trial.system_attrs.get("failed_trial")  # set by RetryFailedTrialCallback
        name = trial.user_attrs.get(DIR_ATTR) or trial_dir_name(trial.number)  # a retry keeps its directory
        trial.set_user_attr(DIR_ATTR, name)
        job_dir = Path(self.sweep_dir) / name
        note = f" (retry of trial {retried}, resuming in {name})" if retried is not None else ""
        log.info("trial %d started%s: %s", trial.number, note, " ".join(overrides))
        overrides += [
            "resume=true",  # a retried trial continues from its last epoch checkpoint
            f"hydra.sweep.subdir={name}",
            f"++hydra.job.env_set.{TRIAL_ENV}={trial.number}",
        ]
        self._write_trial_json(job_dir, trial.number, trial.params, "RUNNING", None, None)
        study._storage.record_heartbeat(trial._trial_id)
        future = self._pool.submit(self._launch, overrides, trial.number)
        return Running(trial, job_dir, time.time(), future)

    def _configure_trials(self, trials: list[optuna.trial.Trial], search_space_distributions: dict,
                          fixed_params: dict) -> list[tuple[str, ...]]:
        """Upstream's, except that the fixed parameters are recorded as one user attribute (fixed_params):
        one database write per trial instead of one per fixed parameter."""
        overrides = []
        for trial in trials:
            for name, distribution in search_space_distributions.items():
                trial._suggest(name, distribution)
            if fixed_params:
                trial.set_user_attr(FIXED_ATTR, dict(fixed_params))
            if self.custom_search_space_extender:
                self.custom_search_space_extender(self.config, trial)
            overlap = trial.params.keys() & fixed_params.keys()
            if overlap:
                raise ValueError(f"parameters both fixed and searched: {sorted(overlap)}")
            params = {**trial.params, **fixed_params}
            overrides.append(tuple(f"{name}={value}" for name, value in params.items()))
        return overrides

    def _launch(self, overrides: Sequence[str], number: int) -> JobReturn:
        return self.launcher.launch([list(overrides)], initial_job_idx=number)[0]

    def _finish(self, study: optuna.Study, run: Running) -> None:
        trial, error, value = run.trial, None, None
        metrics = rundir.read_metrics(run.job_dir)
        try:
            ret = run.future.result()
        except BaseException as e:  # the job's process died (killed, out of memory)
            error = f"the job's process died: {type(e).__name__}: {e}"
        else:
            if ret.status == JobStatus.COMPLETED:
                value = float(ret.return_value)
                if not math.isfinite(value):
                    error = (metrics or {}).get("error") or f"the job returned {value}"
            else:
                error = f"{type(ret._return_value).__name__}: {ret._return_value}"
        status = (metrics or {}).get("status")
        if error is None and status == "pruned":
            state = TrialState.PRUNED
            # The job reported each epoch through its own connection; this process's cached view of
            # the trial has not seen those, so repeat the last one: Optuna stores it as the trial's value.
            last = (rundir.read_history(run.job_dir) or [None])[-1]
            if last is not None:
                trial.report(float(last[metrics["monitor"]]), int(last["epoch"]))
            _tell(study, trial, state=state)
        elif error is None:
            state = TrialState.COMPLETE
            _tell(study, trial, values=value)
        else:
            state = TrialState.FAIL
            trial.set_user_attr(FAILURE_ATTR, error[:2000])
            _tell(study, trial, state=state)
        seconds = time.time() - run.started
        self._write_trial_json(run.job_dir, trial.number, trial.params, state.name, value, error)
        if error:
            log.warning("trial %d FAILED after %.1fs: %s", trial.number, seconds, error)
        else:
            log.info("trial %d %s after %.1fs: value %s", trial.number, state.name, seconds, value)

    def _write_trial_json(self, job_dir: Path, number: int, params: dict, state: str, value: Any,
                          error: Optional[str]) -> None:
        job_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(job_dir / "trial.json", {
            "number": number, "study_name": self.study_name, "storage": self.shown_url, "params": params,
            "state": state, "value": value, "error": error,
        })

    # ------------------------------------------------------------------ the sweep

    def sweep(self, arguments: list[str]) -> None:
        distributions, fixed = self._search_space(arguments)
        study = self._open_study()
        self.study_name = study.study_name
        os.environ[STUDY_ENV] = self.study_name
        concurrency = max(1, self.n_jobs)
        if concurrency > 1 and type(self.launcher).__name__ == "BasicLauncher":
            log.warning("hydra.sweeper.n_jobs=%d needs a process launcher (hydra/launcher=joblib); "
                        "the basic launcher runs one trial at a time", concurrency)
            concurrency = 1
        done_before = len([t for t in self._counted(study) if t.state.is_finished()])
        log.info("study %s in %s: %d of %d trials already finished; sampler %s, pruner %s, %d in flight",
                 self.study_name, self.shown_url, done_before, self.n_trials, type(self.sampler).__name__,
                 self.pruner_name, concurrency)
        max_failures = self.max_failure_rate * self.n_trials
        running: list[Running] = []
        last_beat = last_results = time.monotonic()
        last_stale_check = -math.inf
        unwritten = False  # trials finished since trials.csv was last written
        waiting_for = 0
        self._pool = cf.ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="trial")
        try:
            while True:
                if time.monotonic() - last_stale_check >= POLL_S:  # a query; staleness takes a grace period
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", ExperimentalWarning)
                        optuna.storages.fail_stale_trials(study)
                    last_stale_check = time.monotonic()
                trials = study.get_trials(deepcopy=False)
                too_many_failures = _failed(trials) > max_failures
                open_slots = self._open_slots(trials)
                may_start = not (self.synchronous and running)  # upstream-style: whole batches only
                while may_start and not too_many_failures and len(running) < concurrency and open_slots > 0:
                    started = self._start(study, distributions, fixed)  # re-checks slots against the study
                    if started is None:
                        break
                    running.append(started)
                    open_slots -= 1
                if not running:
                    others = [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
                    if too_many_failures or not others:
                        break
                    if len(others) != waiting_for:
                        waiting_for = len(others)
                        log.info("waiting for %d trial(s) running elsewhere; one whose sweeper was killed is "
                                 "failed and retried after hydra.sweeper.grace_period=%ds without a heartbeat",
                                 waiting_for, self.grace_period)
                    time.sleep(POLL_S)  # another worker's trials: wait until they finish or go stale
                    continue
                finished, _ = cf.wait([r.future for r in running], timeout=POLL_S, return_when=cf.FIRST_COMPLETED)
                for run in [r for r in running if r.future in finished]:
                    running.remove(run)
                    self._finish(study, run)
                unwritten = unwritten or bool(finished)
                if unwritten and time.monotonic() - last_results >= RESULTS_EVERY_S:
                    self._write_results(study)
                    last_results, unwritten = time.monotonic(), False
                if time.monotonic() - last_beat >= self.heartbeat_interval:
                    for run in running:
                        study._storage.record_heartbeat(run.trial._trial_id)
                    last_beat = time.monotonic()
        finally:
            self._pool.shutdown(wait=True)
            try:
                self._write_results(study)  # also after Ctrl-C, so that the files match the study
            except Exception as e:  # they mirror the study, which holds everything; never mask the cause
                log.warning("could not update %s/trials.csv: %s", self.sweep_dir, e)
        failed = _failed(study.get_trials(deepcopy=False))
        if failed > max_failures:
            raise UserError(
                f"{failed} of {self.n_trials} trials failed, more than hydra.sweeper.max_failure_rate="
                f"{self.max_failure_rate} allows; see {self.sweep_dir}/trials.csv and the failed trials' train.log"
            )

    # ------------------------------------------------------------------ results

    def _write_results(self, study: optuna.Study) -> None:
        trials = study.get_trials(deepcopy=False)
        keys = sorted({k for t in trials for k in t.params})
        rows = [{"number": t.number, "state": t.state.name, "value": t.value,
                 "duration_s": t.duration.total_seconds() if t.duration else None,
                 "job_dir": t.user_attrs.get(DIR_ATTR), **{f"params_{k}": v for k, v in t.params.items()}}
                for t in sorted(trials, key=lambda t: t.number) if SURPLUS_ATTR not in t.user_attrs]
        sweep_dir = Path(self.sweep_dir)
        atomic_write_csv(sweep_dir / rundir.TRIALS, rows,
                         ["number", "state", "value", "duration_s", "job_dir", *(f"params_{k}" for k in keys)])
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        if not complete:
            return
        best = study.best_trial
        job_dir = sweep_dir / best.user_attrs.get(DIR_ATTR, trial_dir_name(best.number))
        results = {
            "name": "optuna", "best_params": best.params, "best_value": best.value,
            "best_trial": best.number, "best_job_dir": str(job_dir),
            "best_checkpoint": str(job_dir / rundir.CHECKPOINTS / rundir.BEST),
            "study_name": self.study_name, "storage": self.shown_url,
            "n_trials": {s.name.lower(): sum(t.state == s for t in trials) for s in TrialState if
                         any(t.state == s for t in trials)},
        }
        atomic_write_text(sweep_dir / "optimization_results.yaml", OmegaConf.to_yaml(OmegaConf.create(results)))


def _failed(trials: list[optuna.trial.FrozenTrial]) -> int:
    """Trials that failed while running (not stale or surplus ones)."""
    return sum(1 for t in trials if t.state == TrialState.FAIL and FAILURE_ATTR in t.user_attrs)


def _tell(study: optuna.Study, trial: optuna.trial.Trial, **kwargs: Any) -> None:
    try:
        study.tell(trial, **kwargs)
    except RuntimeError as e:
        # The grid sampler calls study.stop() once the grid is covered, which only works inside
        # study.optimize(); the trial's state is stored before that, so the error is harmless.
        if "Study.stop" not in str(e):
            raise
