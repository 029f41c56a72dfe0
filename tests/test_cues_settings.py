import json
from dataclasses import asdict
from fractions import Fraction

import numpy as np
import pytest

from audiox_core.errors import InputError, ModelError
from audiox_core.model.config import TaskPrompts
from audiox_core.model.generate import SamplingSettings
from audiox_core.model.runtime import load_model
from audiox_core.reel.cues import SceneLook, cue_seed, look_note, look_words, measure, prompts
from audiox_core.reel.cuesheet import draft_sheet, resolve
from audiox_core.reel.daw_reel import DawSettings
from audiox_core.reel.settings import SETTING_PATHS, RunSettings
from audiox_core.sound.mix import MixSettings
from audiox_core.sound.timeline import CUE_KINDS, TimelineSettings
from audiox_core.video.scenes import DetectorSettings, FrameCurves, scenes_from_cuts


def test_measure_sees_motion_and_brightness() -> None:
    still = np.full((5, 8, 8, 3), 200, np.uint8)
    moving = np.random.default_rng(0).integers(0, 255, (5, 8, 8, 3), dtype=np.uint8)
    assert measure(still).motion == 0 and measure(still).brightness == 200
    assert measure(moving).motion > 50
    assert measure(still[:0]) == SceneLook(0.0, 0.0, 0.0)


def test_looks_follow_the_picture_and_prompts_the_model() -> None:
    calm, busy = look_note(SceneLook(0.1, 200, 10)), look_note(SceneLook(40, 30, 10))
    assert "still" in calm and "bright" in calm
    assert "fast" in busy and "dark" in busy
    assert look_words(SceneLook(0.1, 200, 10))["mood"] != look_words(SceneLook(40, 30, 10))["mood"]
    task = TaskPrompts("sound effects for the picture", "music for the picture")
    assert prompts(task) == {"foley": task.foley, "music": task.music}


def test_one_foley_and_one_music_cue_per_scene_with_distinct_reproducible_seeds() -> None:
    """Expected: scenes whose mood changes at every cut draft a Foley and a music cue each, in scene order."""
    curves = FrameCurves(times=[Fraction(i, 25) for i in range(30)])
    scenes = scenes_from_cuts([10, 20], curves, Fraction(25), DetectorSettings()).scenes
    still, busy = SceneLook(0, 100, 0), SceneLook(40, 100, 0)
    sheet = draft_sheet("r", scenes, Fraction(25), [still, busy, still], run_seed=7)
    cues = [s.as_cue() for s in resolve(sheet, scenes, Fraction(25), "cues.yaml")]
    assert CUE_KINDS == ("foley", "music")
    assert [(c.scene_index, c.kind) for c in cues] == [(i, k) for i in range(3) for k in CUE_KINDS]
    assert len({c.seed for c in cues}) == 6
    assert cues[3].seed == cue_seed(7, 1, "music") and cue_seed(8, 1, "music") != cue_seed(7, 1, "music")


def test_run_settings_reject_unknown_keys() -> None:
    assert RunSettings.from_dict({"steps": 3}).sampling.steps == 3
    with pytest.raises(InputError, match="unknown key.*stepz"):
        RunSettings.from_dict({"stepz": 3})


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("sampler", "ddim", "dpmpp-2m, dpmpp-3m-sde, euler"),
        ("loudness_preset", "loud", "atsc-a85, ebu-r128, streaming-14, streaming-16"),
        ("device", "gpu", "auto, cpu, cuda, cuda:N"),
    ],
)
def test_a_name_outside_its_closed_set_is_one_input_error_listing_the_allowed(
    key: str, value: str, allowed: str
) -> None:
    with pytest.raises(InputError) as raised:
        RunSettings.from_dict({"steps": 3, key: value})
    assert str(raised.value) == f"settings: {key} {value!r} is not one of {allowed}"


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("steps", "50", "is not an integer"),
        ("steps", True, "is not an integer"),
        ("seed", 1.5, "is not an integer"),
        ("cfg_scale", "7", "is not a finite number"),
        ("cfg_scale", float("nan"), "is not a finite number"),
        ("review_proxy", "yes", "is not true or false"),
        ("model", 3, "is not a string"),
        ("steps", 0, "is not ≥ 1"),
        ("batch_size", 0, "is not ≥ 1"),
        ("cfg_scale", 0.0, "is not > 0"),
        ("scene_threshold", 0, "is not > 0"),
        ("min_scene_s", -0.1, "is not ≥ 0"),
        ("music_crossfade_s", -1.0, "is not ≥ 0"),
    ],
)
def test_a_wrong_type_or_range_is_one_input_error_naming_the_key(key: str, value: object, problem: str) -> None:
    with pytest.raises(InputError) as raised:
        RunSettings.from_dict({key: value})
    assert str(raised.value) == f"settings: {key} {value!r} {problem}"


def test_stage_settings_check_themselves() -> None:
    with pytest.raises(
        InputError, match=r"^SamplingSettings: sampler 'ddim' is not one of dpmpp-2m, dpmpp-3m-sde, euler$"
    ):
        SamplingSettings(sampler="ddim")
    with pytest.raises(InputError, match=r"^MixSettings: preset 'loud' is not one of atsc-a85, "):
        MixSettings(preset="loud")
    with pytest.raises(InputError, match=r"^DetectorSettings: threshold -1 is not > 0$"):
        DetectorSettings(threshold=-1)
    with pytest.raises(InputError, match=r"^TimelineSettings: music_crossfade_s 'long' is not a finite number$"):
        TimelineSettings(music_crossfade_s="long")


def test_each_default_is_declared_once_in_its_stage() -> None:
    run = RunSettings()
    assert (run.sampling, run.detector, run.timeline, run.mix, run.daw) == (
        SamplingSettings(),
        DetectorSettings(),
        TimelineSettings(),
        MixSettings(),
        DawSettings(),
    )
    assert RunSettings.from_dict({}) == run
    # The flat shape of flow parameters, run rows and provenance.json, with the pipeline's defaults.
    assert run.to_dict() == {
        "model": "tiny",
        "seed": 0,
        "steps": 50,
        "cfg_scale": 7.0,
        "sampler": "dpmpp-3m-sde",
        "device": "auto",
        "scene_threshold": 27.0,
        "min_scene_s": 0.5,
        "loudness_preset": "ebu-r128",
        "music_crossfade_s": 1.0,
        "review_proxy": False,
        "batch_size": 8,
        "seconds": 8.0,
        "kind": "foley",
        "start_timecode": "01:00:00:00",
        "stem_names": "{reel}_{version}_{stem}_{channels}ch_{rate}k_{bits}b_{fps}",
    }


def test_flat_keys_reach_their_stages_and_equal_settings_give_equal_dicts() -> None:
    values = {
        "model": "demo",
        "seed": 4,
        "steps": 3,
        "cfg_scale": 5,
        "sampler": "euler",
        "device": "cuda:1",
        "scene_threshold": 30,
        "min_scene_s": 0.25,
        "loudness_preset": "atsc-a85",
        "music_crossfade_s": 2,
        "review_proxy": True,
        "batch_size": 2,
        "seconds": 3.5,
        "kind": "music",
        "start_timecode": "00:59:30;00",
        "stem_names": "{reel}-{stem}",
    }
    assert set(values) == set(SETTING_PATHS)
    s = RunSettings.from_dict(values)
    assert s.sampling == SamplingSettings(sampler="euler", steps=3, cfg_scale=5.0)
    assert s.detector == DetectorSettings(threshold=30.0, min_scene_s=0.25)
    assert s.timeline == TimelineSettings(music_crossfade_s=2.0) and s.mix == MixSettings(preset="atsc-a85")
    assert (s.model, s.seed, s.device, s.review_proxy, s.batch_size) == ("demo", 4, "cuda:1", True, 2)
    assert (s.still_seconds, s.brief_kind) == (3.5, "music")
    assert s.daw == DawSettings(start_timecode="00:59:30;00", stem_names="{reel}-{stem}")
    assert s.to_dict() == values and RunSettings.from_dict(s.to_dict()) == s
    # An int given for a float is held as a float: the same settings written by to_dict compare (and key) alike.
    assert RunSettings.from_dict({"cfg_scale": 7}).to_dict() == json.loads(json.dumps(RunSettings().to_dict()))
    assert isinstance(RunSettings.from_dict({"cfg_scale": 7}).sampling.cfg_scale, float)


def test_cli_passes_only_the_options_given_and_its_help_shows_the_dataclass_defaults(capsys) -> None:
    from cli.main import _settings_from, parser

    assert _settings_from(parser().parse_args(["run", "x.mp4"])) == {}
    args = parser().parse_args(
        ["run", "x.mp4", "--steps", "3", "--cfg-scale", "5", "--loudness", "atsc-a85", "--proxy"]
    )
    assert _settings_from(args) == {"steps": 3, "cfg_scale": 5.0, "loudness_preset": "atsc-a85", "review_proxy": True}
    with pytest.raises(SystemExit):
        parser().parse_args(["run", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert f"sampling steps (default {SamplingSettings().steps})" in shown
    assert f"(default {MixSettings().preset})" in shown and "streaming-16 (-16 LUFS/-1 dBTP)" in shown


def test_scenes_command_builds_the_detector_from_the_options_given(reel, capsys) -> None:
    from cli.main import main

    assert main(["scenes", str(reel.path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["detector"] == asdict(DetectorSettings())
    assert main(["scenes", str(reel.path), "--json", "--min-scene-s", "0.2"]) == 0
    assert json.loads(capsys.readouterr().out)["detector"] == asdict(DetectorSettings(min_scene_s=0.2))
    assert main(["scenes", str(reel.path), "--json", "--skim", "never"]) == 0
    full = json.loads(capsys.readouterr().out)
    assert main(["scenes", str(reel.path), "--json", "--skim", "always"]) == 0
    skimmed = json.loads(capsys.readouterr().out)
    assert skimmed["detector"] == asdict(DetectorSettings(skim="always"))
    assert skimmed["scenes"] == full["scenes"]


@pytest.mark.integration
def test_a_flow_run_with_an_unknown_loudness_preset_fails_before_any_work(prefect_api, home, reel, tmp_path) -> None:
    """The preset is checked with every other setting when the run starts, not by the mix after
    every cue was generated: the run row holds the one-line reason and nothing was made."""
    from sqlalchemy import func, select

    from db.models import Asset, Generation, Run
    from db.session import database_url, sessions
    from flows.soundtrack import soundtrack

    reason = "settings: loudness_preset 'loud' is not one of atsc-a85, ebu-r128, streaming-14, streaming-16"
    out = tmp_path / "out"
    with pytest.raises(InputError) as raised:
        soundtrack(str(reel.path), str(out), {"steps": 2, "loudness_preset": "loud"})
    assert str(raised.value) == reason
    with sessions(database_url(home))() as s:
        runs = s.scalars(select(Run)).all()
        assert [(r.status, r.error) for r in runs] == [("failed", reason)]
        assert s.scalar(select(func.count()).select_from(Asset)) == 0  # the source was never analysed
        assert s.scalar(select(func.count()).select_from(Generation)) == 0
    assert not out.exists()
    assert not list((home / "work").glob("*")) if (home / "work").exists() else True


def test_demo_and_missing_model_are_clear_errors(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr("audiox_core.model.spec.DEMO_FOLDER", tmp_path / "no-demo")  # a checkout without the weights
    with pytest.raises(ModelError, match="no trained demo model"):
        load_model("demo", device="cpu")
    with pytest.raises(ModelError, match="model folder not found"):
        load_model(str(tmp_path / "nowhere"), device="cpu")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelError, match="missing key model_type"):
        load_model(str(tmp_path), device="cpu")


def test_prompt_tokens_are_counted_as_the_text_encoder_tokenizes() -> None:
    """Expected: the count, cut to max_length, is what the real byte-level encoder's tokenizer keeps
    (the mask; the tiny model's, 128 tokens); beyond it the count goes on (200 bytes: 201 tokens); an
    official T5 without its folder is the loader's own ModelError (the demo model's words encoder:
    ``test_sync.py``)."""
    from dataclasses import replace

    from audiox_core.model.conditioners import TextEncoder
    from audiox_core.model.prompt_length import prompt_tokens
    from audiox_core.model.spec import load_config

    cfg = load_config("tiny")
    prompts = ["rain", "Grüße aus 東京", "x" * 126, "x" * 127, "x" * 200]
    counts = prompt_tokens(cfg.text, prompts, None)
    _, mask = TextEncoder(cfg.text, cfg.cond_dim, None).tokenize(prompts)
    assert [min(n, cfg.text.max_length) for n in counts] == mask.sum(1).tolist()
    assert counts[-1] == 201 and cfg.text.max_length == 128
    with pytest.raises(ModelError, match="no T5 folder given"):
        prompt_tokens(replace(cfg.text, kind="t5"), prompts, None)


def test_prompt_tokens_of_an_official_t5_are_what_its_tokenizer_makes(tmp_path) -> None:
    """A T5 folder as the release layout has it (config, weights, tokenizer; a tiny one, built here):
    expected, the count cut to max_length is what the loaded encoder's tokenizer keeps, end token included."""
    from dataclasses import replace

    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast, T5Config, T5EncoderModel

    from audiox_core.model.conditioners import TextEncoder
    from audiox_core.model.prompt_length import prompt_tokens
    from audiox_core.model.spec import load_config

    words = "rain on a roof slow strings door slams in the night".split()
    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, **{w: i + 3 for i, w in enumerate(dict.fromkeys(words))}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    fast.save_pretrained(tmp_path)
    config = T5Config(vocab_size=len(vocab), d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2)
    T5EncoderModel(config).save_pretrained(tmp_path)

    text = replace(load_config("demo").text, kind="t5", max_length=8)
    prompts = ["rain on a roof", " ".join(words), "door slams"]
    counts = prompt_tokens(text, prompts, tmp_path)
    _, mask = TextEncoder(text, 16, tmp_path).tokenize(prompts)
    assert counts == [5, len(words) + 1, 3]
    assert [min(n, text.max_length) for n in counts] == mask.sum(1).tolist()
