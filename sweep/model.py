"""The seed's Pigeon MLP, generalised to depth, width, activation and dropout."""

from __future__ import annotations

import torch
from torch import nn
from omegaconf import DictConfig

ACTIVATION = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU, "leaky_relu": nn.LeakyReLU}


class Pigeon(nn.Module):
    """Flatten, then num_layers hidden layers of num_hidden units, then a linear output.

    With one hidden layer and relu it is the seed's Pigeon(num_hidden), created in the same order.
    """

    def __init__(self, num_hidden: int = 30, num_layers: int = 1, num_outputs: int = 1,
                 activation: str = "relu", dropout: float = 0.0, num_inputs: int = 28 * 28) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = num_inputs
        for _ in range(num_layers):
            layers += [nn.Linear(width, num_hidden), ACTIVATION[activation]()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = num_hidden
        layers.append(nn.Linear(width, num_outputs))
        self.net = nn.Sequential(*layers)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return self.net(img)


def build_model(cfg: DictConfig, num_outputs: int) -> Pigeon:
    return Pigeon(cfg.num_hidden, cfg.num_layers, num_outputs, cfg.activation, cfg.dropout)
