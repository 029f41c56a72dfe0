"""The DiT under ``torch.compile`` on CUDA: compiled once per process and batch shape, eager as the
fallback.

On an H200 the compiled DiT ran at 65 % of the card's bf16 rate against 33 % eager (bench/
model_bench.py). Compilation happens on the first call for each input shape, so generation batches
are padded to a few fixed sizes (``BATCH_SIZES``): a reel of any length meets at most that many
shapes per window length. Where compilation or a compiled call fails (no Triton, an unsupported
op, a driver problem), the failure is logged once in one line and the DiT runs eager for the rest
of the process: slower, never wrong. ``AUDIOX_COMPILE=0`` keeps it eager; CPU runs are never
compiled (the tiny and demo models gain nothing there, and the first call would pay for a C++
build)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch

from audiox_core.environment import env_text

log = logging.getLogger(__name__)

BATCH_SIZES = (1, 2, 4, 8, 16, 32)  # generation batches are padded up to one of these
Compiler = Callable[[Callable[..., torch.Tensor]], Callable[..., torch.Tensor]]


def compile_wanted(device: torch.device) -> bool:
    """Compile on CUDA unless ``AUDIOX_COMPILE=0``."""
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
