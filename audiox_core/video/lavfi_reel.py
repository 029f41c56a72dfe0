"""Synthetic footage made by ffmpeg's lavfi sources: shots with known cuts, moving content, and a
dialogue-like track (voiced bursts at syllable rate with pauses). Used by the demo and the tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from audiox_core.video.ffmpeg import run

# Visually distinct moving sources, so every join is a hard cut.
SOURCES = (
    "testsrc2=size={w}x{h}:rate={fps}",
    "mandelbrot=size={w}x{h}:rate={fps}",
    # Colours and end points given: ffmpeg 5.1's gradients draws them at random whatever the seed,
    # which made every reel a different picture (a cut's strength changed from run to run).
    "gradients=size={w}x{h}:rate={fps}:speed=0.05:seed=7:n=2:c0=0x2060c0:c1=0xe0a040:x0=1:y0=1:x1={w}:y1={h}",
    "smptehdbars=size={w}x{h}:rate={fps}",
)

# Voiced bursts (fundamental 140 Hz with two harmonics) gated at ~4 syllables/s, with pauses.
DIALOGUE = (
    "aevalsrc='(0.30*sin(2*PI*140*t)+0.15*sin(2*PI*280*t)+0.08*sin(2*PI*560*t))"
    "*gt(sin(2*PI*4*t),0.2)*gt(sin(2*PI*0.35*t+1),-0.3)':s=48000:c=stereo"
)


@dataclass(frozen=True)
class SyntheticReel:
    path: Path
    fps: Fraction
    cuts: tuple[int, ...]  # the first frame of every shot after the first
    frames: int


def make_reel(
    path: Path,
    shot_frames: Sequence[int] = (60, 45, 60, 45),
    fps: Fraction = Fraction(30000, 1001),
    size: tuple[int, int] = (640, 360),
    audio: bool = True,
    codec: str = "libx264",
) -> SyntheticReel:
    """Encode shots of ``shot_frames`` frames each (cycling through SOURCES) into ``path``."""
    w, h = size
    rate = f"{fps.numerator}/{fps.denominator}"
    args: list[str] = ["-v", "error", "-y"]
    for i, n in enumerate(shot_frames):
        args += [
            "-f",
            "lavfi",
            "-i",
            SOURCES[i % len(SOURCES)].format(w=w, h=h, fps=rate) + f",trim=end_frame={n},setpts=PTS-STARTPTS",
        ]
    total = sum(shot_frames)
    if audio:
        args += ["-f", "lavfi", "-t", str(float(total / fps)), "-i", DIALOGUE]
    chain = "".join(f"[{i}:v]format=yuv420p[v{i}];" for i in range(len(shot_frames)))
    chain += "".join(f"[v{i}]" for i in range(len(shot_frames))) + f"concat=n={len(shot_frames)}:v=1:a=0[v]"
    args += ["-filter_complex", chain, "-map", "[v]", "-c:v", codec, "-g", "30"]
    if codec == "libx264":
        args += ["-pix_fmt", "yuv420p", "-preset", "veryfast"]
    if audio:
        args += ["-map", f"{len(shot_frames)}:a", "-c:a", "aac", "-b:a", "128k"]
    run("ffmpeg", [*args, "-r", rate, str(path)], subject=path, what="making a synthetic reel failed")
    cuts, acc = [], 0
    for n in shot_frames[:-1]:
        acc += n
        cuts.append(acc)
    return SyntheticReel(path, fps, tuple(cuts), total)
