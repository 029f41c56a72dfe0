"""In-process decoding (audiox_core/video/libav.py) against the ffmpeg/ffprobe processes it stands in for:
the probe's fields, the thumbnails' times and pixels, the skim's sweep, the per-clip skim choice, errors."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from conftest import MEDIA, needs_media

from audiox_core.errors import InputError
from audiox_core.video import libav
from audiox_core.video.decode import DecodeReport, decode_thumbnails
from audiox_core.video.lavfi_reel import make_reel
from audiox_core.video.probe import probe
from audiox_core.video.scenes import DetectorSettings, detect_scenes
from audiox_core.video.skim import pays


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


@pytest.fixture(scope="module")
def hd_reel(tmp_path_factory: pytest.TempPathFactory):
    """720p H.264 with B-frames, 130 frames, three shots: what the skim is for."""
    return make_reel(
        tmp_path_factory.mktemp("hd") / "hd.mp4", shot_frames=(50, 40, 40), fps=Fraction(25), size=(1280, 720)
    )


def _without_format_duration(info):
    return dataclasses.replace(info, duration_s=0.0)


@needs_media
def test_the_in_process_probe_reads_what_ffprobe_reads(tmp_path: Path) -> None:
    """Every stream field the same, and the same container and start. (The container's own duration
    may differ where libavformat 5.1 and 8 read an edit list differently: delayed_start.mp4.)"""
    clips = [MEDIA / name for name in json.loads((MEDIA / "MANIFEST.json").read_text())["videos"]]
    rotated = tmp_path / "rotated.mp4"
    ffmpeg("-i", str(clips[0]), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(rotated))
    for path in [*clips, rotated]:
        ours, theirs = libav.probe(path), probe(path)
        assert _without_format_duration(ours) == _without_format_duration(theirs), path.name
    assert libav.probe(rotated).video.rotation == 90


def test_the_in_process_probe_refuses_what_ffprobe_refuses(tmp_path: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n")
    with pytest.raises(InputError, match=f"{text}: cannot be read as media by ffprobe"):
        detect_scenes(text)
    with pytest.raises(InputError, match="no such file|not found|does not exist"):
        detect_scenes(tmp_path / "missing.mp4")


def test_thumbnails_keep_the_ffmpeg_pass_times_and_pixels(hd_reel) -> None:
    """Same frames at the same times; with the loop filter on, pixels within a code value on average
    in every frame (two libav versions; the range is expanded after scaling rather than during it,
    which moves sharp colour edges by up to 16); without it, close on average."""
    cli = list(decode_thumbnails(hd_reel.path, DecodeReport()))
    filtered = list(libav.thumbnails(hd_reel.path, DecodeReport(), loop_filter=True))
    unfiltered = list(libav.thumbnails(hd_reel.path, DecodeReport()))
    assert [t for t, _ in cli] == [t for t, _ in filtered] == [t for t, _ in unfiltered]
    diff = lambda a, b: np.abs(a.astype(int) - b.astype(int))  # noqa: E731
    assert max(float(diff(a, b).mean()) for (_, a), (_, b) in zip(cli, filtered)) <= 1.0
    assert np.mean([diff(a, b).mean() for (_, a), (_, b) in zip(cli, unfiltered)]) < 2


def test_black_stays_black(tmp_path: Path) -> None:
    """Limited-range black (16, 128, 128) is BGR (0, 0, 0) exactly: no false colour on black frames."""
    black = tmp_path / "black.mp4"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "color=c=black:size=320x180:rate=25:duration=1",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        str(black),
    )
    frames = list(libav.thumbnails(black, DecodeReport()))
    assert len(frames) == 25 and all(not bgr.any() for _, bgr in frames)


def test_the_sweep_decodes_exactly_the_frames_of_its_spans(hd_reel) -> None:
    """Frames in several spans, decoded forward with reference frames only between them, equal the
    full decode's frames there, time and pixel."""
    full = list(libav.thumbnails(hd_reel.path, DecodeReport()))
    times = [t for t, _ in full]
    spans = [(times[3], times[9]), (times[60], times[75]), (times[120], times[-1] + 1)]
    _, keyframes = libav.frame_times(hd_reel.path)
    for keys in (keyframes, ()):  # continuing forward, and seeking for every span
        swept = list(libav.thumbnails(hd_reel.path, DecodeReport(), spans=spans, keyframes=keys))
        wanted = [(t, bgr) for t, bgr in full if any(lo <= t < hi for lo, hi in spans)]
        assert [t for t, _ in swept] == [t for t, _ in wanted]
        assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(swept, wanted))


def test_the_skim_is_chosen_where_the_packets_say_it_pays(hd_reel, tmp_path: Path) -> None:
    """The 720p reel with B-frames skims by default and finds the cuts the full pass finds; a small
    clip and a clip without B-frames take the full pass."""
    info = libav.probe(hd_reel.path)
    assert libav.reordered_share(hd_reel.path) >= 0.25 and pays(info)
    assert (
        detect_scenes(hd_reel.path)[1].scenes == detect_scenes(hd_reel.path, DetectorSettings(skim="never"))[1].scenes
    )
    assert [s.start_frame for s in detect_scenes(hd_reel.path)[1].scenes[1:]] == list(hd_reel.cuts)
    small = tmp_path / "small.mp4"
    ffmpeg("-i", str(hd_reel.path), "-vf", "scale=320:180", "-c:v", "libx264", str(small))
    assert not pays(libav.probe(small))
    intra = tmp_path / "intra.mp4"
    ffmpeg("-i", str(hd_reel.path), "-c:v", "libx264", "-bf", "0", str(intra))
    assert libav.reordered_share(intra) == 0.0 and not pays(libav.probe(intra))


def test_a_bad_skim_setting_is_refused() -> None:
    with pytest.raises(InputError, match="skim"):
        DetectorSettings(skim="sometimes")
