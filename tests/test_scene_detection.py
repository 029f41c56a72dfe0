"""Scene detection on clips made by ffmpeg with known content: VFR, flashes, fades, dissolves,
minimum length, containers and stream quirks, damaged and truncated files, and the exports."""

from __future__ import annotations

import json
import subprocess
from fractions import Fraction
from pathlib import Path

import pytest
from conftest import MEDIA, needs_media
from readers import read_edl, read_scenes_csv

from audiox_core.errors import InputError
from audiox_core.video.edl import scenes_csv, scenes_edl
from audiox_core.video.lavfi_reel import make_reel
from audiox_core.video.probe import probe
from audiox_core.video.scenes import DetectorSettings, detect_scenes
from audiox_core.video.timecode import frame_from_timecode, timecode

SIZE = "320x180"


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


def src(name: str, rate: str, seconds: float) -> list[str]:
    sources = {"a": "testsrc2=", "b": "mandelbrot=", "c": "smptehdbars=", "black": "color=c=black:"}
    return ["-f", "lavfi", "-i", f"{sources[name]}size={SIZE}:rate={rate},trim=duration={seconds},setpts=PTS-STARTPTS"]


def h264(path: Path, graph: str, inputs: list[str], *extra: str) -> Path:
    ffmpeg(
        *inputs,
        "-filter_complex",
        graph,
        "-map",
        "[v]",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-pix_fmt",
        "yuv420p",
        *extra,
        str(path),
    )
    return path


def cut_frames(path: Path, **settings) -> list[int]:
    return [s.start_frame for s in detect_scenes(path, DetectorSettings(**settings))[1].scenes[1:]]


def test_variable_frame_rate_cuts_at_exact_times(tmp_path: Path) -> None:
    inputs = src("a", "24", 2) + src("b", "30", 2) + src("c", "15", 2)
    clip = h264(tmp_path / "vfr.mp4", "[0:v][1:v][2:v]concat=n=3:v=1:a=0[v]", inputs, "-fps_mode", "vfr")
    scenes = detect_scenes(clip)[1].scenes
    assert [s.start_frame for s in scenes[1:]] == [48, 108]
    assert [s.start_s for s in scenes[1:]] == pytest.approx([2.0, 4.0], abs=1e-6)
    assert scenes[-1].end_s == pytest.approx(6.0, abs=1 / 15 + 1e-6)


def test_flash_frames_are_not_cuts(tmp_path: Path) -> None:
    graph = "[0:v]drawbox=color=white:t=fill:enable='between(n,30,31)'[f];[f][1:v]concat=n=2:v=1:a=0[v]"
    clip = h264(tmp_path / "flash.mp4", graph, src("a", "25", 3) + src("b", "25", 2))
    assert cut_frames(clip) == [75]


def test_fades_through_black_are_transitions_not_cuts(tmp_path: Path) -> None:
    graph = "[0:v]fade=t=out:st=1.4:d=0.6[x];[1:v]fade=t=in:st=0:d=0.6[y];[x][y]concat=n=2:v=1:a=0[v]"
    clip = h264(tmp_path / "fades.mp4", graph, src("a", "25", 2) + src("b", "25", 2))
    result = detect_scenes(clip)[1]
    assert [s.start_frame for s in result.scenes[1:]] == []
    kinds = [t.kind for t in result.transitions]
    assert "fade_out" in kinds and "fade_in" in kinds
    fade_out = next(t for t in result.transitions if t.kind == "fade_out")
    assert 30 <= fade_out.start_frame <= 40 and fade_out.end_frame <= 52


def test_dissolve_is_not_a_hard_cut(tmp_path: Path) -> None:
    graph = "[0:v][1:v]xfade=transition=fade:duration=1:offset=1.5[v]"
    clip = h264(tmp_path / "dissolve.mp4", graph, src("a", "25", 2.5) + src("b", "25", 2.5))
    assert cut_frames(clip) == []


def test_cuts_closer_than_the_minimum_length_merge(tmp_path: Path) -> None:
    reel = make_reel(tmp_path / "short.mp4", shot_frames=(30, 8, 30), fps=Fraction(25), size=(320, 180), audio=False)
    assert reel.cuts == (30, 38)
    assert cut_frames(reel.path) == [30]
    assert cut_frames(reel.path, min_scene_frames=5, min_scene_s=0.2) == [30, 38]


def test_times_count_from_a_non_zero_start_and_a_black_opening_is_a_transition(tmp_path: Path) -> None:
    clip = h264(
        tmp_path / "late.mp4",
        "[0:v][1:v]concat=n=2:v=1:a=0[v]",
        src("black", "25", 1) + src("a", "25", 2),
        "-output_ts_offset",
        "2.5",
    )
    result = detect_scenes(clip)[1]
    assert result.start_pts_s == pytest.approx(2.5, abs=0.05)
    assert [s.start_frame for s in result.scenes[1:]] == [25]
    assert result.scenes[1].start_s == pytest.approx(1.0)
    assert result.transitions[0].kind == "black" and result.transitions[0].start_frame == 0


@pytest.fixture(scope="module")
def base_reel(tmp_path_factory: pytest.TempPathFactory):
    return make_reel(
        tmp_path_factory.mktemp("c") / "base.mp4",
        shot_frames=(30, 25, 30),
        fps=Fraction(25),
        size=(320, 180),
        audio=True,
    )


@pytest.mark.parametrize("container", ["webm", "mkv", "avi", "mov"])
def test_cuts_are_the_same_in_every_container(base_reel, tmp_path: Path, container: str) -> None:
    out = tmp_path / f"clip.{container}"
    codec = (
        ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-c:a", "libopus"]
        if container == "webm"
        else ["-c", "copy"]
    )
    ffmpeg("-i", str(base_reel.path), *codec, str(out))
    assert cut_frames(out) == list(base_reel.cuts)


def test_subtitle_and_attachment_streams_rotation_and_anamorphic_pixels(base_reel, tmp_path: Path) -> None:
    srt = tmp_path / "subs.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:01,000\nhello\n")
    font = tmp_path / "notes.txt"
    font.write_text("attachment")
    mkv = tmp_path / "extra.mkv"
    ffmpeg(
        "-i",
        str(base_reel.path),
        "-i",
        str(srt),
        "-map",
        "0",
        "-map",
        "1",
        "-c",
        "copy",
        "-attach",
        str(font),
        "-metadata:s:t",
        "mimetype=text/plain",
        str(mkv),
    )
    assert cut_frames(mkv) == list(base_reel.cuts)
    rotated = tmp_path / "rotated.mp4"
    ffmpeg("-i", str(base_reel.path), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(rotated))
    assert probe(rotated).video.rotation in (90, 270)
    assert cut_frames(rotated) == list(base_reel.cuts)
    anamorphic = tmp_path / "anamorphic.mp4"
    ffmpeg(
        "-i",
        str(base_reel.path),
        "-vf",
        "scale=240:180,setsar=4/3",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        str(anamorphic),
    )
    assert cut_frames(anamorphic) == list(base_reel.cuts)


def test_damaged_frames_are_skipped_and_counted(base_reel, tmp_path: Path) -> None:
    ts = tmp_path / "clip.ts"
    ffmpeg("-i", str(base_reel.path), "-c", "copy", "-an", str(ts))
    data = bytearray(ts.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 3000] = bytes(3000)
    damaged = tmp_path / "damaged.ts"
    damaged.write_bytes(bytes(data))
    result = detect_scenes(damaged)[1]
    assert result.damaged_frames >= 1
    assert result.frames >= base_reel.frames - 10


def test_truncated_file_is_an_input_error(base_reel, tmp_path: Path) -> None:
    faststart = tmp_path / "fast.mp4"
    ffmpeg("-i", str(base_reel.path), "-c", "copy", "-movflags", "+faststart", str(faststart))
    data = faststart.read_bytes()
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=f"{truncated}: truncated or unreadable: the picture ends at"):
        detect_scenes(truncated)


def test_csv_and_edl_round_trip(tmp_path: Path) -> None:
    fps = Fraction(30000, 1001)
    reel = make_reel(tmp_path / "r.mp4", shot_frames=(40, 35, 50), fps=fps, size=(320, 180), audio=False)
    scenes = detect_scenes(reel.path)[1]
    rows = read_scenes_csv(scenes_csv(scenes))
    assert [(int(r["start_frame"]), int(r["end_frame"])) for r in rows] == [
        (s.start_frame, s.end_frame) for s in scenes.scenes
    ]
    events = read_edl(scenes_edl(scenes, "r", "r.mp4"), fps)
    assert [(e.source_in, e.source_out) for e in events] == [(s.start_frame, s.end_frame) for s in scenes.scenes]
    assert [e.record_in for e in events] == [e.source_in for e in events]
    assert "FCM: DROP FRAME" in scenes_edl(scenes, "r", "r.mp4")


@pytest.mark.parametrize(
    "fps", [Fraction(24000, 1001), Fraction(24), Fraction(25), Fraction(30000, 1001), Fraction(60000, 1001)]
)
def test_timecode_round_trips(fps: Fraction) -> None:
    for frame in (0, 1, 1799, 1800, 17981, 17982, 107_891, 215_784):
        assert frame_from_timecode(timecode(frame, fps), fps) == frame


@needs_media
def test_every_shared_clip_exactly() -> None:
    manifest = json.loads((MEDIA / "MANIFEST.json").read_text())["videos"]
    for name, facts in manifest.items():
        assert cut_frames(MEDIA / name) == facts["cuts"], name


@needs_media
@pytest.mark.integration  # decodes every bench clip twice: the full suite's
def test_the_skim_finds_what_decoding_every_frame_finds() -> None:
    """Same cuts, frame numbers, times and frame count with and without the skim, on every shared clip
    (the skim decodes only reference frames, and every frame only around candidate cuts)."""
    manifest = json.loads((MEDIA / "MANIFEST.json").read_text())["videos"]
    for name in manifest:
        full = detect_scenes(MEDIA / name, DetectorSettings(skim="never"))[1]
        skimmed = detect_scenes(MEDIA / name, DetectorSettings(skim="always"))[1]
        assert skimmed.frames == full.frames, name
        assert skimmed.scenes == full.scenes, name
