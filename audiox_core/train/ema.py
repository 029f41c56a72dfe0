"""Exponential moving average of the trained weights, with the usual warm-up: what ships is the average."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn


class EMA:
    """The average of named parameters; ``update`` after each optimiser step, ``copy_to`` to ship it."""

    def __init__(self, params: Iterable[tuple[str, nn.Parameter]], decay: float) -> None:
        self.params = dict(params)
        self.decay = decay
        self.updates = 0
        self.shadow = {name: p.detach().float().clone() for name, p in self.params.items()}

    def rate(self) -> float:
        """The decay the next update uses, min(decay, (1 + n) / (10 + n)) after n updates: early in a run the
        average follows the weights instead of remembering the random initialisation."""
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self) -> None:
        d = self.rate()
        for name, p in self.params.items():
            self.shadow[name].mul_(d).add_(p.detach().float(), alpha=1 - d)
        self.updates += 1

    @torch.no_grad()
    def copy_to(self, module: nn.Module) -> None:
        """Write the average into ``module``'s parameters of the same names."""
        params = dict(module.named_parameters())
        for name, value in self.shadow.items():
            params[name].copy_(value)

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "updates": self.updates, "shadow": self.shadow}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.decay, self.updates = state["decay"], state["updates"]
        self.shadow = {name: value.float().clone() for name, value in state["shadow"].items()}
