import math

import numpy as np
import pytest
import torch

from audiox_core.model.generate import SamplingSettings
from audiox_core.model.longform import (
    SceneRequest,
    generate_scenes,
    join_windows,
    plan_windows,
)


def test_plan_windows_cover_with_overlap() -> None:
    w = plan_windows(37 * 100, 10 * 100, 2 * 100)
    assert w[0].start == 0 and w[-1].start + w[-1].length == 3700
    assert all(b.start == a.start + 800 for a, b in zip(w, w[1:]))
    assert plan_windows(500, 1000, 200) == [plan_windows(500, 1000, 200)[0]] and plan_windows(500, 1000, 200)[0].length == 500


def test_equal_power_join_of_constant_windows_is_flat_in_power() -> None:
    windows = plan_windows(3000, 1000, 200)
    parts = [torch.ones(1, w.length) for w in windows]
    out = join_windows(parts, windows, 3000)
    assert out.shape == (1, 3000)
    # sin + cos over an overlap: amplitude between 1 and √2, exactly 1 outside overlaps
    assert torch.all(out >= 1 - 1e-6) and torch.all(out <= math.sqrt(2) + 1e-6)
    assert out[0, 500] == 1


@pytest.mark.parametrize("seconds", [1.0, 10.0, 37.0])
def test_scene_lengths_exact_in_windows(tiny_model, seconds: float) -> None:
    frames = np.random.default_rng(0).integers(0, 255, (int(5 * seconds), 224, 224, 3), dtype=np.uint8)
    out = generate_scenes(tiny_model, [SceneRequest(frames, "rain", 1, seconds)], SamplingSettings(steps=2))[0]
    assert out.shape == (2, int(seconds * 44_100))
    assert torch.isfinite(out).all() and out.abs().max() > 0
