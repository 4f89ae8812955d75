"""Typed schema and value checks for the composed config, so a typo fails before any work."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

from sweep.errors import ConfigError

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"

ACTIVATIONS = ("relu", "tanh", "sigmoid", "gelu", "leaky_relu")
OPTIMIZERS = ("sgd", "adam")
DATASETS = ("mnist", "fashion_mnist")
TASKS = ("binary", "multiclass")
MONITORS = ("val_acc", "val_loss")
SCHEDULES = ("constant", "cosine")


@dataclass
class ModelConfig:
    name: str = "pigeon"
    num_hidden: int = 30
    num_layers: int = 1
    activation: str = "relu"
    dropout: float = 0.0


@dataclass
class OptimizerConfig:
    name: str = "sgd"
    lr: float = 0.005
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "constant"


@dataclass
class DataConfig:
    name: str = "mnist"
    root: Optional[str] = None
    download: bool = True
    batch_size: int = 32
    train_size: int = 1024
    val_size: int = 1024
    test_size: Optional[int] = None
    task: str = "binary"
    threshold: int = 3
    shuffle: bool = False


@dataclass
class TrainerConfig:
    epochs: int = 15
    monitor: str = "val_acc"
    keep_checkpoints: Optional[int] = None
    eval_every: Optional[int] = None


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    data: DataConfig = field(default_factory=DataConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    seed: int = 1
    resume: bool = False


@functools.lru_cache(maxsize=1)
def _schema() -> DictConfig:
    """Built once a process (it takes longer than the merge); OmegaConf.merge copies it, never changes it."""
    return OmegaConf.structured(Config)


def validate(cfg: DictConfig) -> DictConfig:
    """Return the job config typed against the schema, or raise ConfigError naming the key and the fix."""
    job = {k: v for k, v in OmegaConf.to_container(cfg, resolve=False).items() if k != "hydra"}
    try:
        typed = OmegaConf.merge(_schema(), job)
        OmegaConf.resolve(typed)
    except ConfigKeyError as e:
        key = getattr(e, "full_key", None) or "?"
        raise ConfigError(
            f"unknown config key '{key}': check its spelling; "
            "`python -m sweep.train --cfg job` lists every key"
        ) from None
    except ValidationError as e:
        key = getattr(e, "full_key", None) or "?"
        raise ConfigError(f"wrong type for '{key}': {_first_line(e)}") from None
    except OmegaConfBaseException as e:
        raise ConfigError(f"invalid config: {_first_line(e)}") from None
    _check_values(typed)
    OmegaConf.set_readonly(typed, True)
    return typed


def _first_line(e: BaseException) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def _require(ok: bool, key: str, value: Any, must: str) -> None:
    if not ok:
        raise ConfigError(f"{key}={value} is out of range: it must be {must}")


def _one_of(key: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{key}={value} is not supported: use one of {', '.join(choices)}")


def _check_values(cfg: DictConfig) -> None:
    m, o, d, t = cfg.model, cfg.optimizer, cfg.data, cfg.trainer
    _one_of("model.activation", m.activation, ACTIVATIONS)
    _require(m.num_hidden >= 1, "model.num_hidden", m.num_hidden, "at least 1")
    _require(m.num_layers >= 1, "model.num_layers", m.num_layers, "at least 1")
    _require(0.0 <= m.dropout < 1.0, "model.dropout", m.dropout, "in [0, 1)")
    _one_of("optimizer.name", o.name, OPTIMIZERS)
    _require(math.isfinite(o.lr) and o.lr > 0, "optimizer.lr", o.lr, "a finite number above 0")
    _require(0.0 <= o.momentum < 1.0, "optimizer.momentum", o.momentum, "in [0, 1)")
    _require(o.weight_decay >= 0, "optimizer.weight_decay", o.weight_decay, "0 or more")
    _one_of("optimizer.schedule", o.schedule, SCHEDULES)
    _one_of("data.name", d.name, DATASETS)
    _one_of("data.task", d.task, TASKS)
    _require(d.batch_size >= 1, "data.batch_size", d.batch_size, "at least 1")
    _require(d.train_size >= 1, "data.train_size", d.train_size, "at least 1")
    _require(d.val_size >= 1, "data.val_size", d.val_size, "at least 1")
    _require(d.test_size is None or d.test_size >= 1, "data.test_size", d.test_size, "null or at least 1")
    _require(1 <= d.threshold <= 9, "data.threshold", d.threshold, "between 1 and 9")
    _require(t.epochs >= 1, "trainer.epochs", t.epochs, "at least 1")
    _one_of("trainer.monitor", t.monitor, MONITORS)
    _require(
        t.keep_checkpoints is None or t.keep_checkpoints >= 1,
        "trainer.keep_checkpoints", t.keep_checkpoints, "null (keep all) or at least 1",
    )
    _require(t.eval_every is None or t.eval_every >= 1, "trainer.eval_every", t.eval_every, "null or at least 1")


def compose(overrides: list[str] | None = None) -> DictConfig:
    """Compose and validate the config as `python -m sweep.train` would (for tests and notebooks)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = hydra_compose(config_name="config", overrides=list(overrides or []))
    return validate(cfg)
