"""SGD and Adam that leave torch._dynamo unimported.

torch.optim's Optimizer methods (the constructor, step, zero_grad, state_dict) import torch._dynamo on
first use, even in eager mode: about 1.5 s, which is most of a small job's start-up. These classes keep
the optimizer state themselves and call torch's own functional updates (torch.optim.sgd.sgd and
torch.optim.adam.adam), so every step is torch's arithmetic, bit for bit. state_dict() has torch.optim's
layout, so a checkpoint's optimizer state loads into torch.optim.SGD/Adam and back.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch
from torch.optim.adam import adam
from torch.optim.sgd import sgd


class Optimizer:
    """One parameter group, per-parameter state, and torch.optim's state_dict format."""

    def __init__(self, params: Iterable[torch.Tensor], defaults: dict[str, Any]) -> None:
        self.params = list(params)
        self.param_groups = [dict(defaults, params=self.params)]
        self.state: list[dict[str, torch.Tensor]] = [{} for _ in self.params]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    def _with_grad(self) -> list[int]:
        return [i for i, p in enumerate(self.params) if p.grad is not None]

    def state_dict(self) -> dict[str, Any]:
        group = {k: v for k, v in self.param_groups[0].items() if k != "params"}
        group["params"] = list(range(len(self.params)))
        return {"state": {i: dict(s) for i, s in enumerate(self.state) if s}, "param_groups": [group]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        groups = state_dict["param_groups"]
        if len(groups) != 1 or len(groups[0]["params"]) != len(self.params):
            raise ValueError("the optimizer state does not match this model's parameters")
        order = groups[0]["params"]  # torch.optim numbers parameters in group order
        self.state = [{} for _ in self.params]
        for slot, key in enumerate(order):
            saved = state_dict["state"].get(key, {})
            self.state[slot] = {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in saved.items()}
        self.param_groups[0]["lr"] = groups[0]["lr"]


class SGD(Optimizer):
    def __init__(self, params: Iterable[torch.Tensor], lr: float, momentum: float = 0.0,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params, {
            "lr": lr, "momentum": momentum, "dampening": 0.0, "weight_decay": weight_decay,
            "nesterov": False, "maximize": False, "foreach": None, "differentiable": False, "fused": None,
        })

    @torch.no_grad()
    def step(self) -> None:
        group = self.param_groups[0]
        live = self._with_grad()
        buffers = [self.state[i].get("momentum_buffer") for i in live]
        sgd([self.params[i] for i in live], [self.params[i].grad for i in live], buffers,
            weight_decay=group["weight_decay"], momentum=group["momentum"], lr=group["lr"],
            dampening=group["dampening"], nesterov=group["nesterov"], maximize=group["maximize"],
            foreach=group["foreach"], fused=group["fused"])
        if group["momentum"] != 0:
            for i, buf in zip(live, buffers):
                self.state[i]["momentum_buffer"] = buf


class Adam(Optimizer):
    def __init__(self, params: Iterable[torch.Tensor], lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        super().__init__(params, {
            "lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay, "amsgrad": False,
            "maximize": False, "foreach": None, "capturable": False, "differentiable": False, "fused": None,
            "decoupled_weight_decay": False,
        })

    @torch.no_grad()
    def step(self) -> None:
        group = self.param_groups[0]
        live = self._with_grad()
        for i in live:
            if not self.state[i]:
                p = self.params[i]
                self.state[i] = {"step": torch.tensor(0.0, dtype=torch.float32),
                                 "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                                 "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format)}
        states = [self.state[i] for i in live]
        beta1, beta2 = group["betas"]
        adam([self.params[i] for i in live], [self.params[i].grad for i in live],
             [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states], [], [s["step"] for s in states],
             amsgrad=False, beta1=beta1, beta2=beta2, lr=group["lr"], weight_decay=group["weight_decay"],
             eps=group["eps"], maximize=False, foreach=group["foreach"], capturable=False,
             differentiable=False, fused=group["fused"])
