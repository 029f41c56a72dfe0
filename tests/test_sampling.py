"""Our samplers step for step against k-diffusion's, on data whose exact denoiser has a closed form.

For data x₀ ~ N(μ, s²) per dimension and x = x₀ + σ·ε, the exact denoiser is
E[x₀ | x] = (s²·x + σ²·μ) / (s² + σ²). Unlike a denoiser that returns a fixed target, it depends on
x and σ, so a wrong intermediate update changes every later step and the result: the whole
trajectory (the x each denoiser call sees, then the output) must equal the reference's.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from collections.abc import Callable

import pytest
import torch

from audiox_core.model.sampling import SAMPLERS, Denoiser, NoiseSource, sigma_schedule


def load_k_diffusion_sampling() -> types.ModuleType:
    """k_diffusion/sampling.py as installed, loaded without the k_diffusion package's ``__init__``.

    That ``__init__`` imports k-diffusion's training and evaluation modules (kornia, clean-fid, CLIP,
    wandb), and its utils.py imports torchvision for image helpers: none of it is installed
    (scripts/setup.sh installs k-diffusion with --no-deps). sampling.py takes only ``append_dims``
    from utils, so it is loaded under a private parent package whose utils holds just that.
    """
    spec = importlib.util.find_spec("k_diffusion")  # locates the package without running __init__
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("k-diffusion is not installed: run bash scripts/setup.sh")
    parent, utils = types.ModuleType("_k_diffusion_reference"), types.ModuleType("_k_diffusion_reference.utils")
    parent.__path__ = list(spec.submodule_search_locations)
    utils.append_dims = lambda x, target_dims: x.reshape(*x.shape, *(1,) * (target_dims - x.ndim))
    sys.modules.update({parent.__name__: parent, utils.__name__: utils})
    path = f"{spec.submodule_search_locations[0]}/sampling.py"
    sampling_spec = importlib.util.spec_from_file_location(f"{parent.__name__}.sampling", path)
    module = importlib.util.module_from_spec(sampling_spec)
    sampling_spec.loader.exec_module(module)
    return module


K = load_k_diffusion_sampling()
# Our name → k-diffusion's sampler with the same settings (AudioX's dpmpp-3m-sde runs at η = 1).
REFERENCE: dict[str, Callable[..., torch.Tensor]] = {
    "euler": lambda d, x, sigmas, noise_sampler: K.sample_euler(d, x, sigmas, disable=True),
    "dpmpp-2m": lambda d, x, sigmas, noise_sampler: K.sample_dpmpp_2m(d, x, sigmas, disable=True),
    "dpmpp-3m-sde": lambda d, x, sigmas, noise_sampler: K.sample_dpmpp_3m_sde(
        d, x, sigmas, disable=True, eta=1.0, noise_sampler=noise_sampler
    ),
}

# Gaussian data per dimension of a (2, 8) item; float64 so that only a different update, not rounding, shows.
MU = torch.linspace(-1.5, 2.0, 16, dtype=torch.float64).reshape(2, 8)
S = torch.linspace(0.2, 1.3, 16, dtype=torch.float64).reshape(2, 8)


def gaussian_denoiser(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """E[x₀ | x] for x₀ ~ N(MU, S²): σ a scalar (ours) or one per batch item (k-diffusion)."""
    sigma = sigma.reshape(-1, *(1,) * (x.ndim - 1))
    return (S**2 * x + sigma**2 * MU) / (S**2 + sigma**2)


def trajectory(run: Callable[[Denoiser], torch.Tensor]) -> list[torch.Tensor]:
    """The x that each denoiser call of ``run`` sees, then ``run``'s output."""
    seen: list[torch.Tensor] = []

    def denoise(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        seen.append(x.clone())
        return gaussian_denoiser(x, sigma)

    out = run(denoise)
    return [*seen, out]


class RecordingNoise(NoiseSource):
    """Our noise source, keeping every draw so that k-diffusion's noise sampler can return the same ones."""

    def __init__(self, generators: list[torch.Generator]) -> None:
        super().__init__(generators)
        self.draws: list[torch.Tensor] = []

    def like(self, x: torch.Tensor) -> torch.Tensor:
        draw = super().like(x)
        self.draws.append(draw)
        return draw


class Replay:
    """A k-diffusion noise sampler that returns given draws in order."""

    def __init__(self, draws: list[torch.Tensor]) -> None:
        self.left = list(draws)

    def __call__(self, sigma: torch.Tensor, sigma_next: torch.Tensor) -> torch.Tensor:
        assert self.left, "k-diffusion drew more noise than our sampler"
        return self.left.pop(0)


def test_sigma_schedule_is_log_linear_then_zero() -> None:
    s = sigma_schedule(5, 0.03, 500.0)
    assert len(s) == 6 and s[-1] == 0
    assert s[0].item() == pytest.approx(500.0) and s[-2].item() == pytest.approx(0.03)
    ratios = s[1:-1] / s[:-2]
    torch.testing.assert_close(ratios, ratios[0].expand_as(ratios))


def test_every_sampler_has_a_k_diffusion_reference() -> None:
    assert sorted(REFERENCE) == sorted(SAMPLERS)


# 3 steps: the first-order start, one multistep update and the final σ = 0 step; 25 reach third order.
@pytest.mark.parametrize("steps", [3, 25])
@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_sampler_trajectory_equals_k_diffusion_on_gaussian_data(name: str, steps: int) -> None:
    sigmas = sigma_schedule(steps, 0.03, 500.0).double()  # the official σ range; ours ends with σ = 0
    noise = RecordingNoise([torch.Generator().manual_seed(i) for i in range(3)])
    x_start = noise.draw((2, 8), dtype=torch.float64) * sigmas[0]
    ours = trajectory(lambda denoise: SAMPLERS[name](denoise, x_start.clone(), sigmas, noise=noise))
    replay = Replay(noise.draws)
    reference = trajectory(lambda denoise: REFERENCE[name](denoise, x_start.clone(), sigmas, replay))
    assert not replay.left, f"k-diffusion drew {len(replay.left)} fewer noise tensors than our sampler"
    assert len(ours) == len(reference) == steps + 1
    for i, (a, b) in enumerate(zip(ours, reference)):
        message = f"{name}, {steps} steps, x at step {i}"
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10, msg=lambda m, message=message: f"{message}: {m}")


def test_noise_source_is_per_item() -> None:
    a = NoiseSource([torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)]).like(torch.empty(2, 3))
    b = NoiseSource([torch.Generator().manual_seed(2)]).like(torch.empty(1, 3))
    torch.testing.assert_close(a[1:], b)
