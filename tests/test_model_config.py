import json

import pytest
from conftest import AUDIOX_FACTS, needs_audiox_facts

from audiox_core.model.checkpoint import PRESETS, manifest
from audiox_core.model.config import AudioXConfig, encoded_length


@needs_audiox_facts
def test_base_config_manifest_equals_official_keys() -> None:
    cfg = AudioXConfig.from_json(AUDIOX_FACTS / "config_base.json")
    expected = json.loads((AUDIOX_FACTS / "keys_base.json").read_text())
    got = manifest(cfg)
    assert got == expected
    assert list(got) == list(expected)  # state-dict order too


@needs_audiox_facts
def test_base_config_official_geometry() -> None:
    cfg = AudioXConfig.from_json(AUDIOX_FACTS / "config_base.json")
    assert cfg.latent_frames == 236 and cfg.window_samples == 483_328
    assert cfg.n_cond_tokens == 471
    assert cfg.video.n_frames == 50 and cfg.video.clip.tokens_per_frame == 50
    assert (cfg.dit.kv_heads, cfg.dit.rotary_dim) == (12, 32)


def test_tiny_preset_keeps_official_timing() -> None:
    cfg = AudioXConfig.from_json(PRESETS / "tiny.json")
    assert cfg.window_samples == 483_328 and cfg.video.n_frames == 50
    assert cfg.text.kind == "byte-t5"


def test_encoded_length_matches_the_official_prompt() -> None:
    assert encoded_length(441_000, (2, 4, 4, 8, 8)) == 215
    assert encoded_length(1720, (2, 4)) == 215


def _tiny_raw() -> dict:
    return json.loads((PRESETS / "tiny.json").read_text())


def test_unknown_type_names_the_key() -> None:
    raw = _tiny_raw()
    raw["model"]["diffusion"]["type"] = "unet"
    with pytest.raises(ValueError, match=r"model\.diffusion\.type"):
        AudioXConfig.from_dict(raw)


def test_missing_key_is_named() -> None:
    raw = _tiny_raw()
    del raw["model"]["diffusion"]["config"]["embed_dim"]
    with pytest.raises(ValueError, match=r"model\.diffusion\.config\.embed_dim"):
        AudioXConfig.from_dict(raw)


def test_other_model_type_rejected() -> None:
    raw = _tiny_raw()
    raw["model_type"] = "autoencoder"
    with pytest.raises(ValueError, match="model_type"):
        AudioXConfig.from_dict(raw)
