from fractions import Fraction

import numpy as np
import pytest

from audiox_core.cues import SceneLook, cue_seed, measure, plan_cues, prompts
from audiox_core.errors import InputError, ModelError
from audiox_core.media.scenes import DetectorSettings, FrameCurves, scenes_from_cuts
from audiox_core.model.checkpoint import load_model
from audiox_core.settings import RunSettings


def test_measure_sees_motion_and_brightness() -> None:
    still = np.full((5, 8, 8, 3), 200, np.uint8)
    moving = np.random.default_rng(0).integers(0, 255, (5, 8, 8, 3), dtype=np.uint8)
    assert measure(still).motion == 0 and measure(still).brightness == 200
    assert measure(moving).motion > 50
    assert measure(still[:0]) == SceneLook(0.0, 0.0, 0.0)


def test_prompts_follow_the_picture() -> None:
    calm, busy = prompts(SceneLook(1, 200, 10)), prompts(SceneLook(40, 30, 10))
    assert "still" in calm["foley"] and "bright" in calm["foley"]
    assert "fast" in busy["foley"] and "dark" in busy["foley"] and calm["music"] != busy["music"]


def test_one_foley_and_one_music_cue_per_scene_with_distinct_reproducible_seeds() -> None:
    curves = FrameCurves(times=[Fraction(i, 25) for i in range(30)])
    scenes = scenes_from_cuts([10, 20], curves, Fraction(25), DetectorSettings()).scenes
    cues = plan_cues(scenes, [SceneLook(0, 100, 0)] * 3, run_seed=7)
    assert [(c.scene_index, c.kind) for c in cues] == [(i, k) for i in range(3) for k in ("foley", "music")]
    assert len({c.seed for c in cues}) == 6
    assert cues[3].seed == cue_seed(7, 1, "music") and cue_seed(8, 1, "music") != cue_seed(7, 1, "music")


def test_run_settings_reject_unknown_keys() -> None:
    assert RunSettings.from_dict({"steps": 3}).steps == 3
    with pytest.raises(InputError, match="unknown key.*stepz"):
        RunSettings.from_dict({"stepz": 3})


def test_demo_and_missing_model_are_clear_errors(tmp_path) -> None:
    with pytest.raises(ModelError, match="no trained demo model"):
        load_model("demo", device="cpu")
    with pytest.raises(ModelError, match="model folder not found"):
        load_model(str(tmp_path / "nowhere"), device="cpu")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelError, match="missing key model_type"):
        load_model(str(tmp_path), device="cpu")
