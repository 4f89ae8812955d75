"""Registers `hydra/sweeper: sweep_optuna`: every key of upstream's `optuna` sweeper, plus ours.

Hydra imports every module under hydra_plugins/ at start-up, so this one stays light: no optuna import.
"""

from dataclasses import dataclass
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from hydra_plugins.hydra_optuna_sweeper.config import OptunaSweeperConf


@dataclass
class SweepOptunaSweeperConf(OptunaSweeperConf):
    _target_: str = "hydra_plugins.sweep_optuna_sweeper.sweeper.SweepOptunaSweeper"
    # none | median | successive_halving | hyperband, with keyword arguments for Optuna's class
    pruner: str = "none"
    # (null, so that a whole dict can be given: 'hydra.sweeper.pruner_args={n_startup_trials: 5}')
    pruner_args: Optional[Any] = None
    # A trial whose sweeper stops sending heartbeats for grace_period seconds is failed and retried
    # (at most max_retry times) in its own job directory, from its last epoch checkpoint.
    heartbeat_interval: int = 10
    grace_period: int = 60
    max_retry: int = 3
    # true: upstream's behaviour, batches of n_jobs trials that wait for their slowest (for comparison)
    synchronous: bool = False


ConfigStore.instance().store(group="hydra/sweeper", name="sweep_optuna", node=SweepOptunaSweeperConf,
                             provider="sweep")
