"""The epoch loop, evaluation and selection: pure computation on the run's device, no file I/O.

Batches come from a `Loader`: slices of in-memory tensors moved to the device once (the fast path), or
a DataLoader over any Dataset. Either way, everything random in an epoch derives from (seed, epoch)
(and the worker, for DataLoader workers), so a resumed run sees the same batches.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterator, Optional

import torch
from torch import nn

from sweep.data import as_tensors, split_length
from sweep.device import Compute
from sweep.errors import TrainingDiverged, UserError
from sweep.tasks import Accumulator, Task

EVAL_BATCH = 1024  # evaluation batches (at least the training batch size): no gradients, so larger


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The shuffling generator of one epoch: a function of (seed, epoch) alone."""
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


class Loader:
    """The batches of one split, on the run's device, in the task's target format."""

    def __init__(self, data: Any, task: Task, batch_size: int, shuffle: bool, num_workers: int, seed: int,
                 compute: Compute) -> None:
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.device = compute.device
        self.num_workers = num_workers
        self.task = task
        # The accuracy of always answering the split's most common class (classification only), known
        # after the split's first evaluation: it needs a pass over the targets, which evaluation makes.
        self.majority: Optional[float] = None
        pair = as_tensors(data)
        self.n = split_length(data)
        if pair is not None:
            self.tensors: Optional[tuple[torch.Tensor, torch.Tensor]] = (
                pair[0].to(self.device), task.targets(pair[1]).to(self.device))
            self.dataset = None
        else:
            self.tensors, self.dataset = None, data

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def head(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The first n examples as one batch on the device, read in this process (no DataLoader workers):
        what a model is tried on before a run starts."""
        if self.tensors is not None:
            x, y = self.tensors
            return x[:n], y[:n]
        xb, yb = torch.utils.data.default_collate([self.dataset[i] for i in range(min(n, self.n))])
        return xb.to(self.device), self.task.targets(torch.as_tensor(yb)).to(self.device)

    def batches(self, epoch: int, batch_size: Optional[int] = None, shuffle: Optional[bool] = None,
                ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One pass; the last batch may be smaller. Shuffled (if at all) by epoch_generator(seed, epoch)."""
        size = batch_size or self.batch_size
        shuffle = self.shuffle if shuffle is None else shuffle
        if self.tensors is not None:
            x, y = self.tensors
            order = torch.randperm(self.n, generator=epoch_generator(self.seed, epoch)) if shuffle else None
            if order is not None:
                order = order.to(self.device)
            for start in range(0, self.n, size):
                if order is None:
                    yield x[start : start + size], y[start : start + size]
                else:
                    idx = order[start : start + size]
                    yield x[idx], y[idx]
            return
        loader = torch.utils.data.DataLoader(
            self.dataset, batch_size=size, shuffle=shuffle, num_workers=self.num_workers,
            generator=epoch_generator(self.seed, epoch),  # also seeds each worker: (seed, epoch, worker)
            pin_memory=self.device.type == "cuda", persistent_workers=False)
        try:
            for xb, yb in loader:
                yield (xb.to(self.device, non_blocking=True),
                       self.task.targets(torch.as_tensor(yb)).to(self.device, non_blocking=True))
        except UserError as e:  # from a worker process, torch adds the worker's traceback: keep our line
            lines = str(e).strip().splitlines()
            if len(lines) <= 1:
                raise
            raise type(e)(lines[-1].split(": ", 1)[-1]) from None


@torch.no_grad()
def evaluate(model: nn.Module, loader: Loader, compute: Compute, with_loss: bool = True) -> dict[str, float]:
    """The loss and every metric of the task over a whole split, in eval mode, without shuffling."""
    was_training = model.training
    model.eval()
    acc = Accumulator(loader.task, count_classes=loader.majority is None)  # the targets' classes: once
    for x, y in loader.batches(0, batch_size=max(EVAL_BATCH, loader.batch_size), shuffle=False):
        with compute.autocast():
            out = model(x)
        acc.update(out.float(), y, loss=None if with_loss else torch.zeros(()))
    model.train(was_training)
    if loader.majority is None:
        loader.majority = acc.majority()
    values = acc.compute()
    if not with_loss:
        values["loss"] = math.nan
    return values


def train_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, loader: Loader, compute: Compute, epoch: int,
                scheduler: Optional[Any] = None,
                on_iteration: Optional[Callable[[int, float], None]] = None,
                running: Optional[Accumulator] = None) -> float:
    """One pass over the training split; returns the mean loss per example.

    `scheduler` is stepped after every iteration (a per-iteration schedule); `on_iteration(i, loss)` is
    called after step i (from 1); `running` accumulates the metrics of the training batches as they go.
    """
    model.train()
    task = loader.task
    dtype = torch.float32 if compute.device.type == "mps" else torch.float64
    total = torch.zeros((), dtype=dtype, device=compute.device)
    scaler = compute.scaler
    for i, (x, y) in enumerate(loader.batches(epoch)):
        with compute.autocast():
            out = model(x)
            loss = task.loss_fn(out.float(), y)
        optimizer.zero_grad(set_to_none=True)
        if scaler is None:
            loss.backward()
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        if scheduler is not None:
            scheduler.step()
        batch_loss = loss.detach()
        total += batch_loss.to(dtype) * len(y)
        if running is not None:
            running.update(out.detach().float(), y, loss=batch_loss)
        if on_iteration is not None:
            on_iteration(i + 1, batch_loss.item())
    return float(total) / loader.n


def is_better(value: float, incumbent: Optional[float], higher_is_better: bool) -> bool:
    """Strictly better, so that ties keep the earlier epoch; a non-finite value is never better."""
    if not math.isfinite(value):
        return False
    if incumbent is None:
        return True
    return value > incumbent if higher_is_better else value < incumbent


def select_best_epoch(history: list[dict], monitor: str, higher_is_better: bool) -> int:
    """The epoch (from 1) with the best validation metric. History rows never hold test numbers."""
    best: Optional[dict] = None
    for row in history:
        if is_better(row[monitor], None if best is None else best[monitor], higher_is_better):
            best = row
    if best is None:
        raise TrainingDiverged(f"no epoch has a finite {monitor}")
    return int(best["epoch"])
