"""ComposeOnce gives every job exactly the config Hydra's own composition gives it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import ConfigCompositionException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from sweep.compose import ComposeOnce
from sweep.config import CONF_DIR

MASTER_OVERRIDES = ["search=optuna", "hydra.sweep.dir=/tmp/sweep-x", "hydra.sweeper.n_trials=7"]
FIXED = ["search=optuna"]  # the sweeper passes the command line's task overrides to every job

JOBS = [
    ["model.num_hidden=17", "optimizer.lr=0.01", "data.batch_size=64"],
    ["model.num_hidden=99", "optimizer.lr=0.2", "data.batch_size=16"],  # same groups: from the cache
    ["optimizer=adam", "optimizer.lr=0.002", "model.dropout=0.1"],       # another group choice
    ["+extra.knob=3", "++seed=5", "~resume", "trainer.epochs=2"],        # add, force-add, delete
    ["resume=true", "hydra.sweep.subdir=trial_0003", "++hydra.job.env_set.SWEEP_TRIAL=3",
     "hydra.job.name=renamed", "hydra.job.env_copy=[COMPOSE_TEST_VAR]"],  # Hydra's own keys
    ["hydra.job.config_name=other", "hydra.job.env_copy=[]", "model.num_hidden=5"],  # reset by Hydra
    ["data=fashion_mnist", "data.val_size=500", "seed=3", "hydra.job.config.override_dirname.kv_sep=_",
     "hydra.job.config.override_dirname.exclude_keys=[seed]"],
]


@pytest.fixture()
def loaders() -> Iterator[tuple[DictConfig, ComposeOnce]]:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        hydra_loader = GlobalHydra.instance().config_loader()
        master = hydra_loader.load_configuration("config", MASTER_OVERRIDES, RunMode.MULTIRUN)
        yield master, ComposeOnce(hydra_loader)


def as_data(cfg: DictConfig) -> tuple:
    """Every value, list order included (dict key order is not meaningful), and the flags Hydra sets."""
    return OmegaConf.is_struct(cfg), OmegaConf.is_readonly(cfg.hydra), OmegaConf.to_container(cfg)


@pytest.mark.parametrize("job", JOBS, ids=lambda j: j[0])
def test_same_config_as_hydra(loaders: tuple[DictConfig, ComposeOnce], job: list[str],
                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMPOSE_TEST_VAR", "from-env")
    master, fast = loaders
    for overrides in (JOBS[0], job, job):  # a warm cache, then this job twice
        expected = fast.inner.load_sweep_config(master, [*FIXED, *overrides])
        got = fast.load_sweep_config(master, [*FIXED, *overrides])
        assert as_data(got) == as_data(expected)
    assert os.environ["COMPOSE_TEST_VAR"] == "from-env"


def test_one_composition_per_group_choice(loaders: tuple[DictConfig, ComposeOnce]) -> None:
    master, fast = loaders
    for num_hidden in (5, 6, 7):
        cfg = fast.load_sweep_config(master, [*FIXED, f"model.num_hidden={num_hidden}", "optimizer=adam"])
        assert cfg.model.num_hidden == num_hidden
        cfg.model.num_hidden = 1000  # a job's config is its own: the cached composition is untouched
    fast.load_sweep_config(master, [*FIXED, "model.num_hidden=5", "optimizer=sgd"])
    assert len(fast._bases) == 2


def test_copied_environment_is_read_for_every_job(loaders: tuple[DictConfig, ComposeOnce],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    master, fast = loaders
    job = [*FIXED, "hydra.job.env_copy=[COMPOSE_TEST_VAR]", "model.num_hidden=5"]
    for value in ("first", "second"):  # one cached composition, the environment read anew
        monkeypatch.setenv("COMPOSE_TEST_VAR", value)
        got = fast.load_sweep_config(master, job)
        assert got.hydra.job.env_set.COMPOSE_TEST_VAR == value
        assert as_data(got) == as_data(fast.inner.load_sweep_config(master, job))


def test_bad_override_fails_as_in_hydra(loaders: tuple[DictConfig, ComposeOnce]) -> None:
    master, fast = loaders
    for loader in (fast.inner, fast):
        with pytest.raises(ConfigCompositionException, match="Could not override 'model.num_hiden'"):
            loader.load_sweep_config(master, [*FIXED, "model.num_hiden=3"])



def test_extra_search_paths_keep_hydras_composition(loaders: tuple[DictConfig, ComposeOnce],
                                                     tmp_path: Path) -> None:
    master, fast = loaders
    assert ComposeOnce.applies_to(master)
    with_path = fast.inner.load_configuration("config", [*MASTER_OVERRIDES, f"hydra.searchpath=[file://{tmp_path}]"],
                                              RunMode.MULTIRUN)
    assert not ComposeOnce.applies_to(with_path)  # its groups may come from there: the sweeper leaves Hydra's loader
