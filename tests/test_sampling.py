import pytest
import torch

from audiox_core.model.sampling import SAMPLERS, NoiseSource, sigma_schedule


def test_sigma_schedule_is_log_linear_then_zero() -> None:
    s = sigma_schedule(5, 0.03, 500.0)
    assert len(s) == 6 and s[-1] == 0
    assert s[0].item() == pytest.approx(500.0) and s[-2].item() == pytest.approx(0.03)
    ratios = s[1:-1] / s[:-2]
    torch.testing.assert_close(ratios, ratios[0].expand_as(ratios))


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_samplers_recover_a_point_from_an_exact_denoiser(name: str) -> None:
    # With a denoiser that always returns the clean target, every sampler must end at the target.
    target = torch.randn(2, 4, 8, generator=torch.Generator().manual_seed(0))
    noise = NoiseSource([torch.Generator().manual_seed(i) for i in range(2)])
    sigmas = sigma_schedule(20, 0.03, 50.0)
    x = noise.like(target) * sigmas[0]
    out = SAMPLERS[name](lambda x, s: target, x, sigmas, noise=noise)
    torch.testing.assert_close(out, target)


def test_noise_source_is_per_item() -> None:
    a = NoiseSource([torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)]).like(torch.empty(2, 3))
    b = NoiseSource([torch.Generator().manual_seed(2)]).like(torch.empty(1, 3))
    torch.testing.assert_close(a[1:], b)
