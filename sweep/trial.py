"""A job's side of an Optuna trial: report values for pruning, and stop when the sweep is stopped.

The sweeper runs jobs in its own process (basic launcher), in worker processes (joblib) or on other
machines (submitit), so it cannot hand a job a live `optuna.trial.Trial`. It passes the trial's
coordinates instead, through Hydra's `hydra.job.env_set` (TRIAL_ENV: JSON with the masked storage URL, the
study, the trial number and the pruner), which Hydra sets only while that job runs. A storage URL with a
password is masked there, because Hydra saves `env_set` into the job's `.hydra/`; the job takes the real
URL from $SWEEP_OPTUNA_STORAGE, which the sweeper sets for its own process and the workers it starts.

A stop request is a file (rundir.STOP) that the sweeper writes into the job's folder on Ctrl-C: every
launcher runs the job in a folder the sweeper can write to, so this reaches jobs on any machine. Jobs look
for it at each epoch boundary, after that epoch's checkpoint is saved.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Optional

from sweep import rundir
from sweep.errors import UserError
from sweep.storage import STORAGE_ENV, mask

TRIAL_ENV = "SWEEP_TRIAL"
PRUNERS = {
    "none": "NopPruner",
    "median": "MedianPruner",
    "successive_halving": "SuccessiveHalvingPruner",
    "hyperband": "HyperbandPruner",
}


class TrialInterrupted(Exception):
    """The sweep was stopped (Ctrl-C) while this trial ran: the sweeper queues the trial again, and the next
    run continues it. An Exception, not a KeyboardInterrupt, so that every launcher hands it back as the job's
    failure."""


def make_pruner(name: str, args: Optional[dict] = None) -> Any:
    """An Optuna pruner from its short name (hydra.sweeper.pruner) and keyword arguments (pruner_args)."""
    import optuna

    if name not in PRUNERS:
        raise UserError(f"hydra.sweeper.pruner={name} is not a pruner: use one of {', '.join(PRUNERS)}")
    cls = getattr(optuna.pruners, PRUNERS[name])
    try:
        return cls(**(args or {}))
    except (TypeError, ValueError) as e:
        raise UserError(f"hydra.sweeper.pruner_args={args} do not fit {cls.__name__} ({e}): see "
                        f"optuna.pruners.{cls.__name__} for its keyword arguments") from None


class TrialLink:
    """The job's handle on its trial, opened through the study's storage at the first report."""

    def __init__(self, info: dict) -> None:
        self.info = info
        self._trial: Any = None

    @property
    def number(self) -> int:
        return int(self.info["number"])

    def _url(self) -> str:
        shown = self.info["storage"]
        if ":***@" not in shown:  # no password: the URL as it is
            return shown
        real = os.environ.get(STORAGE_ENV, "")
        if mask(real) != shown:
            raise UserError(f"trial {self.number} cannot reach its study in {shown}: the password is not in this "
                            f"process's environment; export {STORAGE_ENV}=<the URL with its password> for every worker")
        return real

    def _open(self) -> Any:
        import optuna

        url = self._url()
        if url not in _storages:  # a worker process runs many trials: connect once
            from sweep.storage import open_storage

            _storages[url] = open_storage(url)
        storage = _storages[url]
        name = self.info["study"]
        study = optuna.load_study(study_name=name, storage=storage,
                                  pruner=make_pruner(self.info["pruner"], self.info.get("pruner_args")))
        trial_id = storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name(name), self.number)
        # Optuna has no public way to reach a trial from another process: only ask() and optimize() make Trial
        # objects. Its constructor is the one non-public step; the lookups above are the storage's public API.
        return optuna.trial.Trial(study, trial_id)

    def report(self, value: float, step: int) -> bool:
        """Record the trial's intermediate value; True when the pruner says to stop it."""
        if self.info.get("pruner", "none") == "none":
            return False
        if self._trial is None:
            self._trial = self._open()
        self._trial.report(float(value), int(step))
        return bool(self._trial.should_prune())


_links: dict[str, TrialLink] = {}
_storages: dict[str, Any] = {}


def current() -> Optional[TrialLink]:
    """This job's trial, or None when the job is not a trial of a sweep_optuna study."""
    raw = os.environ.get(TRIAL_ENV)
    if not raw:
        return None
    if raw not in _links:
        _links[raw] = TrialLink(json.loads(raw))
    return _links[raw]


def stop_requested(job_dir: Path) -> bool:
    return (Path(job_dir) / rundir.STOP).exists()


def epoch_hook(job_dir: Path) -> Optional[Callable[[int, float], bool]]:
    """sweep.train's per-epoch hook in a trial: raises TrialInterrupted on a stop request, else reports the
    monitored value and returns whether the pruner stops the trial. None outside a sweep_optuna study."""
    link = current()
    if link is None:
        return None

    def hook(epoch: int, value: float) -> bool:
        if stop_requested(job_dir):
            raise TrialInterrupted(f"trial {link.number} stopped after epoch {epoch}: the sweep was interrupted")
        return link.report(value, epoch)

    return hook


def report_value(value: float, step: int) -> bool:
    """Report a trial's intermediate value (a validation metric after epoch `step`) for pruning.

    Returns True when the trial should stop now (the pruner says so): return your best value so far from the
    task function. Raises TrialInterrupted when the sweep is being stopped (Ctrl-C): let it propagate, and
    the trial is run again on the next run. Outside a sweep_optuna study it returns False.
    """
    link = current()
    if link is None:
        return False
    from hydra.core.hydra_config import HydraConfig

    job_dir = Path(HydraConfig.get().runtime.output_dir)
    if stop_requested(job_dir):
        raise TrialInterrupted(f"trial {link.number} stopped at step {step}: the sweep was interrupted")
    return link.report(value, step)
