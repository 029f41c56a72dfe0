"""Scene detection on footage that fooled the first detector, each variant made with ffmpeg from
real street footage with known cuts (bikes.mp4): letterbox bars whose values drift, monochrome at
half contrast, interlaced PAL MPEG-2 in transport stream, heavy film grain; the minimum scene length
rule; and one timeline for picture and sound on a file whose video starts after its audio."""

from __future__ import annotations

import json
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from conftest import MEDIA, needs_media
from drafted import drafted_placements

from audiox_core.sound.audio import extract_audio
from audiox_core.sound.timeline import MUSIC
from audiox_core.video.lavfi_reel import make_reel
from audiox_core.video.mux import mux
from audiox_core.video.probe import probe
from audiox_core.video.scenes import DetectorSettings, FrameCurves, detect_scenes, find_cuts

BIKES = MEDIA / "video" / "bikes.mp4"
X264 = ("-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p")


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


def truth() -> list[int]:
    return json.loads((MEDIA / "MANIFEST.json").read_text())["videos"]["video/bikes.mp4"]["cuts"]


def cuts(path: Path) -> list[int]:
    return [s.start_frame for s in detect_scenes(path)[1].scenes[1:]]


def bars(drift: str) -> str:
    """Top and bottom bars of a 2.39:1 picture inside 16:9, near-black (RGB ``drift``) in every other
    second and black in between, as re-encoded letterbox footage does."""
    box = f"color={drift}:t=fill:enable='lt(mod(n\\,50)\\,25)'"
    return f"scale=640:268,pad=640:360:0:46:black,drawbox=x=0:y=0:w=iw:h=46:{box},drawbox=x=0:y=314:w=iw:h=46:{box}"


@needs_media
@pytest.mark.parametrize("drift", ["0x000100", "0x030503"])
def test_letterbox_with_drifting_bars(tmp_path: Path, drift: str) -> None:
    clip = tmp_path / "letterbox.mp4"
    ffmpeg("-i", str(BIKES), "-vf", bars(drift), *X264, str(clip))
    assert cuts(clip) == truth()


@needs_media
def test_monochrome_at_half_contrast_gets_a_lower_threshold(tmp_path: Path) -> None:
    clip = tmp_path / "mono.mp4"
    ffmpeg("-i", str(BIKES), "-vf", "hue=s=0,eq=contrast=0.5", *X264, str(clip))
    result = detect_scenes(clip)[1]
    assert [s.start_frame for s in result.scenes[1:]] == truth()
    assert result.threshold_used < DetectorSettings().threshold
    assert result.to_dict()["threshold_used"] == result.threshold_used


@needs_media
def test_film_grain(tmp_path: Path) -> None:
    clip = tmp_path / "grain.mp4"
    ffmpeg("-i", str(BIKES), "-vf", "noise=alls=30:allf=t", *X264, str(clip))
    assert cuts(clip) == truth()


@needs_media
def test_interlaced_mpeg2_transport_stream_cut_between_fields(tmp_path: Path) -> None:
    """50p made from the 25p clip, shifted by one field so every cut falls between the two fields
    of a frame, woven into 25i top field first; the cut lands on the frame whose first field is new."""
    clip = tmp_path / "pal.ts"
    weave = "fps=50,trim=start_frame=1,setpts=PTS-STARTPTS,tinterlace=mode=interleave_top,setfield=tff"
    ffmpeg(
        "-i",
        str(BIKES),
        "-vf",
        weave,
        "-c:v",
        "mpeg2video",
        "-q:v",
        "3",
        "-flags",
        "+ilme+ildct",
        "-top",
        "1",
        str(clip),
    )
    info = probe(clip)
    assert info.video.first_field == "top"
    result = detect_scenes(info)[1]
    assert [s.start_frame for s in result.scenes[1:]] == truth()
    assert result.interlaced == "top"


def test_the_minimum_length_counts_from_the_last_accepted_cut_and_the_strongest_wins() -> None:
    change = [0.0] * 80
    change[20], change[26] = 40.0, 90.0  # 6 frames apart: the stronger one is the cut
    change[33] = 50.0  # 7 after that: too close
    change[43] = 50.0  # 17 after the accepted cut (10 after the rejected one): a cut
    curves = FrameCurves(times=[Fraction(i, 25) for i in range(80)], change=change, brightness=[100.0] * 80)
    settings = DetectorSettings(min_scene_frames=15, min_scene_s=0.5)
    assert find_cuts(curves, settings) == [26, 43]


def frame_times(path: Path) -> list[float]:
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "frame=pts_time",
            "-of",
            "csv=p=0",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sorted(float(x.strip(",")) for x in out.split())


def join(out: Path, video: Path, sound: Path, *, video_offset: float = 0.0, sound_offset: float = 0.0) -> None:
    """``video``'s picture and ``sound``'s audio, stream-copied into ``out``, each delayed as asked."""
    inputs = ["-itsoffset", f"{video_offset}", "-i", str(video), "-itsoffset", f"{sound_offset}", "-i", str(sound)]
    ffmpeg(*inputs, "-map", "0:v", "-map", "1:a", "-c", "copy", str(out))


def test_picture_and_sound_share_the_container_timeline(tmp_path: Path) -> None:
    """Video starting 0.5 s after its audio: each cue starts at its scene's first frame to the sample,
    the reel's own audio keeps its place, and the muxed picture keeps its offset to the new sound."""
    reel = make_reel(tmp_path / "r.mp4", shot_frames=(24, 36), fps=Fraction(24), size=(320, 180), audio=False)
    tone = tmp_path / "tone.wav"
    ffmpeg(
        "-f", "lavfi", "-i", "sine=f=440:sample_rate=48000,atrim=duration=3", "-ac", "2", "-c:a", "pcm_s16le", str(tone)
    )
    late = tmp_path / "late.mkv"
    join(late, reel.path, tone, video_offset=0.5)
    info, scenes = detect_scenes(late)
    starts = frame_times(late)  # ffprobe's frame times, absolute
    container_start = float(
        json.loads(
            subprocess.run(
                ["ffprobe", "-v", "error", "-show_entries", "format=start_time", "-of", "json", str(late)],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )["format"]["start_time"]
    )
    first_frames = [starts[s.start_frame] - container_start for s in scenes.scenes]
    assert first_frames[0] > 0.45  # the picture really starts late
    assert [s.start_s for s in scenes.scenes] == pytest.approx(first_frames, abs=1e-6)
    placements = drafted_placements(scenes.scenes, scenes.fps)
    music = [p for p in placements if p.kind == MUSIC]
    foley = [p for p in placements if p.kind != MUSIC]
    assert [p.start for p in foley] == [round(t * 48_000) for t in first_frames]
    assert music[0].start == foley[0].start

    # The reel's sound: sample 0 is time 0 of the container, as in the source; a late sound is padded.
    wave = extract_audio(tone, 0, tmp_path / "t.f32").read(0, 96_000)
    assert np.allclose(extract_audio(late, info.audio.index, tmp_path / "a.f32").read(0, 96_000), wave, atol=1e-4)
    late_sound = tmp_path / "late_sound.mkv"
    join(late_sound, reel.path, tone, sound_offset=0.25)
    padded = extract_audio(late_sound, probe(late_sound).audio.index, tmp_path / "p.f32").read(0, 96_000)
    assert np.abs(padded[:, :12_000]).max() == 0
    assert np.allclose(padded[:, 12_000:], wave[:, :84_000], atol=1e-4)

    # The muxed deliverable: the picture still starts where the scenes say, the new sound at zero.
    wav = tmp_path / "mix.wav"
    ffmpeg("-f", "lavfi", "-i", "sine=f=1000:sample_rate=48000,atrim=duration=3", "-c:a", "pcm_s24le", str(wav))
    out = tmp_path / "out.mp4"
    mux(late, info.video.index, wav, out)
    streams = json.loads(
        subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries", "stream=codec_type,start_time", "-of", "json", str(out)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )["streams"]
    start = {s["codec_type"]: float(s["start_time"]) for s in streams}
    assert start["video"] - start["audio"] == pytest.approx(scenes.scenes[0].start_s, abs=1e-3)
