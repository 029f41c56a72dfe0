import numpy as np
import pytest
import torch

from audiox_core.model.generate import SamplingSettings
from audiox_core.model.longform import (
    SceneRequest,
    generate_scenes,
    join_windows,
    pack_passes,
    plan_windows,
)


def test_plan_windows_cover_with_overlap() -> None:
    w = plan_windows(37 * 100, 10 * 100, 2 * 100)
    assert w[0].start == 0 and w[-1].start + w[-1].length == 3700
    assert all(b.start == a.start + 800 for a, b in zip(w, w[1:]))
    assert (
        plan_windows(500, 1000, 200) == [plan_windows(500, 1000, 200)[0]]
        and plan_windows(500, 1000, 200)[0].length == 500
    )


def test_crossfade_gains_are_equal_power_at_every_sample() -> None:
    # Window k's gain alone: its part all ones, the others zero. Equal power: the squared gains sum to 1
    # at every sample (a linear fade dips to 0.5 mid-overlap), with a real fade, not a cut, in each overlap.
    windows = plan_windows(3100, 1000, 200)
    gains = torch.stack(
        [
            join_windows([torch.full((1, w.length), float(j == k)) for j, w in enumerate(windows)], windows, 3100)[0]
            for k in range(len(windows))
        ]
    )  # (window, sample)
    torch.testing.assert_close((gains**2).sum(0), torch.ones(3100), rtol=0, atol=1e-6)
    for before, after in zip(windows, windows[1:]):
        fade_in = gains[after.index, after.start : before.start + before.length]
        assert len(fade_in) == 200 and torch.all(fade_in[1:] > fade_in[:-1]), "fade-in rises over the whole overlap"
        assert fade_in[0] == 0 and fade_in[-1] == pytest.approx(1.0)


@pytest.mark.parametrize("seconds", [1.0, 10.0, 37.0])
def test_scene_lengths_exact_in_windows(tiny_model, seconds: float) -> None:
    frames = np.random.default_rng(0).integers(0, 255, (int(5 * seconds), 224, 224, 3), dtype=np.uint8)
    out = generate_scenes(tiny_model, [SceneRequest(frames, "rain", 1, seconds)], SamplingSettings(steps=2))[0]
    assert out.shape == (2, int(seconds * 44_100))
    assert torch.isfinite(out).all() and out.abs().max() > 0


def test_progress_moves_with_every_sampling_step_of_every_window(tiny_model) -> None:
    """Expected: a 1 s and a 25 s scene in one batch (three window passes at 3 steps each) report
    nine fractions, rising, the last 1.0; the progress bar moves within a batch, not only at its end."""
    frames = np.zeros((5 * 25, 224, 224, 3), np.uint8)
    seen: list[float] = []
    scenes = [SceneRequest(frames[:5], "rain", 1, 1.0), SceneRequest(frames, "wind", 2, 25.0)]
    generate_scenes(tiny_model, scenes, SamplingSettings(steps=3), on_step=seen.append)
    assert (
        len(seen) == 9 and seen == sorted(seen) and seen[-1] == pytest.approx(1.0) and seen[0] == pytest.approx(1 / 9)
    )


def test_packed_passes_stay_full_and_keep_each_scenes_windows_in_order() -> None:
    """Expected: scenes of 5, 1, 1, 1, 1 windows at 2 per pass take 5 passes (the long scene's
    windows beside the short scenes' first ones), where window k of each pair of scenes per pass
    would take 5 + 1 + 1 = 7; every window appears once, after the one before it; no pass is over 2."""
    depths = [5, 1, 1, 1, 1]
    passes = pack_passes(depths, 2)
    assert len(passes) == 5 and all(len(p) <= 2 for p in passes)
    assert sum(len(p) for p in passes) == sum(depths) == 9
    seen: dict[int, int] = {}
    for p in passes:
        for scene, k in p:
            assert seen.get(scene, -1) == k - 1  # the window before it came in an earlier pass
        for scene, k in p:
            seen[scene] = k
    assert passes[0] == [(0, 0), (1, 0)] and passes[1] == [(0, 1), (2, 0)]
    assert pack_passes(depths) == [[(0, 0), (1, 0), (2, 0), (3, 0), (4, 0)], [(0, 1)], [(0, 2)], [(0, 3)], [(0, 4)]]
    assert pack_passes([], 4) == []


@pytest.mark.integration  # slow for the quick subset: the full suite runs it
def test_packed_passes_give_the_same_bytes_every_time_and_the_scenes_own_sound(tiny_model) -> None:
    """Expected: a 25 s scene (three windows) packed into passes of two beside four 1 s scenes comes
    out bit for bit the same on a second call (a cue's key must always give the same bytes), every
    scene at its exact length; its first window matches the scene generated alone up to batched
    rounding (every draw is the request's own; the random-weight model amplifies rounding in later
    windows, so only the first is compared)."""
    frames = np.random.default_rng(3).integers(0, 255, (5 * 25, 224, 224, 3), dtype=np.uint8)
    long = SceneRequest(frames, "wind", 2, 25.0)
    shorts = [SceneRequest(frames[:5], "rain", 10 + i, 1.0) for i in range(4)]
    sampling = SamplingSettings(steps=2)
    packed = generate_scenes(tiny_model, [long, *shorts], sampling, batch_size=2)
    again = generate_scenes(tiny_model, [long, *shorts], sampling, batch_size=2)
    assert all(torch.equal(a, b) for a, b in zip(packed, again))
    assert [p.shape[1] for p in packed] == [25 * 44_100] + [44_100] * 4
    alone = generate_scenes(tiny_model, [long], sampling)[0]
    first = 8 * 44_100  # before the second window's crossfade
    scale = alone[:, :first].abs().max()
    assert (packed[0][:, :first] - alone[:, :first]).abs().max() <= 1e-3 * scale


@pytest.mark.integration  # slow for the quick subset: the full suite runs it
def test_preparing_the_next_pass_ahead_changes_no_byte(tiny_model) -> None:
    """Expected: with the next pass's video input made in the background thread (the CUDA default;
    forced here on the CPU), every scene is bit for bit what the passes give made one after another."""
    frames = np.random.default_rng(4).integers(0, 255, (5 * 25, 224, 224, 3), dtype=np.uint8)
    scenes = [SceneRequest(frames, "wind", 2, 25.0), *[SceneRequest(frames[:5], "rain", i, 1.0) for i in range(3)]]
    sampling = SamplingSettings(steps=2)
    ahead = generate_scenes(tiny_model, scenes, sampling, batch_size=2, prefetch=True)
    inline = generate_scenes(tiny_model, scenes, sampling, batch_size=2, prefetch=False)
    assert all(torch.equal(a, b) for a, b in zip(ahead, inline))
