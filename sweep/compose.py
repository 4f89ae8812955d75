"""Job configs for a search, composed once per set of config-group choices instead of once per trial.

Hydra composes every job's config from scratch: it reads, parses and merges every file of the defaults
list again, about 60 ms a job, which in a search of small trials is the largest cost after training.
Only some overrides change which files are merged: config-group choices (`optimizer=adam`), package
overrides and `hydra.searchpath`. Plain value overrides (`optimizer.lr=0.01`, `~key`, `+key=1`) are
applied by Hydra to the composed config afterwards, by `ConfigLoaderImpl._apply_overrides_to_config`.

So `ComposeOnce` composes through Hydra once for each distinct list of structural overrides, keeps that
config, and gives each job a copy with the job's value overrides applied by that same Hydra function,
then redoes the bookkeeping Hydra does after it (the `hydra.overrides` lists, `env_copy`,
`override_dirname`). tests/test_compose.py checks the result against Hydra's own composition.
Our sweepers (`sweep_basic`, `sweep_optuna`) hand it to their launcher through `compose_once`.
"""

from __future__ import annotations

import copy
import os
from typing import List, Optional

from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname
from hydra.core.config_loader import ConfigLoader
from hydra.core.config_search_path import ConfigSearchPath
from hydra.core.default_element import ResultDefault
from hydra.core.object_type import ObjectType
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import ConfigCompositionException
from hydra.plugins.config_source import ConfigSource
from hydra.types import HydraContext, RunMode
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

# Value overrides of these keys are structural too: Hydra reads or rewrites them while composing.
STRUCTURAL_KEYS = ("hydra.searchpath", "hydra.runtime", "hydra.job.env_copy", "hydra.job.config_name")


class ComposeOnce(ConfigLoader):
    """A ConfigLoader that wraps Hydra's and caches compositions; everything else is delegated."""

    @staticmethod
    def applies_to(config: DictConfig) -> bool:
        """Config groups are looked up on the main search path; hydra.searchpath adds others, so
        with it every job is composed by Hydra itself."""
        return not config.hydra.searchpath

    def __init__(self, inner: ConfigLoaderImpl) -> None:
        self.inner = inner
        # No lock (the joblib launcher pickles this for its workers, which then compose on their
        # side): two threads that miss the cache at once just compose twice.
        self._bases: dict[tuple, DictConfig] = {}

    def _is_value_override(self, o: Override) -> bool:
        if o.is_sweep_override() or o.package is not None:
            return False
        key = o.key_or_group
        if key.startswith(STRUCTURAL_KEYS):
            return False
        return isinstance(o.value(), dict) or not self.inner.repository.group_exists(key)

    def load_configuration(self, config_name: Optional[str], overrides: List[str], run_mode: RunMode,
                           from_shell: bool = True, validate_sweep_overrides: bool = True) -> DictConfig:
        parsed = OverridesParser.create().parse_overrides(overrides=overrides)
        if validate_sweep_overrides:
            ConfigLoaderImpl.validate_sweep_overrides_legal(parsed, run_mode=run_mode, from_shell=from_shell)
        values: list[Override] = []
        structural: list[str] = []
        for o in parsed:
            if self._is_value_override(o):
                values.append(o)
            else:
                structural.append(o.input_line)
        key = (config_name, run_mode, from_shell, tuple(structural))
        base = self._bases.get(key)
        if base is None:
            base = self.inner.load_configuration(config_name, structural, run_mode, from_shell,
                                                 validate_sweep_overrides=False)
            self._bases[key] = base
        cfg = copy.deepcopy(base)
        try:
            ConfigLoaderImpl._apply_overrides_to_config(values, cfg)
        except OmegaConfBaseException as e:  # as Hydra's load_configuration reports them
            raise ConfigCompositionException().with_traceback(e.__traceback__) from e
        hydra = cfg.hydra
        hydra.overrides.hydra = [o.input_line for o in parsed if o.is_hydra_override()]
        app_overrides = [o for o in parsed if not o.is_hydra_override()]
        hydra.overrides.task = [o.input_line for o in app_overrides]
        with open_dict(hydra):
            for name in hydra.job.env_copy:
                hydra.job.env_set[name] = os.environ[name]
        dirname = hydra.job.config.override_dirname
        hydra.job.override_dirname = get_overrides_dirname(
            overrides=app_overrides, kv_sep=dirname.kv_sep, item_sep=dirname.item_sep,
            exclude_keys=dirname.exclude_keys)
        return cfg

    def load_sweep_config(self, master_config: DictConfig, sweep_overrides: List[str]) -> DictConfig:
        """As Hydra's: the master's Hydra overrides, then the job's, and the master's resolver cache."""
        overrides = [*OmegaConf.to_container(master_config.hydra.overrides.hydra), *sweep_overrides]
        cfg = self.load_configuration(master_config.hydra.job.config_name, overrides, RunMode.RUN)
        OmegaConf.copy_cache(from_config=master_config, to_config=cfg)
        return cfg

    def get_search_path(self) -> ConfigSearchPath:
        return self.inner.get_search_path()

    def get_sources(self) -> List[ConfigSource]:
        return self.inner.get_sources()

    def list_groups(self, parent_name: str) -> List[str]:
        return self.inner.list_groups(parent_name)

    def get_group_options(self, group_name: str, results_filter: Optional[ObjectType] = ObjectType.CONFIG,
                          config_name: Optional[str] = None, overrides: Optional[List[str]] = None) -> List[str]:
        return self.inner.get_group_options(group_name, results_filter, config_name, overrides)

    def compute_defaults_list(self, config_name: Optional[str], overrides: List[str],
                              run_mode: RunMode) -> List[ResultDefault]:
        return self.inner.compute_defaults_list(config_name, overrides, run_mode)


def compose_once(hydra_context: HydraContext, config: DictConfig) -> HydraContext:
    """The context a sweeper gives its launcher: with ComposeOnce as its config loader where it applies."""
    if not ComposeOnce.applies_to(config):
        return hydra_context
    return HydraContext(config_loader=ComposeOnce(hydra_context.config_loader), callbacks=hydra_context.callbacks)
