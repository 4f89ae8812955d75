"""Hydra plugin `hydra/sweeper=sweep_basic` (selected by `search=basic`, the default): Hydra's basic
sweeper, except that its jobs share one config composition per set of config-group choices.

Hydra imports every module under hydra_plugins/ at start-up, so this one stays light.
"""

from dataclasses import dataclass

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper, BasicSweeperConf
from hydra.core.config_store import ConfigStore
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from sweep.compose import compose_once


class SweepBasicSweeper(BasicSweeper):
    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        super().setup(hydra_context=compose_once(hydra_context, config), task_function=task_function, config=config)


@dataclass
class SweepBasicSweeperConf(BasicSweeperConf):
    _target_: str = "hydra_plugins.sweep_basic_sweeper.SweepBasicSweeper"


ConfigStore.instance().store(group="hydra/sweeper", name="sweep_basic", node=SweepBasicSweeperConf, provider="sweep")
