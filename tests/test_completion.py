"""Music completion on the shared music files (tiny model, in-process): the sketch kept sample for
sample up to the join's crossfade, the continuation after it, the sketch only heard when it is not
kept; and the tempo measure the completion is judged by (bench/completion_eval.py reports the
figures: for the tiny model's noise they are not meaningful)."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from audiox_core.errors import InputError
from audiox_core.model.generate import SamplingSettings
from audiox_core.model.inpaint import EDGE_FADE_S
from audiox_core.model.longform import generate_scenes
from audiox_core.reel.cues import Cue
from audiox_core.reel.given_sound import cue_request, finished_cue, read_given_audio
from audiox_core.sound.audio import resample
from audiox_core.train.tempo import tempo_bpm, tempo_ratio

MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media"
RATE = 48_000


def shared(name: str) -> Path:
    path = MEDIA / name
    if not path.is_file():
        pytest.skip(f"{path} is not here (the shared media folder is read in place, never copied)")
    return path


def test_the_tempo_of_a_click_track_and_of_a_steady_loop() -> None:
    """Expected: 120 BPM clicks read as 120 (±0.5); the two halves of the shared 148 BPM loop agree
    within 1 %, and a half-time reading folds onto the same tempo."""
    rate = 16_000
    clicks = np.zeros((1, 8 * rate))
    for k in range(16):
        clicks[0, k * rate // 2 : k * rate // 2 + 200] = np.hanning(200)
    assert abs(tempo_bpm(clicks, rate) - 120) < 0.5
    loop = read_given_audio(shared("sfx/loop_compus.flac"), rate, "loop")
    half = loop.shape[1] // 2
    assert abs(tempo_ratio(tempo_bpm(loop[:, :half], rate), tempo_bpm(loop[:, half:], rate)) - 1) < 0.01
    assert tempo_ratio(60.0, 121.0) == pytest.approx(120 / 121)
    assert np.isnan(tempo_bpm(np.zeros((1, rate)), rate))


def test_a_cue_completes_a_shared_music_sketch_kept_or_only_heard(tiny_model) -> None:
    """A 2 s sketch from the shared Brahms recording, a 6 s cue. Expected, kept: the cue's first
    2 s − 25 ms are the sketch exactly, the 25 ms before the join cross into the continuation, and the
    rest is the model's; heard: the cue is all new (the sketch is only its first window's prompt)."""
    config = tiny_model.config
    hop_s = config.autoencoder.hop / config.sample_rate
    sketch = read_given_audio(shared("music/brahms_hungarian_dance_5.ogg"), RATE, "brahms")[:, : 2 * RATE]
    cue = Cue(0, "music", "strings", 3, prompt_audio="brahms.ogg")
    frames = np.zeros((0, 8, 8, 3), np.uint8)
    made = {}
    for kept in (True, False):
        c = replace(cue, prompt_audio_kept=kept)
        request = cue_request(c, frames, 6.0, sketch, RATE, config.sample_rate, hop_s, "M01")
        assert (request.previous is not None) == kept and (request.audio_prompt is not None) == (not kept)
        (audio,) = generate_scenes(tiny_model, [request], SamplingSettings(steps=2))
        pcm = resample(audio, config.sample_rate, RATE)[:, : 6 * RATE]
        made[kept], new = finished_cue(c, pcm, sketch, RATE, -6.0)
        assert new[-1].end_s == pytest.approx(6.0)
    join = 2 * RATE - round(EDGE_FADE_S * RATE)
    assert np.array_equal(made[True][:, :join], sketch[:, :join])
    assert not np.array_equal(made[True][:, join : 2 * RATE], sketch[:, join:])
    assert np.abs(made[True][:, 2 * RATE :]).max() > 0
    assert not np.allclose(made[False][:, : 2 * RATE], sketch, atol=1e-3)


def test_a_sketch_as_long_as_the_cue_leaves_nothing_to_complete(tiny_model) -> None:
    config = tiny_model.config
    sketch = np.full((2, 3 * RATE), 0.1, np.float32)
    cue = Cue(0, "music", "strings", 3, prompt_audio="long.wav")
    with pytest.raises(InputError, match=r"M01: its prompt audio is 3.000 s long, the cue 3.000 s: nothing is left"):
        cue_request(cue, np.zeros((0, 8, 8, 3), np.uint8), 3.0, sketch, RATE, config.sample_rate, 0.05, "M01")
