"""The config's schema and checks, so that a typo fails before any work, with one line naming the key.

`trainer`, `seed` and `resume` are typed here. `model`, `optimizer`, `scheduler` and `data` name a class by
`_target_`: their keys are checked against that class's constructor (a keyword it does not take, or a
value of the wrong type, is refused), plus the few keys sweep reads itself (`SWEEP_KEYS`).
"""

from __future__ import annotations

import collections.abc
import difflib
import functools
import importlib
import inspect
import math
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

from sweep.data import LOADER_KEYS
from sweep.errors import ConfigError, first_line

CONF_MODULE = "sweep.conf"  # conf/ at the top of the repository, shipped as this package (pyproject.toml)
CONF_PATH = f"pkg://{CONF_MODULE}"


def _direction_resolver(*, _root_: DictConfig) -> str:
    """`${sweep_direction:}`: the Optuna direction that fits the config's monitored metric (conf/search/*.yaml)."""
    from sweep.tasks import expected_direction

    direction = expected_direction(_root_)
    if direction is None:
        raise ConfigError("cannot tell whether the objective is better high or low: set trainer.monitor=val_<metric> "
                          "or hydra.sweeper.direction=maximize|minimize")
    return direction


OmegaConf.register_new_resolver("sweep_direction", _direction_resolver, replace=True)

PRECISIONS = ("32", "bf16", "16")
DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
TARGET_GROUPS = ("model", "optimizer", "scheduler", "data")
HYDRA_KEYS = {"_target_", "_partial_", "_recursive_", "_convert_", "_args_"}
# Keys sweep reads itself; they are taken out before the class is instantiated.
SWEEP_KEYS = {"data": set(LOADER_KEYS), "scheduler": {"interval"}, "optimizer": set(), "model": set()}
INTERVALS = ("epoch", "iteration")
# Scheduler keywords that sweep fills with the run's length when the config leaves them null.
RUN_LENGTH_KEYS = ("T_max", "total_steps", "total_iters")
# Keys that existed before models, data and optimizers were named by _target_.
MOVED_KEYS = {
    "optimizer.schedule": "the schedule is a config group now: scheduler=cosine (or scheduler=none, step, onecycle)",
    "optimizer.name": "pick the optimizer with optimizer=sgd|adam|adamw, or name any class with optimizer._target_",
    "model.name": "pick the model with model=pigeon|cnn, or name any class with model._target_",
    "data.name": "pick the data with data=mnist|fashion_mnist|cifar10|image_folder|csv, or data._target_",
}


@dataclass
class TrainerConfig:
    epochs: int = 15
    monitor: Optional[str] = None
    keep_checkpoints: Any = "auto"  # "auto", null or a whole number (checked in _check_trainer)
    eval_every: Optional[int] = None
    eval_train: bool = True
    device: str = "auto"
    precision: str = "32"
    deterministic: bool = True
    threads: Optional[int] = None


@dataclass
class Config:
    model: Any = None
    optimizer: Any = None
    scheduler: Any = None
    data: Any = None
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
        parent, _, leaf = key.rpartition(".")
        node = OmegaConf.select(_schema(), parent) if parent else _schema()
        known = list(node.keys()) if isinstance(node, DictConfig) else []
        hint = (did_you_mean(leaf, known, parent) or f"; the keys there are {', '.join(known)}") if known else ""
        raise ConfigError(f"unknown config key '{key}'{hint}") from None
    except ValidationError as e:
        key = getattr(e, "full_key", None) or "?"
        raise ConfigError(f"wrong type for '{key}': {first_line(e)}") from None
    except OmegaConfBaseException as e:
        raise ConfigError(f"invalid config: {first_line(e)}") from None
    missing = sorted(OmegaConf.missing_keys(typed))
    if missing:
        raise ConfigError(f"{missing[0]} has no value (??? in its config file): set it on the command line, "
                          f"{missing[0]}=...")
    _check_seed(typed.seed)
    _check_trainer(typed.trainer)
    for group in TARGET_GROUPS:
        check_target(typed, group)
    _check_optimizer(typed.optimizer)
    OmegaConf.set_readonly(typed, True)
    return typed


def did_you_mean(key: str, known: list[str], parent: str = "", rest: str = "") -> str:
    """" (did you mean trainer.epochs?)" when a known key is close to a mistyped one (`rest`: what followed
    it, as in trainr.epochs), else ""."""
    close = difflib.get_close_matches(key, known, n=1) or [k for k in known if k.startswith(key)][:1]
    if not close:
        return ""
    return f" (did you mean {parent + '.' if parent else ''}{close[0]}{'.' + rest if rest else ''}?)"


def _require(ok: bool, key: str, value: Any, must: str) -> None:
    if not ok:
        raise ConfigError(f"{key}={value} is out of range: it must be {must}")


def _check_seed(seed: int) -> None:
    """Every RNG takes it (NumPy's the fewest bits), and each epoch's shuffling seed derives from it."""
    _require(0 <= seed < 2**32, "seed", seed, f"a whole number from 0 to {2**32 - 1}")


def _check_trainer(t: DictConfig) -> None:
    """The trainer's values that no annotation can express: ranges, device names, a validation monitor."""
    _require(t.epochs >= 1, "trainer.epochs", t.epochs, "at least 1")
    keep = t.keep_checkpoints
    if not (keep in (None, "auto") or (type(keep) is int and keep >= 0)):
        raise ConfigError(f"trainer.keep_checkpoints={keep} is not valid: use auto, null (keep every epoch file) "
                          "or a whole number of at least 0")
    _require(t.eval_every is None or t.eval_every >= 1, "trainer.eval_every", t.eval_every, "null or at least 1")
    _require(t.threads is None or t.threads >= 1, "trainer.threads", t.threads, "null (torch's default) or at least 1")
    if not DEVICE.match(t.device):
        raise ConfigError(f"trainer.device={t.device} is not a device: use auto, cpu, cuda, cuda:N or mps")
    if t.precision not in PRECISIONS:
        raise ConfigError(f"trainer.precision={t.precision} is not supported: use one of {', '.join(PRECISIONS)}")
    if t.monitor is not None and not t.monitor.startswith("val_"):
        raise ConfigError(f"trainer.monitor={t.monitor} is not a validation metric: selection uses validation data "
                          "only, so name a val_<metric> (val_acc, val_loss, val_rmse, ...)")


def _check_optimizer(o: DictConfig) -> None:
    """The keys every optimizer config documents; torch's own checks catch the rest when it is built."""
    if "lr" in o and isinstance(o.lr, (int, float)):
        _require(math.isfinite(o.lr) and o.lr > 0, "optimizer.lr", o.lr, "a finite number above 0")
    if "momentum" in o and isinstance(o.momentum, (int, float)):
        _require(0.0 <= o.momentum < 1.0, "optimizer.momentum", o.momentum, "in [0, 1)")
    if "weight_decay" in o and isinstance(o.weight_decay, (int, float)):
        _require(o.weight_decay >= 0, "optimizer.weight_decay", o.weight_decay, "0 or more")


def locate(group: str, path: Any) -> Callable:
    """The class or function a `_target_` names, or one line saying why it does not import.

    Imported here rather than by hydra.utils.get_object, which logs its own multi-line error first.
    """
    if not isinstance(path, str) or not path:
        raise ConfigError(f"{group}._target_ must name a class, such as mypackage.nets.Net")
    parts = path.split(".")
    error: Optional[BaseException] = None
    for i in range(len(parts), 0, -1):  # the longest importable prefix, then attributes
        try:
            module = importlib.import_module(".".join(parts[:i]))
        except ModuleNotFoundError as e:
            prefix = ".".join(parts[:i])
            if e.name is None or not (prefix == e.name or prefix.startswith(e.name + ".")):
                error = e  # the module exists but imports something that does not
                break
            error = error or e
            continue
        except Exception as e:  # an error raised by the user's module itself
            error = e
            break
        obj: Any = module
        try:
            for attr in parts[i:]:
                obj = getattr(obj, attr)
        except AttributeError as e:
            error = e
            break
        return obj
    reason = f"{type(error).__name__}: {first_line(error)}" if error else "not a dotted name"
    raise ConfigError(f"{group}._target_={path} cannot be imported ({reason}): check the name, and that its "
                      "module is importable from the current folder (or installed)")


def _parameters(target: Callable) -> Optional[dict[str, inspect.Parameter]]:
    """The constructor's keyword parameters, or None when it takes **kwargs (any key is fine)."""
    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return None
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return None
    return {n: p for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def check_target(cfg: DictConfig, group: str) -> None:
    """Every key of cfg[group] is a keyword of its _target_ (or one of sweep's own), with a fitting type."""
    node = cfg[group]
    if node is None or not isinstance(node, DictConfig):
        raise ConfigError(f"{group} must be a config with a _target_: pick one with {group}=NAME (see conf/{group}/)")
    if group == "scheduler" and node.get("_target_") is None:
        keys = [k for k in node if k != "_target_"]
        if keys:
            raise ConfigError(f"scheduler.{keys[0]} is set, but scheduler=none has no schedule to take it: pick one, "
                              f"e.g. scheduler=cosine scheduler.{keys[0]}=...")
        return
    target = locate(group, node.get("_target_"))
    name = node._target_
    keys = [k for k in node if k not in HYDRA_KEYS and k not in SWEEP_KEYS[group]]
    if group == "scheduler":
        interval = node.get("interval", "epoch")
        if interval not in INTERVALS:
            raise ConfigError(f"scheduler.interval={interval} is not supported: use epoch or iteration")
    params = _parameters(target)
    if params is None:
        return
    hints = _hints(target)
    values = OmegaConf.to_container(node, resolve=True)
    for key in keys:
        if group == "optimizer" and key == "momentum" and "momentum" not in params and "betas" in params:
            continue  # Adam's beta1: sweep.build.build_optimizer passes betas=(momentum, beta2)
        full = f"{group}.{key}"
        if key not in params:
            moved = MOVED_KEYS.get(full)
            if moved:
                raise ConfigError(f"{full} is gone: {moved}")
            ours = sorted(SWEEP_KEYS[group])
            hint = did_you_mean(key, [*params, *ours], group) or f"; it takes {', '.join(params)}" + (
                f", and sweep reads {', '.join(ours)}" if ours else "")
            raise ConfigError(f"unknown config key '{full}': {name} takes no keyword {key}{hint}")
        value = values[key]
        if group == "scheduler" and key in RUN_LENGTH_KEYS and value is None:
            continue  # filled with the run's length (sweep.build.build_scheduler)
        if key in hints and not _fits(value, hints[key]):
            raise ConfigError(f"wrong type for '{full}': {name} takes {_type_name(hints[key])}, got {value!r}")


def _hints(target: Callable) -> dict[str, Any]:
    """A constructor's annotations; unresolvable ones (forward references to absent names) are skipped."""
    try:
        return typing.get_type_hints(target.__init__ if inspect.isclass(target) else target)
    except Exception:  # unresolvable annotations: skip type checks, the constructor still checks
        return {}


def _fits(value: Any, hint: Any) -> bool:
    """Whether a config value (None, bool, int, float, str, list or dict) fits an annotation.

    Only what a config value can plainly contradict is refused; an annotation this does not understand fits.
    """
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any or hint is inspect.Parameter.empty:
        return True
    if origin is typing.Union or origin is types.UnionType:
        return any(_fits(value, a) for a in args)
    if origin is typing.Literal:
        return value in args
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if hint in (Path, os.PathLike) or (inspect.isclass(hint) and issubclass(hint, os.PathLike)):
        return isinstance(value, str)
    if _is_tensor(hint):  # a config holds no tensors: numbers (lists of numbers) become one
        return value is not None and not isinstance(value, (str, bool, dict))
    sequence = (list, tuple, collections.abc.Sequence)
    if hint in sequence or origin in sequence:
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(args) == len(value) and all(_fits(v, a) for v, a in zip(value, args))
        return not args or all(_fits(v, args[0]) for v in value)
    if hint in (dict, collections.abc.Mapping) or origin in (dict, collections.abc.Mapping):
        return isinstance(value, dict)
    return True


def _is_tensor(hint: Any) -> bool:
    """torch.Tensor (or a subclass's name), without importing torch here."""
    return inspect.isclass(hint) and hint.__name__ == "Tensor" and hint.__module__.startswith("torch")


def _type_name(hint: Any) -> str:
    """An annotation as a user would write it: float | Tensor, Sequence[int]."""
    if typing.get_origin(hint) is None and hasattr(hint, "__name__"):
        return hint.__name__
    return str(hint).replace("typing.", "").replace("collections.abc.", "")


def compose(overrides: list[str] | None = None) -> DictConfig:
    """Compose and validate the config as `python -m sweep.train` would (for tests and notebooks)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    with initialize_config_module(config_module=CONF_MODULE, version_base="1.3"):
        cfg = hydra_compose(config_name="config", overrides=list(overrides or []))
    return validate(cfg)
