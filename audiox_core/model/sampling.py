"""Diffusion samplers as pure functions ``sample(denoise, x, sigmas, *, noise, callback)``, chosen by name;
written from the papers (Karras et al. 2022; Lu et al. 2022, DPM-Solver++)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence

import torch
from torch import Tensor

Denoiser = Callable[[Tensor, Tensor], Tensor]  # (x, σ) → the model's estimate of the clean latent
StepCallback = Callable[[int, int], None]


class NoiseSource:
    """Gaussian noise drawn per batch item from that item's own generator (batch of N == N single calls)."""

    def __init__(self, generators: Sequence[torch.Generator]) -> None:
        self.generators = list(generators)

    def draw(
        self, item_shape: tuple[int, ...], device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
    ) -> Tensor:
        """(B, *item_shape): item b from generator b, drawn on the CPU so every device gets the same numbers."""
        draws = [torch.randn(item_shape, generator=g, dtype=torch.float32) for g in self.generators]
        return torch.stack(draws).to(device=device, dtype=dtype)

    def like(self, x: Tensor) -> Tensor:
        assert x.shape[0] == len(self.generators), f"{x.shape=} {len(self.generators)=}"
        return self.draw(tuple(x.shape[1:]), x.device, x.dtype)


def sigma_schedule(steps: int, sigma_min: float, sigma_max: float) -> Tensor:
    """Log-linear σ from σ_max to σ_min over ``steps``, then 0 (polyexponential with ρ = 1)."""
    if steps < 1:
        raise ValueError(f"steps must be ≥ 1, got {steps}")
    if not 0 < sigma_min < sigma_max:
        raise ValueError(f"need 0 < sigma_min < sigma_max, got {sigma_min}, {sigma_max}")
    ramp = torch.linspace(1, 0, steps, dtype=torch.float64)
    sigmas = torch.exp(ramp * (math.log(sigma_max) - math.log(sigma_min)) + math.log(sigma_min))
    return torch.cat((sigmas, sigmas.new_zeros(1))).float()


def _steps(sigmas: Tensor, callback: StepCallback | None) -> Iterator[int]:
    """The step indices 0 … n − 1 (n = len(sigmas) − 1); ``callback(i + 1, n)`` once step i has run."""
    n = len(sigmas) - 1
    for i in range(n):
        yield i
        if callback:
            callback(i + 1, n)


def _log_sigma_steps(sigmas: Tensor, callback: StepCallback | None) -> Iterator[tuple[int, Tensor | None]]:
    """``_steps`` with each step's size in log-σ time, h = log(σ_i / σ_{i+1}), where the DPM-Solver++
    updates are written; None for the step to σ = 0, which lands on the denoised estimate."""
    for i in _steps(sigmas, callback):
        yield i, None if sigmas[i + 1] == 0 else torch.log(sigmas[i] / sigmas[i + 1])


def sample_euler(
    denoise: Denoiser, x: Tensor, sigmas: Tensor, *, noise: NoiseSource, callback: StepCallback | None = None
) -> Tensor:
    """Euler steps along the probability-flow ODE; ``sigmas`` run from σ_max down to 0."""
    for i in _steps(sigmas, callback):
        denoised = denoise(x, sigmas[i])
        x = x + (x - denoised) / sigmas[i] * (sigmas[i + 1] - sigmas[i])
    return x


def sample_dpmpp_2m(
    denoise: Denoiser, x: Tensor, sigmas: Tensor, *, noise: NoiseSource, callback: StepCallback | None = None
) -> Tensor:
    """DPM-Solver++(2M): a second-order multistep update in log-σ time."""
    previous: Tensor | None = None
    for i, h in _log_sigma_steps(sigmas, callback):
        denoised = denoise(x, sigmas[i])
        if h is None:
            x = denoised
        else:
            estimate = denoised
            if previous is not None:
                r = torch.log(sigmas[i - 1] / sigmas[i]) / h
                estimate = (1 + 1 / (2 * r)) * denoised - (1 / (2 * r)) * previous
            x = (sigmas[i + 1] / sigmas[i]) * x - torch.expm1(-h) * estimate
        previous = denoised
    return x


def sample_dpmpp_3m_sde(
    denoise: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    noise: NoiseSource,
    callback: StepCallback | None = None,
    eta: float = 1.0,
) -> Tensor:
    """DPM-Solver++(3M) SDE, the AudioX default (η = 1): third-order multistep with fresh noise per step."""
    d_1 = d_2 = h_1 = h_2 = None
    for i, h in _log_sigma_steps(sigmas, callback):
        denoised = denoise(x, sigmas[i])
        if h is None:
            x = denoised
        else:
            h_eta = h * (eta + 1)
            x = torch.exp(-h_eta) * x - torch.expm1(-h_eta) * denoised
            phi_2 = torch.expm1(-h_eta) / h_eta + 1
            if h_2 is not None:
                r0, r1 = h_1 / h, h_2 / h
                d1_0 = (denoised - d_1) / r0
                d1_1 = (d_1 - d_2) / r1
                d1 = d1_0 + (d1_0 - d1_1) * r0 / (r0 + r1)
                d2 = (d1_0 - d1_1) / (r0 + r1)
                x = x + phi_2 * d1 - (phi_2 / h_eta - 0.5) * d2
            elif h_1 is not None:
                x = x + phi_2 * (denoised - d_1) / (h_1 / h)
            if eta:
                x = x + noise.like(x) * sigmas[i + 1] * torch.sqrt(-torch.expm1(-2 * h * eta))
            h_1, h_2 = h, h_1
        d_1, d_2 = denoised, d_1
    return x


SAMPLERS = {
    "dpmpp-3m-sde": sample_dpmpp_3m_sde,
    "dpmpp-2m": sample_dpmpp_2m,
    "euler": sample_euler,
}


def get_sampler(name: str):
    """The sampler called ``name``; ValueError lists the known ones."""
    try:
        return SAMPLERS[name]
    except KeyError:
        raise ValueError(f"unknown sampler {name!r} (known: {', '.join(SAMPLERS)})") from None
