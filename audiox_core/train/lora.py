"""LoRA adapters on the DiT's attention and feed-forward projections (Hu et al. 2021), merged back before saving."""

from __future__ import annotations

import math

import torch
from torch import nn

from audiox_core.model.dit import DiffusionTransformer


class LoRALinear(nn.Module):
    """A frozen base ``nn.Linear`` plus scale·B·A (B starts at zero: a fresh adapter changes nothing)."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float) -> None:
        super().__init__()
        self.base = base.requires_grad_(False)
        self.lora_a = nn.Parameter(torch.empty(rank, base.in_features))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))
        self.scale = alpha / rank

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (x @ self.lora_a.T @ self.lora_b.T) * self.scale

    def merged(self) -> nn.Linear:
        out = nn.Linear(self.base.in_features, self.base.out_features, bias=self.base.bias is not None)
        with torch.no_grad():
            out.weight.copy_(self.base.weight + self.scale * self.lora_b @ self.lora_a)
            if self.base.bias is not None:
                out.bias.copy_(self.base.bias)
        return out


def _targets(dit: DiffusionTransformer) -> list[tuple[nn.Module, str]]:
    """(parent, attribute) of every adapted linear: self- and cross-attention projections, SwiGLU and output."""
    found = []
    for block in dit.transformer.layers:
        found += [(block.self_attn, "to_qkv"), (block.self_attn, "to_out")]
        found += [(block.cross_attn, "to_q"), (block.cross_attn, "to_kv"), (block.cross_attn, "to_out")]
        found += [(block.ff.ff[0], "proj"), (block.ff.ff, "2")]
    return found


def add_lora(dit: DiffusionTransformer, rank: int, alpha: float) -> list[nn.Parameter]:
    """Freeze ``dit`` and wrap its attention and feed-forward linears; returns the adapter parameters."""
    dit.requires_grad_(False)
    params = []
    for parent, name in _targets(dit):
        wrapped = LoRALinear(getattr(parent, name), rank, alpha)
        setattr(parent, name, wrapped) if not name.isdigit() else parent.__setitem__(int(name), wrapped)
        params += [wrapped.lora_a, wrapped.lora_b]
    return params


def merge_lora(module: nn.Module) -> None:
    """Replace every LoRALinear inside ``module`` by its merged nn.Linear, so the saved state dict has exactly
    the official keys and shapes."""
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, LoRALinear):
                setattr(parent, name, child.merged())
