"""The shipped demo model: the default of a run, ≤ 30 MB, loaded strictly by the pipeline's loader,
with its card, and it makes sound (its quality is measured by bench/sync_eval.py, not here)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audiox_core.model.spec import DEMO_FOLDER, resolve_model_spec
from audiox_core.reel.settings import RunSettings

pytestmark = pytest.mark.skipif(
    not (DEMO_FOLDER / "model.safetensors").is_file(), reason=f"no demo model in {DEMO_FOLDER}"
)


def test_demo_is_the_default_model_unless_audiox_model_names_another(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AUDIOX_MODEL", raising=False)
    assert RunSettings().model == "demo"
    monkeypatch.setenv("AUDIOX_MODEL", "tiny")
    assert RunSettings().model == "tiny"


def test_the_demo_release_is_small_has_a_card_and_loads_strictly() -> None:
    from audiox_core.model.runtime import load_model

    spec = resolve_model_spec("demo")
    assert spec.kind == "demo" and not spec.random_weights
    assert spec.weights_path.stat().st_size <= 30 * 2**20
    card = (DEMO_FOLDER / "MODEL_CARD.md").read_text()
    assert "licence" in card and "seed" in card
    model = load_model("demo", device="cpu")
    assert "demo model" in model.label


def test_the_demo_model_makes_finite_audible_sound() -> None:
    from audiox_core.model.generate import SamplingSettings
    from audiox_core.model.longform import SceneRequest, generate_scenes
    from audiox_core.model.runtime import load_model
    from audiox_core.train.builder import ClipSpec, render_clip

    model = load_model("demo", device="cpu")
    size = model.config.video.clip.image_size
    clip = render_clip(ClipSpec("bounce", "heldout", seed=11, seconds=3.0))
    import cv2

    frames = np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in clip.frames])
    (audio,) = generate_scenes(model, [SceneRequest(frames, clip.caption, 0, 3.0)], SamplingSettings(steps=8))
    assert audio.shape == (2, 3 * model.config.sample_rate)
    assert torch.isfinite(audio).all() and 1e-3 < audio.abs().max() < 10
