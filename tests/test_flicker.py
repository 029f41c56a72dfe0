"""Flicker without a change of shot is not a cut (issue 23, item 9): flames, a strobe, lightning and a
flashing sign, each one continuous shot made with ffmpeg's lavfi sources, and flicker on both sides
of a real hard cut, which is still found on its exact frame (recipes in audiox_core/video/flicker.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from audiox_core.video.flicker import FRAMES, encode
from audiox_core.video.scenes import DetectorSettings, detect_scenes


def cut_frames(path: Path, settings: DetectorSettings = DetectorSettings()) -> list[int]:
    return [s.start_frame for s in detect_scenes(path, settings)[1].scenes[1:]]


@pytest.mark.parametrize("shot", ["strobe", "lightning", "sign"])  # flames: the test below
def test_flicker_in_one_shot_is_no_cut(tmp_path: Path, shot: str) -> None:
    assert cut_frames(encode(tmp_path / f"{shot}.mp4", shot)) == []


@pytest.mark.integration  # slow for the quick subset: the full suite runs it
def test_flames_keep_the_adaptive_threshold_and_get_no_cut(tmp_path: Path) -> None:
    """The issue's clip: calm enough between flares that the threshold adapts below the ceiling, and
    each flare's step in brightness stands out from its neighbours; a change of light is still no cut."""
    result = detect_scenes(encode(tmp_path / "flames.mp4", "flames"))[1]
    assert result.threshold_used < DetectorSettings().threshold
    assert [s.start_frame for s in result.scenes[1:]] == []


@pytest.mark.integration  # slow for the quick subset: the full suite runs it
@pytest.mark.parametrize(("first", "second"), [("flames", "strobe"), ("lightning", "sign"), ("sign", "flames")])
def test_a_hard_cut_between_flickering_shots_is_found_on_its_frame(tmp_path: Path, first: str, second: str) -> None:
    assert cut_frames(encode(tmp_path / "cut.mp4", first, second)) == [FRAMES[first]]


@pytest.mark.integration  # slow for the quick subset: the full suite runs it
def test_the_skim_agrees_on_flicker(tmp_path: Path) -> None:
    clip = encode(tmp_path / "cut.mp4", "flames", "strobe")
    assert (
        cut_frames(clip, DetectorSettings(skim="always"))
        == cut_frames(clip, DetectorSettings(skim="never"))
        == [FRAMES["flames"]]
    )
