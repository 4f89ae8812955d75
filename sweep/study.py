"""An Optuna study as sweep_optuna keeps it: guarded against changed settings, with its workers' heartbeats,
stale and interrupted trials queued again, and its results mirrored into the sweep folder.

What is stored (all through Optuna's public API):
- study user attributes SPACE_ATTR and FIXED_ATTR: the search space and the fixed settings it was started
  with; a run that differs is refused, so one study never mixes two experiments;
- trial user attributes: DIR_ATTR (its job folder; a retry keeps it), WORKER_ATTR ("host:pid" of the sweeper
  running it, and a counter it bumps every heartbeat_interval: one write), FAILURE_ATTR (why it
  failed: counts toward max_failure_rate), REQUEUED_ATTR (why it was stopped and queued again: does not
  count), RETRIES_ATTR (how many times its worker died).

Heartbeats are ours rather than RDBStorage's, so that every backend (JournalStorage has none) detects a dead
worker the same way: a RUNNING trial of another worker whose counter has not moved for grace_period seconds
of this worker's clock (no clocks are compared across machines), or one whose sweeper process on this very
host is gone, which needs no wait.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import optuna
from omegaconf import DictConfig, OmegaConf
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from sweep import rundir
from sweep.atomic import atomic_write_csv, atomic_write_text
from sweep.errors import UserError
from sweep.space import Space, describe_change, space_record

log = logging.getLogger("sweep.search")

SPACE_ATTR, FIXED_ATTR = "sweep_space", "sweep_fixed"
DIR_ATTR, WORKER_ATTR = "job_dir", "worker"
FAILURE_ATTR, REQUEUED_ATTR, RETRIES_ATTR = "failure", "requeued", "retries"
SURPLUS_ATTR = "surplus"
# Keys that may differ between runs or machines of one study without changing its results.
VOLATILE_KEYS = frozenset({"data.root", "trainer.device", "trainer.threads", *rundir.RESUMABLE_KEYS})
WORKER = f"{socket.gethostname()}:{os.getpid()}"


def trial_dir_name(number: int) -> str:
    return f"trial_{number:04d}"


def counts_toward_n_trials(t: FrozenTrial) -> bool:
    """Finished trials, trials in flight and queued ones count; stopped-and-requeued or surplus FAILs do not."""
    return t.state != TrialState.FAIL or FAILURE_ATTR in t.user_attrs


def failed(trials: Sequence[FrozenTrial]) -> int:
    """Trials that failed while running (a raised error, a diverged loss, a worker that died too often)."""
    return sum(1 for t in trials if t.state == TrialState.FAIL and FAILURE_ATTR in t.user_attrs)


# --------------------------------------------------------------------------- opening, with guards


def fixed_settings(config: DictConfig, space: Space) -> dict[str, Any]:
    """The settings every trial of a study shares: the task config (resolved, as dotted keys) and its group
    choices, with the params' fixed values, less the searched keys and VOLATILE_KEYS."""
    task = OmegaConf.masked_copy(config, [k for k in config if k != "hydra"])
    try:
        tree = OmegaConf.to_container(task, resolve=True)
    except Exception:  # an interpolation that only resolves inside a job: compare it as written
        tree = OmegaConf.to_container(task, resolve=False)
    flat = _flatten(tree)
    choices = OmegaConf.select(config, "hydra.runtime.choices", default=None) or {}
    flat.update({f"choice:{g}": str(c) for g, c in choices.items() if not str(g).startswith("hydra")})
    for key, value in space.fixed.items():
        _drop(flat, key)
        flat[key] = value
    for key in [*space.distributions, *VOLATILE_KEYS]:
        _drop(flat, key)
        flat.pop(f"choice:{key}", None)
    return flat


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict) and tree:
        out: dict[str, Any] = {}
        for k, v in tree.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    value = tree if isinstance(tree, (str, int, float, bool, type(None))) else json.dumps(tree, default=str)
    return {prefix[:-1]: value}


def _drop(flat: dict[str, Any], key: str) -> None:
    for k in [k for k in flat if k == key or k.startswith(f"{key}.")]:
        del flat[k]


def _differences(old: dict, new: dict, shown: int = 3) -> Optional[str]:
    keys = sorted(k for k in old.keys() | new.keys() if old.get(k, "(unset)") != new.get(k, "(unset)"))
    if not keys:
        return None
    text = "; ".join(f"{k}: {old.get(k, '(unset)')} -> {new.get(k, '(unset)')}" for k in keys[:shown])
    return text + (f"; and {len(keys) - shown} more" if len(keys) > shown else "")


def open_study(storage: Any, shown_url: str, name: Optional[str], directions: list[str], sampler: Any, pruner: Any,
               space: Space, fixed: dict[str, Any]) -> optuna.Study:
    """Create the study, or load it and refuse a run whose directions, space or fixed settings differ."""
    if name is None:  # upstream's default: continue the one study this storage holds, if it holds one
        names = optuna.study.get_all_study_names(storage)
        if len(names) > 1:
            raise UserError(f"{shown_url} holds {len(names)} studies ({', '.join(sorted(names)[:5])}): choose one "
                            "with hydra.sweeper.study_name=NAME")
        name = names[0] if names else None
    for attempt in range(5):  # workers starting together race to create the same study
        try:
            study = optuna.create_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner,
                                        directions=directions, load_if_exists=True)
            break
        except optuna.exceptions.DuplicatedStudyError:
            time.sleep(0.2 * (attempt + 1))
    else:
        raise UserError(f"could not create or load study {name} in {shown_url}: try again")
    way_out = "run it under a new hydra.sweeper.study_name (or another storage) to start a new study"
    stored = [d.name.lower() for d in study.directions]
    if stored != directions:
        raise UserError(f"study {study.study_name} in {shown_url} optimises {stored}, not {directions}: {way_out}")
    record = space_record(space)
    attrs = study.user_attrs
    if SPACE_ATTR not in attrs:  # a new study (written last: a worker that sees it also sees FIXED_ATTR)
        study.set_user_attr(FIXED_ATTR, fixed)
        study.set_user_attr(SPACE_ATTR, record)
        return study
    change = describe_change(attrs[SPACE_ATTR], record)
    if change:
        raise UserError(f"study {study.study_name} in {shown_url} has another search space ({change}): {way_out}")
    change = _differences(attrs.get(FIXED_ATTR, {}), fixed)
    if change:
        raise UserError(f"study {study.study_name} in {shown_url} was run with other fixed settings ({change}): "
                        f"{way_out}, or run with the study's settings")
    return study


# --------------------------------------------------------------------------- workers and their trials


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Trials:
    """The study's trial bookkeeping for one worker: heartbeats of its own trials, and stale trials of dead
    workers failed and queued again (at most max_retry times), continuing in their own job folders."""

    def __init__(self, study: optuna.Study, storage: Any, grace_period: float, max_retry: int) -> None:
        self.study, self.storage = study, storage
        self.study_id = storage.get_study_id_from_name(study.study_name)
        self.grace_period, self.max_retry = grace_period, max_retry
        self.beats = 0
        self.seen: dict[int, tuple[Any, float]] = {}  # another worker's RUNNING trial: (its beat, when it last moved)

    def trial_id(self, number: int) -> int:
        return self.storage.get_trial_id_from_study_id_trial_number(self.study_id, number)

    def claim(self, trial: optuna.trial.Trial) -> None:
        trial.set_user_attr(WORKER_ATTR, {"id": WORKER, "beat": self.beats})

    def beat(self, trials: Sequence[optuna.trial.Trial]) -> None:
        self.beats += 1
        for trial in trials:
            trial.set_user_attr(WORKER_ATTR, {"id": WORKER, "beat": self.beats})

    def stale(self, trials: Sequence[FrozenTrial], mine: set[int]) -> list[tuple[FrozenTrial, str]]:
        """Other workers' RUNNING trials that are dead: their sweeper process on this host is gone, or their
        heartbeat has not moved for grace_period seconds."""
        now, out = time.monotonic(), []
        running = {t.number for t in trials if t.state == TrialState.RUNNING}
        self.seen = {n: s for n, s in self.seen.items() if n in running}
        for t in trials:
            if t.state != TrialState.RUNNING or t.number in mine:
                continue
            worker = t.user_attrs.get(WORKER_ATTR) or {}
            host, _, pid = str(worker.get("id", "")).rpartition(":")
            if host == socket.gethostname() and pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
                out.append((t, "its sweeper process on this host is gone"))
                continue
            beat = worker.get("beat")
            last = self.seen.get(t.number)
            if last is None or last[0] != beat:
                self.seen[t.number] = (beat, now)
            elif now - last[1] >= self.grace_period:
                out.append((t, f"no heartbeat for {self.grace_period:g}s"))
        return out

    def requeue(self, t: FrozenTrial, reason: str, died: bool) -> bool:
        """Fail a trial that stopped without finishing and queue a copy that continues it in its job folder.
        `died`: its worker died (counted against max_retry) rather than being interrupted on purpose.
        False when another worker got there first, or the trial finished meanwhile."""
        retries = int(t.user_attrs.get(RETRIES_ATTR, 0)) + int(died)
        give_up = died and retries > self.max_retry
        trial_id = self.trial_id(t.number)
        try:
            if give_up:
                self.storage.set_trial_user_attr(trial_id, FAILURE_ATTR, f"{reason}; retried {self.max_retry} times "
                                                 "(hydra.sweeper.max_retry)")
            else:
                self.storage.set_trial_user_attr(trial_id, REQUEUED_ATTR, reason)
            if not self.storage.set_trial_state_values(trial_id, TrialState.FAIL):
                return False
        except UpdateFinishedTrialError:
            return False
        if not give_up:
            attrs = {DIR_ATTR: t.user_attrs[DIR_ATTR]} if DIR_ATTR in t.user_attrs else {}
            self.study.enqueue_trial(t.params, user_attrs={**attrs, RETRIES_ATTR: retries, "retry_of": t.number})
        return True


# --------------------------------------------------------------------------- results


def write_results(study: optuna.Study, sweep_dir: Path, shown_url: str) -> None:
    """trials.csv, optimization_results.yaml (upstream's keys, plus the best trial's folder and checkpoint)
    and, for several objectives, pareto_front.csv: a mirror of the study, rewritten whole each time."""
    trials = sorted((t for t in study.get_trials(deepcopy=False) if SURPLUS_ATTR not in t.user_attrs),
                    key=lambda t: t.number)
    multi = len(study.directions) > 1
    value_keys = [f"values_{i}" for i in range(len(study.directions))] if multi else ["value"]
    keys = sorted({k for t in trials for k in t.params})

    def row(t: FrozenTrial) -> dict:
        values = t.values if t.values is not None else [None] * len(value_keys)
        return {"number": t.number, "state": t.state.name, **dict(zip(value_keys, values)),
                "duration_s": t.duration.total_seconds() if t.duration else None,
                "job_dir": t.user_attrs.get(DIR_ATTR), "requeued": t.user_attrs.get(REQUEUED_ATTR),
                **{f"params_{k}": v for k, v in t.params.items()}}

    fields = ["number", "state", *value_keys, "duration_s", "job_dir", "requeued", *(f"params_{k}" for k in keys)]
    atomic_write_csv(sweep_dir / rundir.TRIALS, [row(t) for t in trials], fields)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if not complete:
        return
    # A requeued trial (stopped, its worker dead or the sweep interrupted) is FAIL in Optuna, but no failure:
    # it is continued by its retry.
    kinds = ["requeued" if REQUEUED_ATTR in t.user_attrs else t.state.name.lower() for t in trials]
    counts = {k: kinds.count(k) for k in sorted(set(kinds))}
    results: dict[str, Any] = {"name": "optuna"}
    if multi:
        front = study.best_trials
        results["solutions"] = [{"params": t.params, "values": t.values} for t in front]
        atomic_write_csv(sweep_dir / rundir.PARETO_FRONT, [row(t) for t in front], fields)
    else:
        best = study.best_trial
        job_dir = sweep_dir / best.user_attrs.get(DIR_ATTR, trial_dir_name(best.number))
        results.update(best_params=best.params, best_value=best.value, best_trial=best.number,
                       best_job_dir=str(job_dir))
        checkpoint = job_dir / rundir.CHECKPOINTS / rundir.BEST
        if checkpoint.exists():
            results["best_checkpoint"] = str(checkpoint)
    results.update(study_name=study.study_name, storage=shown_url, n_trials=counts)
    atomic_write_text(sweep_dir / rundir.RESULTS, OmegaConf.to_yaml(OmegaConf.create(results)))
