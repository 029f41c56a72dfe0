from pathlib import Path

import numpy as np
import pytest
from readers import packet_md5s

from audiox_core.sound.audio import extract_audio, read_wav, write_wav24
from audiox_core.sound.mix import level_cue
from audiox_core.video.mux import mux
from audiox_core.video.probe import probe


def test_wav24_round_trip(tmp_path: Path) -> None:
    audio = np.random.default_rng(0).uniform(-0.99, 0.99, (2, 4800)).astype(np.float32)
    write_wav24(tmp_path / "a.wav", audio, 48_000)
    back, rate = read_wav(tmp_path / "a.wav")
    assert rate == 48_000 and back.shape == audio.shape
    assert np.abs(back - audio).max() < 2 / 2**23
    streams = probe_audio(tmp_path / "a.wav")
    assert streams == ("pcm_s24le", 48_000, 2)


def probe_audio(path: Path) -> tuple:
    import json
    import subprocess

    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    s = json.loads(out.stdout)["streams"][0]
    return s["codec_name"], int(s["sample_rate"]), s["channels"]


def test_write_refuses_overs(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="exceeds full scale"):
        write_wav24(tmp_path / "x.wav", np.full((2, 10), 1.5, np.float32), 48_000)
    assert not (tmp_path / "x.wav").exists()


def test_level_cue_sets_peak() -> None:
    cue = level_cue(np.array([[0.1, -300.0], [2.0, 0.0]], np.float32), -6.0)
    assert np.abs(cue).max() == pytest.approx(10 ** (-6 / 20))


def test_mux_copies_video_packets_and_matches_length(reel, tmp_path: Path) -> None:
    info = probe(reel.path)
    samples = round(reel.frames / reel.fps * 48_000)
    tone = (0.1 * np.sin(np.arange(samples) / 48_000 * 2 * np.pi * 440)).astype(np.float32)
    write_wav24(tmp_path / "mix.wav", np.stack([tone, tone]), 48_000)
    mux(reel.path, info.video.index, tmp_path / "mix.wav", tmp_path / "out.mp4")
    assert packet_md5s(tmp_path / "out.mp4") == packet_md5s(reel.path)
    out = probe(tmp_path / "out.mp4")
    assert out.audio is not None and out.audio.codec == "aac" and out.audio.sample_rate == 48_000
    assert abs(out.audio.duration_s - out.video.duration_s) <= 1 / 25


def test_dialogue_decodes_to_stereo_48k(reel, tmp_path: Path) -> None:
    info = probe(reel.path)
    raw = extract_audio(reel.path, info.audio.index, tmp_path / "d.f32")
    audio = raw.read(0, raw.samples)
    assert audio.shape[0] == 2 and abs(audio.shape[1] - 48_000 * 2.2) < 48_000 * 0.05
    assert np.abs(audio).max() > 0.05


def test_codec_mp4_cannot_hold_goes_to_matroska_untouched(tmp_path: Path) -> None:
    from fractions import Fraction

    from audiox_core.video.lavfi_reel import make_reel
    from audiox_core.video.mux import soundtrack_name

    vp8 = make_reel(
        tmp_path / "vp8.webm", shot_frames=(10, 10), fps=Fraction(24), size=(160, 90), audio=False, codec="libvpx"
    )
    info = probe(vp8.path)
    assert info.video.codec == "vp8" and soundtrack_name("vp8", vp8.path) == "soundtrack.mkv"
    assert (
        soundtrack_name("h264", Path("a.mp4")) == "soundtrack.mp4"
        and soundtrack_name("prores", Path("a.MOV")) == "soundtrack.mov"
    )
    write_wav24(tmp_path / "mix.wav", np.zeros((2, 48_000 * 20 // 24), np.float32), 48_000)
    mux(vp8.path, info.video.index, tmp_path / "mix.wav", tmp_path / "soundtrack.mkv")
    assert packet_md5s(tmp_path / "soundtrack.mkv") == packet_md5s(vp8.path)


def test_mov_gets_24_bit_pcm_with_the_picture_untouched(reel, tmp_path: Path) -> None:
    import subprocess

    mov = tmp_path / "reel.mov"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(reel.path), "-c", "copy", str(mov)], check=True)
    write_wav24(tmp_path / "mix.wav", np.zeros((2, round(reel.frames / reel.fps * 48_000)), np.float32), 48_000)
    mux(mov, probe(mov).video.index, tmp_path / "mix.wav", tmp_path / "soundtrack.mov")
    out = probe(tmp_path / "soundtrack.mov")
    assert out.audio is not None and out.audio.codec == "pcm_s24le" and out.audio.sample_rate == 48_000
    assert packet_md5s(tmp_path / "soundtrack.mov") == packet_md5s(mov)


# moviepy 2.1's ffmpeg reader re-opens its pipes on seek without closing the old ones.
@pytest.mark.filterwarnings("ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning")
def test_review_proxy_burns_in_scene_and_timecode(reel, tmp_path: Path) -> None:
    from audiox_core.video.proxy import review_proxy
    from audiox_core.video.scenes import detect_scenes

    _, scenes = detect_scenes(reel.path)
    write_wav24(tmp_path / "mix.wav", np.zeros((2, round(reel.frames / reel.fps * 48_000)), np.float32), 48_000)
    out = review_proxy(reel.path, tmp_path / "mix.wav", scenes, tmp_path / "proxy.mp4", height=180)
    info = probe(out)
    assert info.video.height == 180 and info.audio is not None
    assert abs(info.video.duration_s - reel.frames / reel.fps) <= 2 / 25
    assert packet_md5s(out) != packet_md5s(reel.path)  # re-rendered, unlike the deliverables
    assert not list(tmp_path.glob(".*partial*"))
