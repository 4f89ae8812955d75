"""Pruning across processes: a job reaches its Optuna trial through the study's storage.

The sweeper runs jobs in-process (basic launcher), in worker processes (joblib) or on other machines
sharing a database, so it cannot hand a live Trial object to a job. It sets the storage URL, study name
and pruner once in the environment, and each job's trial number through Hydra's `hydra.job.env_set`.
The job then loads the study, reports its monitored validation metric after every epoch and asks the pruner
whether to stop; the sweeper records the trial as PRUNED from the job's metrics.json.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Optional

from sweep.errors import UserError

TRIAL_ENV = "SWEEP_OPTUNA_TRIAL"
STUDY_ENV = "SWEEP_OPTUNA_STUDY"
PRUNER_ENV = "SWEEP_OPTUNA_PRUNER"
DIRECTION_ENV = "SWEEP_OPTUNA_DIRECTION"  # the study's direction, so a job can refuse a monitor that does not fit
PRUNERS = {
    "none": "NopPruner",
    "median": "MedianPruner",
    "successive_halving": "SuccessiveHalvingPruner",
    "hyperband": "HyperbandPruner",
}


def make_pruner(name: str, args: Optional[dict] = None) -> Any:
    """An Optuna pruner from its short name (hydra.sweeper.pruner) and keyword arguments."""
    import optuna

    if name not in PRUNERS:
        raise UserError(f"hydra.sweeper.pruner={name} is not supported: use one of {', '.join(PRUNERS)}")
    cls = getattr(optuna.pruners, PRUNERS[name])
    try:
        return cls(**(args or {})) if name != "none" else cls()
    except (TypeError, ValueError) as e:
        raise UserError(f"hydra.sweeper.pruner_args={args} do not fit {cls.__name__}: {e}") from None


def epoch_hook_from_env() -> Optional[Callable[[int, float], bool]]:
    """The per-epoch report-and-ask hook of a job that runs as a trial with pruning on, else None."""
    number = os.environ.get(TRIAL_ENV)
    if number is None:
        return None
    name, args = json.loads(os.environ.get(PRUNER_ENV, '["none", {}]'))
    if name == "none":
        return None
    import optuna

    from sweep.storage import STORAGE_ENV, open_storage

    study = optuna.load_study(study_name=os.environ[STUDY_ENV], storage=open_storage(os.environ[STORAGE_ENV]),
                              pruner=make_pruner(name, args))
    trial_id = study._storage.get_trial_id_from_study_id_trial_number(study._study_id, int(number))
    trial = optuna.trial.Trial(study, trial_id)

    def report_and_ask(epoch: int, value: float) -> bool:
        trial.report(value, epoch)
        return trial.should_prune()

    return report_and_ask


def check_sweep_direction(direction: str, monitor: str) -> None:
    """A job of an Optuna study that optimises the other way from its monitor stops at once: maximising
    val_loss would pick the worst trial and prune the best ones."""
    wanted = os.environ.get(DIRECTION_ENV)
    if wanted is not None and wanted != direction:
        raise UserError(f"hydra.sweeper.direction={wanted} does not fit trainer.monitor={monitor}, which is "
                        f"better when {'higher' if direction == 'maximize' else 'lower'}: set "
                        f"hydra.sweeper.direction={direction}")
