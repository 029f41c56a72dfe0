"""Where a reel's time goes: each stage of the pipeline timed on a synthetic reel, without Prefect.

Prints wall seconds per stage, the share of everything but sampling (target on a GPU, README
"Tests and benchmarks": ≤ 10 % of the run), and the model's passes: how many guided DiT passes the
generation made (each one a batch of cues, both CFG halves), their batch sizes and seconds per pass.
Usage: .venv/bin/python bench/pipeline_bench.py [--seconds 20] [--shots N] [--steps 50] [--model tiny] [--device auto]
(the issue-29 figure: ``--model demo --seconds 24 --shots 4``, the pipeline's default steps)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

from audiox_core.model.generate import SamplingSettings
from audiox_core.model.runtime import load_model
from audiox_core.reel.stages import analyse, choose_sheet, direct_generator, mix_reel, plan_sheet, render_cues
from audiox_core.sound.timeline import TimelineSettings
from audiox_core.video.lavfi_reel import make_reel
from audiox_core.video.mux import mux
from audiox_core.video.scenes import DetectorSettings

TIMES: dict[str, float] = {}
PASSES: list[tuple[int, float]] = []  # (batch rows, seconds) per DiT pass


def count_passes(dit) -> None:
    """Record every pass of the DiT (an instance attribute shadows the method, as compiled.py does)."""
    forward = dit.forward_once

    def counted(x, *args, **kwargs):
        start = time.perf_counter()
        out = forward(x, *args, **kwargs)
        PASSES.append((x.shape[0], time.perf_counter() - start))
        return out

    dit.forward_once = counted


@contextmanager
def timed(stage: str):
    start = time.perf_counter()
    yield
    TIMES[stage] = time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seconds", type=float, default=20.0, help="reel length (shots of 4 s)")
    p.add_argument("--shots", type=int, help="shots of equal length (default: one per 4 s)")
    p.add_argument("--steps", type=int, default=SamplingSettings().steps)
    p.add_argument("--model", default="tiny")
    p.add_argument("--device", default="auto")
    args = p.parse_args()
    fps = Fraction(25)
    count = args.shots or max(1, round(args.seconds / 4))
    shots = [round(args.seconds * fps / count)] * count
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with timed("make reel (ffmpeg, not part of a run)"):
            reel = make_reel(work / "reel.mp4", shot_frames=shots, fps=fps, size=(1280, 720))
        with timed("load model"):
            model = load_model(args.model, device=args.device)
        count_passes(model.network.model.model)
        with timed("probe + scenes + frames"):
            analysis = analyse(
                reel.path,
                work,
                DetectorSettings(),
                frame_fps=model.config.video.video_fps,
                frame_size=model.config.video.clip.image_size,
            )
        with timed("cue sheet + timeline"):
            sheet, origin = choose_sheet(analysis, "reel", 0, None, None, model.config.prompts)
            plan = plan_sheet(analysis, sheet, origin, "cues.yaml", TimelineSettings())
        cues = plan.cues
        with timed("generate (sampling, VAE, conditioning)"):
            rendered = render_cues(
                model.config,
                cues,
                analysis,
                plan.placements,
                work / "cues",
                direct_generator(model, SamplingSettings(steps=args.steps)),
            )
        with timed("mix + master (loudness, limiter, stems, pictures)"):
            mix_reel(analysis, rendered, work, work / "out")
        with timed("mux"):
            mux(reel.path, analysis.info.video.index, work / "out" / "mix.wav", work / "soundtrack.mp4")
    run_stages = {k: v for k, v in TIMES.items() if "not part" not in k and k != "load model"}
    total = sum(run_stages.values())
    print(
        f"reel: {len(shots)} shots, {reel.frames} frames at {fps} fps (1280×720), {len(cues)} cues, model {args.model} on {model.device}, {args.steps} steps"
    )
    for stage, seconds in TIMES.items():
        print(f"  {stage:42s} {seconds:8.2f} s")
    generate = run_stages["generate (sampling, VAE, conditioning)"]
    print(f"  {'run total (without model load)':42s} {total:8.2f} s")
    print(f"  everything but generation: {100 * (total - generate) / total:.1f} % of the run")
    if PASSES:
        rows = sorted({r for r, _ in PASSES})
        sampling = sum(s for _, s in PASSES)
        print(
            f"  model passes: {len(PASSES)} guided DiT passes (batch rows {rows}, CFG halves included), "
            f"{sampling:.2f} s in all, {sampling / len(PASSES):.3f} s per pass; the rest of generation "
            f"(conditioning, VAE decode, text encoder, writing) {generate - sampling:.2f} s"
        )


if __name__ == "__main__":
    main()
