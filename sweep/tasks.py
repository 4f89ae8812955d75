"""What a task is: its loss, its metrics (each with a direction), and the targets and outputs it expects.

A data module names its task (`binary`, `multiclass` or `regression`); nothing else in sweep knows
what the numbers mean. Metrics are sums over batches divided at the end, so an epoch's value does not
depend on how the data was batched. Written by hand rather than with torchmetrics: four sums are all
the built-in tasks need, and torchmetrics' import would double a small run's start-up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch
import torch.nn.functional as F

from sweep.errors import ConfigError, DataError


@dataclass(frozen=True)
class Metric:
    """One number computed over a split: `total(outputs, targets)` is summed over batches, then divided
    by the number of examples (or, with `per_element`, of target elements) and passed to `finish`."""

    name: str
    higher_is_better: bool
    total: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    finish: Callable[[float], float] = float
    per_element: bool = False


def _binary_correct(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return ((out > 0).to(y.dtype) == y).sum()


def _class_correct(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (out.argmax(dim=1) == y).sum()


def _squared_error(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (out.float() - y).pow(2).sum()


def _absolute_error(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (out.float() - y).abs().sum()


@dataclass(frozen=True)
class Task:
    """A kind of problem: how outputs are scored, and what shape targets and outputs have."""

    name: str
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    metrics: tuple[Metric, ...]  # every metric except the loss
    default_monitor: str

    @property
    def metric_names(self) -> list[str]:
        """loss first, then the task's metrics: the suffixes of history.csv's train_/val_ columns."""
        return ["loss", *(m.name for m in self.metrics)]

    def higher_is_better(self, metric: str) -> bool:
        """For a metric name with or without its val_/train_ prefix."""
        name = _bare(metric)
        if name == "loss":
            return False
        return next(m.higher_is_better for m in self.metrics if m.name == name)

    def direction(self, monitor: str) -> str:
        """Optuna's word for the monitor's direction."""
        return "maximize" if self.higher_is_better(monitor) else "minimize"

    def check_monitor(self, monitor: str) -> None:
        """Selection can only use what the task computes on the validation split."""
        known = [f"val_{m}" for m in self.metric_names]
        if monitor not in known:
            raise ConfigError(f"trainer.monitor={monitor} is not computed for the {self.name} task: "
                              f"use one of {', '.join(known)}")

    def targets(self, y: torch.Tensor) -> torch.Tensor:
        """Targets as the loss wants them: float [N, 1] (binary, 1-d regression), int64 [N] (multiclass)."""
        if self.name == "multiclass":
            return y.long().reshape(-1) if y.ndim == 2 and y.shape[1] == 1 else y.long()
        y = y.float()
        return y.unsqueeze(1) if y.ndim == 1 else y

    def num_outputs(self, target: torch.Tensor, num_classes: Optional[int]) -> int:
        """How many numbers the model must output per example, from one example's target."""
        if self.name == "binary":
            return 1
        if self.name == "multiclass":
            if num_classes is None:
                raise DataError("a multiclass data module needs a num_classes attribute (the number of classes)")
            return num_classes
        return max(1, target.numel())

    @property
    def classifies(self) -> bool:
        """Whether targets are class indices (binary: 0 or 1), so that class frequencies mean something."""
        return self.name in ("binary", "multiclass")

    def check_outputs(self, out: torch.Tensor, batch: int, num_outputs: int, model: str) -> None:
        """A model whose output does not fit the task stops before training, naming what it should be."""
        want = (batch, num_outputs)
        if tuple(out.shape) != want:
            raise ConfigError(
                f"{model} outputs shape {tuple(out.shape)} for a batch of {batch}, but the {self.name} task needs "
                f"{want}: give it num_outputs={num_outputs} (sweep passes num_outputs= when its constructor takes it)"
            )


def _mse(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(out.float(), y)


TASKS: dict[str, Task] = {
    "binary": Task("binary", F.binary_cross_entropy_with_logits,
                   (Metric("acc", True, _binary_correct),), "val_acc"),
    "multiclass": Task("multiclass", F.cross_entropy, (Metric("acc", True, _class_correct),), "val_acc"),
    "regression": Task("regression", _mse, (
        Metric("rmse", False, _squared_error, finish=math.sqrt, per_element=True),
        Metric("mae", False, _absolute_error, per_element=True),
    ), "val_rmse"),
}


def get_task(name: object) -> Task:
    """The task a data module names (a Task object is taken as it is)."""
    if isinstance(name, Task):
        return name
    if name not in TASKS:
        raise DataError(f"the data module's task is {name!r}: it must be one of {', '.join(TASKS)} "
                        "(its `task` attribute)")
    return TASKS[str(name)]


class Accumulator:
    """Sums of the loss and of each metric over batches; `compute()` gives {name: value}.

    The sums stay on the batches' device (float64; float32 on MPS, which has no float64), so that a
    GPU evaluation does not wait for a copy after every batch. With `count_classes`, classification
    targets are also counted per class (a bincount, which does wait): `majority()` is then the accuracy
    of always answering the most common class.
    """

    def __init__(self, task: Task, count_classes: bool = False) -> None:
        self.task = task
        self.count_classes = count_classes and task.classifies
        self.loss: Optional[torch.Tensor] = None
        self.sums: list[torch.Tensor] = []
        self.counts: Optional[torch.Tensor] = None
        self.examples = 0
        self.elements = 0

    @torch.no_grad()
    def update(self, out: torch.Tensor, y: torch.Tensor, loss: torch.Tensor | None = None) -> None:
        """Add one batch. `loss` is the batch's mean loss when the caller has it already."""
        n = len(y)
        dtype = torch.float32 if y.device.type == "mps" else torch.float64
        if self.loss is None:
            self.loss = torch.zeros((), dtype=dtype, device=y.device)
            self.sums = [torch.zeros((), dtype=dtype, device=y.device) for _ in self.task.metrics]
        if loss is None:
            loss = self.task.loss_fn(out.float(), y)
        self.loss = self.loss + loss.detach().to(dtype) * n
        for i, m in enumerate(self.task.metrics):
            self.sums[i] = self.sums[i] + m.total(out, y).to(dtype)
        if self.count_classes:
            counts = torch.bincount(y.reshape(-1).long())
            if self.counts is None:
                self.counts = counts
            else:
                size = max(len(self.counts), len(counts))
                self.counts = F.pad(self.counts, (0, size - len(self.counts))) + F.pad(counts, (0, size - len(counts)))
        self.examples += n
        self.elements += y.numel()

    def compute(self) -> dict[str, float]:
        loss = float(self.loss) if self.loss is not None else 0.0
        values = {"loss": loss / max(self.examples, 1)}
        for i, m in enumerate(self.task.metrics):
            total = float(self.sums[i]) if self.sums else 0.0
            values[m.name] = m.finish(total / max(self.elements if m.per_element else self.examples, 1))
        return values

    def majority(self) -> Optional[float]:
        """The fraction of the most common class among the targets seen (None for regression)."""
        if self.counts is None or self.examples == 0:
            return None
        return float(self.counts.max()) / self.examples


def _bare(metric: str) -> str:
    """A metric's name without its val_/train_ prefix."""
    return metric.split("_", 1)[1] if metric.startswith(("val_", "train_")) else metric


def metric_direction(monitor: str) -> Optional[str]:
    """Optuna's word for a monitored metric's direction, from its name alone (None for a name no task computes)."""
    name = _bare(monitor)
    for task in TASKS.values():
        if name in task.metric_names:
            return task.direction(name)
    return None


def expected_direction(cfg: Any) -> Optional[str]:
    """The direction sweep.train's objective is better in, for a composed config: its trainer.monitor's, or
    its data task's default monitor's. None where the config does not say (no trainer section, or a data
    module that names its task only when built)."""
    from omegaconf import OmegaConf

    if OmegaConf.select(cfg, "trainer") is None:
        return None
    monitor = OmegaConf.select(cfg, "trainer.monitor")
    if monitor is None:
        task = OmegaConf.select(cfg, "data.task", default=None)
        if task is None:
            task = _default_task(OmegaConf.select(cfg, "data._target_", default=None))
        if task not in TASKS:
            return None
        monitor = TASKS[task].default_monitor
    return metric_direction(str(monitor))


def _default_task(target: Optional[str]) -> Optional[str]:
    """A data class's task when the config leaves it out: its constructor's default, or its class attribute."""
    if not target:
        return None
    import inspect

    from hydra.utils import get_class

    try:
        cls = get_class(target)
    except Exception:  # an unimportable class is reported, with its fix, when the run is prepared
        return None
    param = inspect.signature(cls).parameters.get("task")
    if param is not None and isinstance(param.default, str):
        return param.default
    task = getattr(cls, "task", None)
    return task if isinstance(task, str) else None
