import json
from fractions import Fraction
from pathlib import Path

import pytest
from conftest import MEDIA, needs_media

from audiox_core.errors import InputError
from audiox_core.video.decode import ModelFrames
from audiox_core.video.frames import FrameStore
from audiox_core.video.lavfi_reel import make_reel
from audiox_core.video.probe import probe
from audiox_core.video.scenes import detect_scenes


def test_probe_reads_exact_fps_and_streams(reel) -> None:
    info = probe(reel.path)
    assert info.video.fps == Fraction(25)
    assert info.video.frames == reel.frames
    assert info.audio is not None and info.audio.sample_rate == 48_000
    assert info.duration_s == pytest.approx(reel.frames / 25, abs=0.05)


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("missing.mp4", None, "no such file"),
        ("empty.mp4", b"", "file is empty"),
        ("text.mp4", b"not a video\n", "cannot be read as media"),
    ],
)
def test_probe_bad_input_names_file_and_reason(tmp_path: Path, name: str, content: bytes | None, reason: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError) as e:
        probe(path)
    message = str(e.value)
    assert str(path) in message and reason in message and "\n" not in message


@pytest.mark.parametrize("fps", [Fraction(24000, 1001), Fraction(25), Fraction(30000, 1001)])
def test_cuts_exact_on_synthetic_reels(tmp_path: Path, fps: Fraction) -> None:
    r = make_reel(tmp_path / "r.mp4", shot_frames=(18, 25, 16, 20), fps=fps, size=(320, 180), audio=False)
    scenes = detect_scenes(r.path)[1]
    assert [s.start_frame for s in scenes.scenes[1:]] == list(r.cuts)
    assert scenes.frames == r.frames
    last = scenes.scenes[-1]
    assert last.end_frame == r.frames and last.end_s == pytest.approx(float(r.frames / fps))


def test_scene_dict_has_exact_fps_frames_seconds_and_timecodes(reel) -> None:
    d = detect_scenes(reel.path)[1].to_dict()
    assert d["fps"] == "25/1"
    first = d["scenes"][0]
    assert {k: first[k] for k in ("index", "start_s", "start_frame", "start_tc")} == {
        "index": 0,
        "start_s": 0.0,
        "start_frame": 0,
        "start_tc": "00:00:00:00",
    }
    assert d["scenes"][1]["start_frame"] == 20 and d["scenes"][1]["start_s"] == 0.8


def test_frames_sampled_on_a_5fps_grid_in_the_same_pass(reel, tmp_path: Path) -> None:
    detect_scenes(reel.path, model_frames=ModelFrames(tmp_path / "frames.rgb", fps=5, size=32))
    store = FrameStore.open(tmp_path / "frames.rgb", fps=5, size=32)
    assert store.count == 11  # 55 frames at 25 fps = 2.2 s → grid points 0, 0.2, …, 2.0
    assert store.between(0.8, 1.4).shape == (3, 32, 32, 3)


@needs_media
@pytest.mark.parametrize("name", ["video/bikes.mp4", "video/testvideo.mp4"])
def test_cuts_on_shared_footage(name: str) -> None:
    manifest = json.loads((MEDIA / "MANIFEST.json").read_text())["videos"][name]
    info = probe(MEDIA / name)
    scenes = detect_scenes(info)[1]
    found = [s.start_frame for s in scenes.scenes[1:]]
    assert found == manifest["cuts"]
