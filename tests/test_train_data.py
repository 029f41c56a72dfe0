"""The training data builder draws what its events and captions say, and the evaluation measures
(onsets, event matching, the log-mel classifier) find what is there."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from audiox_core.errors import InputError
from audiox_core.train.builder import ClipSpec, build_dataset, render_clip
from audiox_core.train.evaluation import LogMelCentroids, audio_onsets, match_events
from audiox_core.train.examples import decode_audio, load_examples

MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media"


def _lowest_lit_row(frame: np.ndarray) -> int:
    """The lowest image row holding object pixels (much brighter than the dim background)."""
    rows = np.nonzero((frame.max(axis=2) > 110).any(axis=1))[0]
    return int(rows.max()) if rows.size else -1


@pytest.mark.parametrize("shape", ["circle", "square", "triangle", "hexagon"])
def test_bounce_events_are_the_frames_where_the_object_touches_the_floor(shape: str) -> None:
    spec = ClipSpec("bounce", "train", seed=7, shape=shape)
    clip = render_clip(spec)
    floor = int(spec.height * 0.85)
    assert clip.events and all(e.kind == "impact" for e in clip.events)
    assert f"bounces {len(clip.events)} times" in clip.caption or len(clip.events) <= 2
    contacts = [round(e.t * spec.fps) for e in clip.events]
    bottoms = []
    for c in contacts:
        frame = clip.frames[c].copy()
        frame[floor - 1 :] = 0  # the floor line itself
        bottoms.append(_lowest_lit_row(frame))
    # At each event the object's lowest row sits on the floor; a few frames before it, it is higher.
    assert all(b >= floor - 3 for b in bottoms), bottoms
    before = clip.frames[max(0, contacts[0] - 4)].copy()
    before[floor - 1 :] = 0
    assert _lowest_lit_row(before) < floor - 4


def test_every_kind_renders_its_frames_events_and_caption() -> None:
    for kind in ("bounce", "collide", "door", "pass", "walk", "ambience", "music"):
        clip = render_clip(ClipSpec(kind, "train", seed=3), words="rain on a roof")
        assert clip.frames.shape == (192, 90, 160, 3)
        assert clip.caption
        assert all(0 < e.t < 8.0 for e in clip.events)
        if kind in ("ambience", "music"):
            assert clip.events == () and "rain on a roof" in clip.caption


@pytest.mark.skipif(not (MEDIA / "MANIFEST.json").is_file(), reason=f"shared media not found at {MEDIA}")
def test_built_clips_have_their_sound_at_the_drawn_events(tmp_path: Path) -> None:
    report = build_dataset(tmp_path, media=MEDIA, clips=8, heldout=2, seed=5)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert len(manifest["examples"]) == 10 and report
    examples = load_examples(tmp_path).examples
    assert {e.split for e in examples} == {"train", "heldout"}
    hits = events = 0
    for e in examples:
        sharp = [x.t for x in e.events if x.kind in ("impact", "door", "footstep")]
        if sharp:
            m = match_events(sharp, audio_onsets(decode_audio(e.audio, 16000), 16000))
            hits, events = hits + m.hits, events + m.events
    assert events and hits / events >= 0.9


def test_a_folder_without_examples_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(InputError) as err:
        load_examples(tmp_path)
    assert str(tmp_path) in str(err.value) and "\n" not in str(err.value)


def _clicks(times: list[float], rate: int = 16000, seconds: float = 4.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    audio = rng.normal(0, 0.003, int(seconds * rate)).astype(np.float32)
    for t in times:
        i = int(t * rate)
        n = int(0.05 * rate)
        audio[i : i + n] += rng.normal(0, 0.5, n).astype(np.float32) * np.exp(-np.arange(n) / (0.01 * rate))
    return np.stack([audio, audio])


def test_onsets_are_found_where_the_clicks_are() -> None:
    times = [0.5, 1.2, 1.9, 3.1]
    onsets = audio_onsets(_clicks(times), 16000)
    assert len(onsets) == 4
    assert all(abs(o - t) < 0.02 for o, t in zip(onsets, times))


def test_match_is_one_to_one_within_the_tolerance() -> None:
    m = match_events([1.0, 2.0, 3.0], [1.05, 1.07, 2.2, 3.0], tail_s=0.0)
    assert (m.hits, m.events, m.onsets) == (2, 3, 4)
    assert m.hit_rate == pytest.approx(2 / 3) and m.precision == pytest.approx(0.5)


def test_a_matched_sounds_later_transients_are_its_tail_not_false_onsets() -> None:
    """Expected: 1.2 (0.15 s after the onset matched to 1.0) is that sound's tail and not counted;
    0.8 (before it) and 1.5 (0.45 s after) count as onsets without an event."""
    m = match_events([1.0, 3.0], [0.8, 1.05, 1.2, 1.5, 3.0])
    assert (m.hits, m.onsets) == (2, 4) and m.precision == pytest.approx(0.5)


def test_log_mel_centroids_tell_a_low_tone_from_noise() -> None:
    rate, rng = 16000, np.random.default_rng(1)
    t = np.arange(rate) / rate

    def tone(f: float) -> np.ndarray:
        return (0.3 * np.sin(2 * np.pi * f * t) + rng.normal(0, 0.001, rate)).astype(np.float32)

    def hiss() -> np.ndarray:
        return rng.normal(0, 0.1, rate).astype(np.float32)

    clf = LogMelCentroids(rate).fit({"tone": [tone(200), tone(220)], "hiss": [hiss(), hiss()]})
    assert clf.predict(tone(210)) == "tone" and clf.predict(hiss()) == "hiss"
