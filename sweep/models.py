"""Built-in models: the seed's Pigeon MLP and a small CNN. Any other nn.Module is named by `model._target_`.

sweep passes `num_outputs=` and `input_shape=` (one example's shape, e.g. (1, 28, 28)) from the data
when a constructor takes them and the config does not set them. Arguments are checked here, with
messages of the form `num_hidden=0 is out of range: ...`, which sweep prefixes with the config key.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU, "leaky_relu": nn.LeakyReLU}


def _require(ok: bool, name: str, value: object, must: str) -> None:
    if not ok:
        raise ValueError(f"{name}={value} is out of range: it must be {must}")


def _activation(name: str) -> type[nn.Module]:
    if name not in ACTIVATIONS:
        raise ValueError(f"activation={name} is not supported: use one of {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]


class Pigeon(nn.Module):
    """Flatten, then num_layers hidden layers of num_hidden units, then a linear output.

    With one hidden layer and relu it is the seed's Pigeon(num_hidden), created in the same order, so
    the same seed gives the same weights. It flattens its input, so it also fits tabular features.
    """

    def __init__(self, num_hidden: int = 30, num_layers: int = 1, activation: str = "relu", dropout: float = 0.0,
                 num_outputs: int = 1, input_shape: Sequence[int] = (1, 28, 28)) -> None:
        super().__init__()
        _require(num_hidden >= 1, "num_hidden", num_hidden, "at least 1")
        _require(num_layers >= 1, "num_layers", num_layers, "at least 1")
        _require(0.0 <= dropout < 1.0, "dropout", dropout, "in [0, 1)")
        act = _activation(activation)
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(input_shape)
        for _ in range(num_layers):
            layers += [nn.Linear(width, num_hidden), act()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = num_hidden
        layers.append(nn.Linear(width, num_outputs))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SmallCNN(nn.Module):
    """Convolution blocks (conv, batch norm, ReLU, 2x2 max-pool), then one hidden linear layer.

    `channels` gives one block per entry; images smaller than 2**len(channels) pixels stop pooling.
    """

    def __init__(self, channels: Sequence[int] = (32, 64), kernel_size: int = 3, hidden: int = 128,
                 dropout: float = 0.0, batch_norm: bool = True, num_outputs: int = 10,
                 input_shape: Sequence[int] = (1, 28, 28)) -> None:
        super().__init__()
        _require(len(channels) >= 1 and all(c >= 1 for c in channels), "channels", list(channels),
                 "a non-empty list of positive widths")
        _require(kernel_size >= 1 and kernel_size % 2 == 1, "kernel_size", kernel_size, "an odd number, 1 or more")
        _require(hidden >= 1, "hidden", hidden, "at least 1")
        _require(0.0 <= dropout < 1.0, "dropout", dropout, "in [0, 1)")
        if len(input_shape) != 3:
            raise ValueError(f"input_shape={tuple(input_shape)} is not an image: SmallCNN needs (channels, height, "
                             "width); use model=pigeon for tabular data")
        c, h, w = input_shape
        blocks: list[nn.Module] = []
        for out in channels:
            blocks += [nn.Conv2d(c, out, kernel_size, padding=kernel_size // 2, bias=not batch_norm)]
            if batch_norm:
                blocks.append(nn.BatchNorm2d(out))
            blocks.append(nn.ReLU())
            if min(h, w) >= 2:
                blocks.append(nn.MaxPool2d(2))
                h, w = h // 2, w // 2
            c = out
        self.features = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, hidden), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(hidden, num_outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
