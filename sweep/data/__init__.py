"""Data modules: what `data._target_` names, built in or a user's own.

A data module is any class with
- `task`: "binary", "multiclass" or "regression" (or a sweep.tasks.Task);
- `train_dataset()`, `val_dataset()`, `test_dataset()`: each returns either in-memory tensors
  (a pair `(inputs, targets)` or a `TensorDataset` of two tensors: the fast path, batched by slicing)
  or any `torch.utils.data.Dataset` of `(input, target)` examples (loaded through a DataLoader, with
  `data.num_workers`, the module's own transforms and augmentation);
- optionally `num_classes` (multiclass; else the largest training label + 1).

sweep calls `train_dataset()` and `val_dataset()` before training and `test_dataset()` once, after
the best epoch is chosen, so a module builds its test split there and not in `__init__`.
Targets are class indices (binary: 0 or 1) or real numbers (regression, shape [N] or [N, k]).

The keys in LOADER_KEYS belong to sweep's loader, not to the module: they are taken out of `data`
before the module is instantiated with the rest.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

import torch

from sweep.errors import ConfigError, DataError

# The loader's settings, with their values when a data config leaves them out (a user's own, say).
LOADER_DEFAULTS = {"batch_size": 32, "shuffle": False, "num_workers": 0}
LOADER_KEYS = tuple(LOADER_DEFAULTS)
DATA_DIR_ENV = "SWEEP_DATA_DIR"


def data_root(root: Optional[str], name: str, fallback: Optional[Path] = None) -> Path:
    """Where dataset `name` lives: data.root, else $SWEEP_DATA_DIR/<name>, else `fallback` when it
    exists (Debian's Fashion-MNIST, say), else ./data/<name>.

    $SWEEP_DATA_DIR is a parent folder with one subfolder per dataset, so that one data group can never
    read another dataset's files. A download goes into this folder only when it is new or empty, and a
    failed one leaves nothing behind (sweep.data.download).
    """
    if root is not None:
        return Path(root).expanduser().resolve()
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser().resolve() / name
    if fallback is not None and fallback.is_dir():
        return fallback
    return Path("data").resolve() / name


def as_tensors(data: Any) -> Optional[tuple[torch.Tensor, torch.Tensor]]:
    """(inputs, targets) when a split is in memory; None for a Dataset to load through a DataLoader."""
    if isinstance(data, torch.utils.data.TensorDataset) and len(data.tensors) == 2:
        return data.tensors[0], data.tensors[1]
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        if len(data[0]) != len(data[1]):
            raise DataError(f"a split holds {len(data[0])} inputs but {len(data[1])} targets: they must match")
        return data[0], data[1]
    if isinstance(data, torch.utils.data.Dataset):
        return None
    raise DataError(f"a data module's split is a {type(data).__name__}: return (inputs, targets) tensors, a "
                    "TensorDataset or a torch.utils.data.Dataset")


def split_length(data: Any) -> int:
    pair = as_tensors(data)
    return len(pair[1]) if pair is not None else len(data)


def first_example(data: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """One (input, target) example, without the batch dimension."""
    pair = as_tensors(data)
    if pair is not None:
        return pair[0][0], pair[1][0]
    x, y = data[0]
    return torch.as_tensor(x), torch.as_tensor(y)


def int_at_least(key: str, value: object, low: int, high: Optional[int] = None) -> int:
    """A data config integer in [low, high], or a ConfigError naming the key and the range."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"data.{key}={value!r} is not an integer: give a whole number")
    if value < low or (high is not None and value > high):
        rule = f"at least {low}" if high is None else f"between {low} and {high}"
        raise ConfigError(f"data.{key}={value} is out of range: it must be {rule}")
    return value
