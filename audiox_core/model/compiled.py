"""The DiT under ``torch.compile`` on CUDA, compiled once per process and padded batch shape, eager as the fallback."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch

from audiox_core.environment import env_text

log = logging.getLogger(__name__)

BATCH_SIZES = (1, 2, 4, 8, 16, 32)  # batches are padded up to one of these: one compile per shape, so few shapes
Compiler = Callable[[Callable[..., torch.Tensor]], Callable[..., torch.Tensor]]


def compile_wanted(device: torch.device) -> bool:
    """Compile on CUDA unless ``AUDIOX_COMPILE=0``; never on the CPU (the small models gain nothing there and
    the first call would pay for a C++ build)."""
    return device.type == "cuda" and env_text("AUDIOX_COMPILE", "1") != "0"


def padded_size(n: int) -> int:
    """The fixed batch size a batch of ``n`` requests is padded to (n itself past the largest)."""
    return next((size for size in BATCH_SIZES if size >= n), n)


def _inductor(fn: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    return torch.compile(fn, dynamic=False)


class CompiledForward:
    """A DiT pass that runs compiled until compilation fails once, then eager."""

    def __init__(self, eager: Callable[..., torch.Tensor], compiler: Compiler = _inductor) -> None:
        self.eager = eager
        self.failure: str | None = None
        self.shapes: set[tuple[int, ...]] = set()  # input shapes compiled so far (one compile each)
        try:
            self._compiled: Callable[..., torch.Tensor] | None = compiler(eager)
        except Exception as exc:  # noqa: BLE001 - any failure means: run eager
            self._give_up(exc)
            self._compiled = None

    def _give_up(self, exc: BaseException) -> None:
        self.failure = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        log.warning("torch.compile of the DiT failed (%s); the DiT runs eager in this process", self.failure)

    def __call__(self, x: torch.Tensor, *args: Any) -> torch.Tensor:
        if self._compiled is None:
            return self.eager(x, *args)
        try:
            out = self._compiled(x, *args)
        except Exception as exc:  # noqa: BLE001 - compilation happens at the first call of a shape
            self._give_up(exc)
            self._compiled = None
            return self.eager(x, *args)
        self.shapes.add(tuple(x.shape))
        return out

    @property
    def active(self) -> bool:
        return self._compiled is not None


def compile_dit(dit: torch.nn.Module, compiler: Compiler = _inductor) -> CompiledForward:
    """Route ``dit.forward_once`` (the one DiT pass every sampling step makes) through the compiler."""
    wrapped = CompiledForward(dit.forward_once, compiler)
    dit.forward_once = wrapped  # type: ignore[method-assign]
    return wrapped
