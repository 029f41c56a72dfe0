"""Whether autograd records a computation: the model adds and multiplies in place only where it does not."""

from __future__ import annotations

import torch


def tracked(*tensors: torch.Tensor) -> bool:
    """Whether autograd records operations on these (training): then no in-place arithmetic."""
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)
