"""From a config to the objects a run needs: the data module and its splits, the model, the optimizer
and the schedule, each named by `_target_` and instantiated by Hydra.

`prepare(cfg)` builds all of them once and tries the model on two examples, so that every bad input
(a class that does not import, a keyword it does not take, data that does not fit the model) fails
with one line before anything is written.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from sweep import device
from sweep.config import RUN_LENGTH_KEYS, SWEEP_KEYS, locate, validate
from sweep.data import LOADER_DEFAULTS, as_tensors, first_example
from sweep.errors import ConfigError, DataError, UserError, first_line
from sweep.loop import Loader
from sweep.tasks import Task, get_task


def _instantiate(group: str, node: dict, *args: Any) -> Any:
    """hydra.utils.instantiate, with a constructor's complaint turned into one line naming the key."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    try:
        obj = instantiate(node, _convert_="all")
        return obj(*args) if args else obj
    except InstantiationException as e:
        cause = e.__cause__ or e
    except (TypeError, ValueError, RuntimeError) as e:
        cause = e
    if isinstance(cause, UserError):
        raise cause
    msg = first_line(cause)
    key = msg.split("=", 1)[0]
    if key in node:  # the constructor named one of its arguments: name the config key
        raise ConfigError(f"{group}.{msg}") from None
    raise ConfigError(f"{group}: {node.get('_target_')} refused its arguments ({type(cause).__name__}: {msg})"
                      ) from None


def _kwargs(cfg: DictConfig, group: str) -> dict:
    """A group's config as keyword arguments, without the keys sweep reads itself."""
    node = OmegaConf.to_container(cfg[group], resolve=True)
    return {k: v for k, v in node.items() if k not in SWEEP_KEYS[group]}


def _accepts(target: Callable, name: str) -> bool:
    """Whether a constructor has a parameter of that name (sweep then passes it)."""
    try:
        return name in inspect.signature(target).parameters
    except (TypeError, ValueError):
        return False


def build_model(cfg: DictConfig, input_shape: tuple[int, ...], num_outputs: int) -> nn.Module:
    """The model `_target_` names, given num_outputs and input_shape when it takes them and the config does not."""
    node = _kwargs(cfg, "model")
    target = locate("model", node["_target_"])
    for key, value in (("num_outputs", num_outputs), ("input_shape", list(input_shape))):
        if key not in node and _accepts(target, key):
            node[key] = value
    model = _instantiate("model", node)
    if not isinstance(model, nn.Module):
        raise ConfigError(f"model._target_={node['_target_']} built a {type(model).__name__}, not a torch.nn.Module")
    return model


def build_optimizer(cfg: DictConfig, params: Any) -> torch.optim.Optimizer:
    """The torch.optim class `_target_` names. For Adam-like classes, `momentum` is beta1, as in the seed's days."""
    node = _kwargs(cfg, "optimizer")
    target = locate("optimizer", node["_target_"])
    if "momentum" in node and not _accepts(target, "momentum") and _accepts(target, "betas"):
        beta2 = (node.get("betas") or (0.9, 0.999))[1]
        node["betas"] = (node.pop("momentum"), beta2)
    node["_partial_"] = True
    return _instantiate("optimizer", node, params)


def build_scheduler(cfg: DictConfig, optimizer: torch.optim.Optimizer, epochs: int, iterations_per_epoch: int) -> Any:
    """The lr_scheduler class `_target_` names (or None); run-length keywords left null get the run's length."""
    if cfg.scheduler.get("_target_") is None:
        return None
    node = _kwargs(cfg, "scheduler")
    length = epochs * (iterations_per_epoch if interval(cfg) == "iteration" else 1)
    for key in RUN_LENGTH_KEYS:
        if key in node and node[key] is None:
            node[key] = length
    node["_partial_"] = True
    return _instantiate("scheduler", node, optimizer)


def interval(cfg: DictConfig) -> str:
    """When the schedule steps: every epoch (the default) or every iteration."""
    return cfg.scheduler.get("interval", "epoch")


@dataclass
class Prepared:
    """Everything a run needs before its first epoch; built before anything is written."""

    cfg: DictConfig
    compute: device.Compute
    datamodule: Any
    task: Task
    monitor: str
    train: Loader
    val: Loader
    input_shape: tuple[int, ...]
    num_outputs: int


def loader_settings(cfg: DictConfig) -> dict[str, Any]:
    """data.batch_size, data.shuffle and data.num_workers (LOADER_DEFAULTS where the config has none), checked."""
    settings = {k: cfg.data.get(k, default) for k, default in LOADER_DEFAULTS.items()}
    for key, low in (("batch_size", 1), ("num_workers", 0)):
        value = settings[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"wrong type for 'data.{key}': it must be a whole number, got {value!r}")
        if value < low:
            raise ConfigError(f"data.{key}={value} is out of range: it must be {'at least 1' if low else '0 or more'}")
    if not isinstance(settings["shuffle"], bool):
        raise ConfigError(f"wrong type for 'data.shuffle': it must be true or false, got {settings['shuffle']!r}")
    return settings


def split(datamodule: Any, method: str, target: str) -> Any:
    """One split from the data module; a file it cannot read is one line naming the module and the file."""
    try:
        return getattr(datamodule, method)()
    except OSError as e:
        raise DataError(f"data._target_={target}: {method}() cannot read {e.filename or 'its data'} "
                        f"({e.strerror or e}): check the data's path in the data config") from None


def _example(data: Any, target: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The first training example: its input's shape is the model's input_shape, its target the output width."""
    try:
        return first_example(data)
    except (TypeError, ValueError, RuntimeError) as e:
        raise DataError(f"data._target_={target}: the first training example is not an (input, target) pair of "
                        f"tensors or numbers ({type(e).__name__}: {first_line(e)}): return tensors (for images, "
                        "end the transform with ToTensor())") from None


def _num_outputs(task: Task, datamodule: Any, train_data: Any, target: torch.Tensor, where: str) -> int:
    """The model's output width: 1 (binary), the number of classes, or the regression target's width."""
    pair = as_tensors(train_data)
    num_classes = getattr(datamodule, "num_classes", None)
    if task.name == "multiclass" and num_classes is None:
        if pair is None:
            raise DataError(f"data._target_={where} is multiclass but has no num_classes attribute: add one "
                            "(the number of classes)")
        num_classes = int(pair[1].max()) + 1
    if pair is not None and task.classifies:  # in memory: cheap to check every label now, not mid-run
        labels = pair[1]
        high = 2 if task.name == "binary" else num_classes
        if (labels.is_floating_point() and not torch.equal(labels, labels.round())) or labels.min() < 0 \
                or labels.max() >= high:
            raise DataError(f"data._target_={where}: the {task.name} task needs class indices 0 to {high - 1} as "
                            f"training targets, but they run from {labels.min().item()} to {labels.max().item()}: "
                            "fix the targets, or the task (or num_classes)")
    return task.num_outputs(target, num_classes)


def try_build(cfg: DictConfig, compute: device.Compute, task: Task, train: Loader, input_shape: tuple[int, ...],
              num_outputs: int) -> None:
    """Build the model, optimizer and schedule once and run the model on two training examples, so that a model
    that does not fit the data fails before a run starts (a basic multirun does this for every job)."""
    where = cfg.data._target_
    with torch.random.fork_rng(devices=[]):  # the trial build must not move the run's RNG
        model = build_model(cfg, input_shape, num_outputs).to(compute.device)
        try:
            x, y = train.head(2)
        except RuntimeError as e:  # the DataLoader cannot stack the examples into a batch
            raise DataError(f"data._target_={where}: two training examples do not make a batch "
                            f"({first_line(e)}): give every example the same shape (image_folder: set "
                            "data.image_size)") from None
        model.eval()
        try:
            with torch.no_grad(), compute.autocast():
                out = model(x.to(compute.device))
        except Exception as e:  # the model's layers do not fit the data (a shape mismatch, say)
            raise ConfigError(f"{cfg.model._target_} fails on a batch of the data (inputs of shape "
                              f"{tuple(x.shape)}): {type(e).__name__}: {first_line(e)}; make the model fit "
                              "the data (sweep passes input_shape= and num_outputs= when its constructor takes them)"
                              ) from None
        task.check_outputs(out, len(y), num_outputs, cfg.model._target_)
        optimizer = build_optimizer(cfg, model.parameters())
        build_scheduler(cfg, optimizer, cfg.trainer.epochs, len(train))


def prepare(cfg: DictConfig) -> Prepared:
    """Check the config, build the data module, read the train and validation splits, and try the model,
    optimizer and schedule once (on two examples), so that every bad input fails before a run starts."""
    cfg = validate(cfg)
    compute = device.setup(cfg.trainer.device, cfg.trainer.precision, cfg.trainer.deterministic, cfg.trainer.threads)
    settings = loader_settings(cfg)
    data_cfg = _kwargs(cfg, "data")  # without the loader keys, which are sweep's
    datamodule = _instantiate("data", data_cfg)
    where = cfg.data._target_
    for method in ("train_dataset", "val_dataset", "test_dataset"):
        if not callable(getattr(datamodule, method, None)):
            raise ConfigError(f"data._target_={where} has no {method}() method: a data module needs "
                              "train_dataset(), val_dataset(), test_dataset() and a task attribute (see the README)")
    task = get_task(getattr(datamodule, "task", None))
    monitor = cfg.trainer.monitor or task.default_monitor
    task.check_monitor(monitor)
    train_data, val_data = split(datamodule, "train_dataset", where), split(datamodule, "val_dataset", where)
    loader_args = dict(batch_size=settings["batch_size"], num_workers=settings["num_workers"], seed=cfg.seed,
                       compute=compute)
    train = Loader(train_data, task, shuffle=settings["shuffle"], **loader_args)
    val = Loader(val_data, task, shuffle=False, **loader_args)
    if train.n == 0 or val.n == 0:
        raise DataError(f"the {'training' if train.n == 0 else 'validation'} split of {where} is empty: "
                        "check the data and the split sizes")
    x0, y0 = _example(train_data, where)
    input_shape = tuple(x0.shape)
    num_outputs = _num_outputs(task, datamodule, train_data, y0, where)
    try_build(cfg, compute, task, train, input_shape, num_outputs)
    return Prepared(cfg, compute, datamodule, task, monitor, train, val, input_shape, num_outputs)
