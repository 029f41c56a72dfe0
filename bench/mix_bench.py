"""Mix and master speed and memory: a two-hour timeline with 1000 cues and a dialogue stem; and the
mux of 30 s of 1080p (measured first, median of three). Targets (README, "Mixing and mastering"):
≤ 60 s and ≤ 4 GB on 2 cores; mux ≤ 1 s.

    .venv/bin/python bench/mix_bench.py [--hours 2] [--cues 1000] [--preset ebu-r128] [--keep DIR]

Cue audio: 40 distinct 9 s WAVs (tones and noise), reused across the 1000 placements; dialogue: a
procedural voice-like signal (bursts at syllable rate with pauses) read block by block. The pauses are
digital silence on purpose (an 8 s one in every 20 s, longer than a 4 s block): a recursive filter
fed zeros decays into subnormal floats, which Intel cores compute ~50× slower (the meter once made
this bench five times slower there); keep them. Memory is the process's peak resident set size
(ru_maxrss, including everything loaded before the mix) plus the workers' count times the largest
worker's peak: an upper bound, since forked workers share pages. The figures print with the CPU
they were measured on.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import resource
import shutil
import statistics
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from audiox_core.reel.cues import SceneLook
from audiox_core.reel.cuesheet import draft_sheet, resolve
from audiox_core.sound.audio import write_wav24
from audiox_core.sound.mix import MixSettings, master
from audiox_core.sound.timeline import Placement, place_cues
from audiox_core.video.lavfi_reel import make_reel
from audiox_core.video.mux import mux
from audiox_core.video.scenes import Scene

RATE = 48_000


class SyntheticDialogue:
    """Voice-like stereo audio: 140 Hz voiced bursts at syllable rate with pauses of digital
    silence (8 s in every 20), one 20 s pattern repeated (reading it costs what reading a decoded
    dialogue file would)."""

    PERIOD = 20 * RATE

    def __init__(self) -> None:
        t = np.arange(self.PERIOD) / RATE
        voiced = 0.3 * np.sin(2 * np.pi * 140 * t) + 0.1 * np.sin(2 * np.pi * 280 * t)
        gate = (np.sin(2 * np.pi * 4 * t) > 0.2) & (np.sin(2 * np.pi * 0.05 * t + 1) > -0.3)
        self.pattern = np.tile((voiced * gate).astype(np.float32), 2)

    def read(self, start: int, n: int) -> np.ndarray:
        out = np.empty((2, n), np.float32)
        done = 0
        while done < n:
            offset = (start + done) % self.PERIOD
            take = min(n - done, self.PERIOD)
            out[:, done : done + take] = self.pattern[offset : offset + take]
            done += take
        return out


def cue_library(folder: Path, count: int = 40, seconds: float = 9.0) -> list[Path]:
    """Cue files a little longer than the average placement (7.2 s plus crossfades)."""
    rng = np.random.default_rng(0)
    t = np.arange(round(seconds * RATE)) / RATE
    paths = []
    for i in range(count):
        tone = np.sin(2 * np.pi * (110 * (1 + i % 7)) * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 0.2 * (i + 1) * t))
        audio = 0.4 * np.stack((tone, np.roll(tone, 100))) + 0.05 * rng.standard_normal((2, len(t)))
        paths.append(folder / f"cue{i:02d}.wav")
        write_wav24(paths[-1], np.clip(audio, -0.99, 0.99).astype(np.float32), RATE)
    return paths


FPS = Fraction(24000, 1001)


def timeline(hours: float, cues: int) -> list[Scene]:
    """``cues`` / 2 scenes with random lengths over ``hours`` (one Foley and one music cue each)."""
    total_frames = round(hours * 3600 * FPS)
    rng = np.random.default_rng(1)
    cuts = np.sort(rng.choice(np.arange(48, total_frames - 48), cues // 2 - 1, replace=False))
    bounds = [0, *cuts.tolist(), total_frames]
    return [
        Scene(i, a, b, float(a / FPS), float(b / FPS), "", "") for i, (a, b) in enumerate(itertools.pairwise(bounds))
    ]


def placements_of(scenes: list[Scene]) -> list[Placement]:
    """The drafted cue sheet's placements, as the pipeline's ``plan_sheet`` makes them; the mood changes at
    every cut, so the draft has a music cue per scene."""
    looks = [SceneLook(20.0 if i % 2 else 1.0, 120.0, 20.0) for i in range(len(scenes))]
    sheet = draft_sheet("bench", scenes, FPS, looks, run_seed=0)
    return place_cues([s.as_span() for s in resolve(sheet, scenes, FPS, "drafted cue sheet")])


def cpu() -> str:
    """The CPU model and core count the figures come from (they depend on it: see the pauses above)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    models = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return f"{models[0] if models else platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hours", type=float, default=2.0)
    p.add_argument("--cues", type=int, default=1000)
    p.add_argument("--preset", default="ebu-r128")
    p.add_argument("--keep", help="write the outputs here instead of a temporary folder")
    p.add_argument("--json", help="also write the figures to this JSON file")
    args = p.parse_args()
    work = Path(args.keep or tempfile.mkdtemp(prefix="mix-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        # The mux first, on a quiet machine (after the mix the kernel is still writing 10 GB to disk).
        clip = make_reel(
            work / "1080p.mp4", shot_frames=(250, 250, 250), fps=Fraction(25), size=(1920, 1080), audio=False
        )
        write_wav24(work / "mix30.wav", SyntheticDialogue().read(0, 30 * RATE), RATE)
        mux_runs = []
        for _ in range(3):
            start = time.perf_counter()
            mux(clip.path, 0, work / "mix30.wav", work / "soundtrack.mp4")
            mux_runs.append(time.perf_counter() - start)
        mux_s = statistics.median(mux_runs)

        library = cue_library(work)
        scenes = timeline(args.hours, args.cues)
        placements = placements_of(scenes)
        cues = [(pl, library[i % len(library)]) for i, pl in enumerate(placements)]
        total = round(scenes[-1].end_s * RATE)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
        start = time.perf_counter()
        report = master(cues, SyntheticDialogue(), total, work / "out", MixSettings(preset=args.preset))
        mix_s = time.perf_counter() - start
        parent_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
        worker_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e6  # the largest worker
        peak_gb = (
            parent_gb + MixSettings().workers * worker_gb
        )  # an upper bound: pages the workers share with the parent count twice

    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    mix = report.mix
    figures = {
        "cpu": cpu(),
        "hours": args.hours,
        "cues": len(cues),
        "preset": args.preset,
        "mix_seconds": round(mix_s, 1),
        "peak_rss_gb": round(peak_gb, 2),
        "rss_before_mix_gb": round(rss_before, 2),
        "parent_rss_gb": round(parent_gb, 2),
        "worker_rss_gb": round(worker_gb, 2),
        "mux_30s_1080p_seconds": round(mux_s, 2),
        "mix_lufs": mix.integrated_lufs,
        "mix_true_peak_dbtp": mix.true_peak_dbtp,
        "limiter_max_gain_reduction_db": report.max_gain_reduction_db,
    }
    print(f"on {figures['cpu']}:")
    print(
        f"mix + master of {args.hours:g} h, {len(cues)} cues, dialogue stem ({args.preset}): {mix_s:.1f} s (target ≤ 60 s), "
        f"peak RSS {peak_gb:.2f} GB (target ≤ 4 GB; parent {parent_gb:.2f} GB, {rss_before:.2f} GB of it before mixing, + {MixSettings().workers} workers ≤ {worker_gb:.2f} GB each)"
    )
    print(
        f"  mix {mix.integrated_lufs} LUFS, LRA {mix.loudness_range_lu} LU, true peak {mix.true_peak_dbtp} dBTP, limiter ≤ {report.max_gain_reduction_db} dB"
    )
    print(
        f"mux of 30 s 1080p H.264 (video copied, AAC encode): {mux_s:.2f} s, median of {', '.join(f'{r:.2f}' for r in mux_runs)} (target ≤ 1 s)"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
