import json

import pytest
from conftest import AUDIOX_FACTS, needs_audiox_facts

from audiox_core.errors import ModelError
from audiox_core.model.checkpoint import manifest
from audiox_core.model.config import AudioXConfig, encoded_length
from audiox_core.model.spec import PRESETS


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
    assert (cfg.video.n_tokens, cfg.text.max_length, cfg.audio.n_tokens) == (128, 128, 215)  # 471 cond tokens
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
    with pytest.raises(ModelError, match=r"model\.diffusion\.type"):
        AudioXConfig.from_dict(raw)


def test_missing_key_is_named() -> None:
    raw = _tiny_raw()
    del raw["model"]["diffusion"]["config"]["embed_dim"]
    with pytest.raises(ModelError, match=r"model\.diffusion\.config\.embed_dim"):
        AudioXConfig.from_dict(raw)


def test_other_model_type_rejected() -> None:
    raw = _tiny_raw()
    raw["model_type"] = "autoencoder"
    with pytest.raises(ModelError, match="model_type"):
        AudioXConfig.from_dict(raw)


def test_errors_from_a_file_name_the_file_and_the_key(tmp_path) -> None:
    raw = _tiny_raw()
    raw["model"]["pretransform"]["config"]["encoder"]["config"]["strides"] = [2, "four"]
    path = tmp_path / "config.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(
        ModelError, match=rf"^{path}: model\.pretransform\.config\.encoder\.config\.strides must be a list of integers"
    ):
        AudioXConfig.from_json(path)


def test_a_section_that_is_not_an_object_is_named() -> None:
    raw = _tiny_raw()
    raw["model"]["diffusion"]["config"] = 5
    with pytest.raises(ModelError, match=r"^model config: model\.diffusion\.config must be an object \(got int\)"):
        AudioXConfig.from_dict(raw)


def test_unknown_studio_key_and_text_kind_are_named() -> None:
    raw = _tiny_raw()
    raw["studio"]["video"]["n_tokenz"] = 3
    with pytest.raises(ModelError, match=r"unknown key studio\.video\.n_tokenz \(known: window_s, n_tokens"):
        AudioXConfig.from_dict(raw)
    raw = _tiny_raw()
    raw["studio"]["text"]["kind"] = "clap"
    with pytest.raises(
        ModelError, match=r"unknown text encoder kind 'clap' at studio\.text\.kind \(known: t5, byte-t5, words\)"
    ):
        AudioXConfig.from_dict(raw)


def test_final_tanh_defaults_to_the_official_decoder_and_the_release_turns_it_off() -> None:
    raw = _tiny_raw()
    assert not AudioXConfig.from_dict(raw).autoencoder.final_tanh  # the preset says false, as AudioX's config.json does
    del raw["model"]["pretransform"]["config"]["decoder"]["config"]["final_tanh"]
    assert AudioXConfig.from_dict(raw).autoencoder.final_tanh
