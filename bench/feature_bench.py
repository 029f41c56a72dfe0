"""A whole feature through the pipeline: a synthetic 2-hour film (hundreds of shots of varied length,
a dialogue track) cut into scenes, its drafted cue sheet (a Foley cue per scene, music cues over
runs of scenes) generated, mixed, mastered and muxed; wall time per stage, windows per second, GPU
utilisation, and the share of the wall time that is not generation (target ≤ 10 %; target on one
H200: the whole feature in ≤ 15 min).

    python bench/feature_bench.py                    # CUDA: official-size config, random weights, 2 h
    .venv/bin/python bench/feature_bench.py --cpu-smoke   # tiny model, 10 min of footage, on the CPU

The official-size model is built from ../shared/audiox/config_base.json with synthetic weights
(speed does not depend on the values); its T5 text conditioner is swapped for the small byte-level
one (no download on a machine that cannot reach a hub; T5-base runs once per batch, small beside
100 sampling steps). On CUDA the DiT is compiled (audiox_core/model/compiled.py); a warm-up batch at
the generation batch size runs first and is timed separately. The last line reads
``wall_s=<x> non_generation_share=<y>``.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from audiox_core.model.checkpoint import load_weights
from audiox_core.model.compiled import compile_dit, compile_wanted
from audiox_core.model.conditioners import TextEncoder
from audiox_core.model.config import AudioXConfig
from audiox_core.model.generate import GenerationRequest, SamplingSettings, generate
from audiox_core.model.longform import SceneRequest, generate_scenes, pack_passes, plan_windows
from audiox_core.model.parity_weights import synthetic_state_dict
from audiox_core.model.runtime import LoadedModel, dtype_plan, load_model, place, resolve_device
from audiox_core.reel.stages import BatchGenerator, analyse, choose_sheet, mix_reel, plan_sheet, render_cues
from audiox_core.sound.timeline import TimelineSettings
from audiox_core.video.ffmpeg import run
from audiox_core.video.lavfi_reel import DIALOGUE, SOURCES
from audiox_core.video.mux import mux
from audiox_core.video.scenes import DetectorSettings

BASE_CONFIG = Path(__file__).resolve().parents[1].parent / "shared" / "audiox" / "config_base.json"
SHOT_SECONDS = (2, 3, 4, 5, 6, 8, 10, 12, 16, 24)  # shot lengths drawn from these (a feature's mix)
FPS = Fraction(24)
NON_GENERATION_TARGET = 0.10
FEATURE_TARGET_S = 15 * 60


def make_feature(path: Path, seconds: float, size: tuple[int, int], seed: int = 0) -> list[float]:
    """Encode each (source, length) once, join them by stream copy into ``seconds`` of picture with
    a dialogue track; returns the cut times."""
    rng = random.Random(seed)
    lengths: list[int] = []
    while sum(lengths) < seconds:
        lengths.append(rng.choice(SHOT_SECONDS))
    folder = path.parent / "segments"
    folder.mkdir(exist_ok=True)
    w, h = size
    listing = []
    for i, s in enumerate(lengths):
        source = i % len(SOURCES)  # neighbours always differ: every join is a hard cut
        segment = folder / f"s{source}_{s}.mp4"
        if not segment.exists():
            lavfi = SOURCES[source].format(w=w, h=h, fps=f"{FPS}") + f",trim=duration={s},format=yuv420p"
            run(
                "ffmpeg",
                ["-v", "error", "-y", "-f", "lavfi", "-i", lavfi, "-c:v", "libx264", "-preset", "veryfast"]
                + ["-g", "48", "-r", f"{FPS}", str(segment)],
                subject=segment,
                what="encoding a shot failed",
            )
        listing.append(f"file '{segment}'")
    (folder / "list.txt").write_text("\n".join(listing) + "\n")
    total = sum(lengths)
    run(
        "ffmpeg",
        ["-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(folder / "list.txt")]
        + ["-f", "lavfi", "-t", str(total), "-i", DIALOGUE, "-map", "0:v", "-map", "1:a", "-c:v", "copy"]
        + ["-c:a", "aac", "-b:a", "128k", "-shortest", str(path)],
        subject=path,
        what="joining the feature failed",
    )
    shutil.rmtree(folder)
    cuts, t = [], 0.0
    for s in lengths[:-1]:
        t += s
        cuts.append(t)
    return cuts


def official_size_model(device: torch.device) -> LoadedModel:
    """config_base.json with synthetic weights and the byte-level text conditioner."""
    cfg = AudioXConfig.from_json(BASE_CONFIG)
    cfg = dataclasses.replace(cfg, text=dataclasses.replace(cfg.text, kind="byte-t5"))
    network = load_weights(cfg, synthetic_state_dict(cfg, seed=0), "synthetic official-size")
    text = TextEncoder(cfg.text, cfg.cond_dim, None)
    place(network, text, device, dtype_plan(device, cfg.text.kind))
    compiled = compile_dit(network.model.model) if compile_wanted(device) else None
    return LoadedModel("official-size", "synthetic", cfg, network, text, "", True, device, compiled)


class GpuSampler:
    """Mean GPU utilisation (nvidia-smi, every 0.5 s) while generation runs."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.available = torch.cuda.is_available() and shutil.which("nvidia-smi") is not None

    def _poll(self) -> None:
        query = ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "-i", "0"]
        while not self._stop.wait(0.5):
            out = subprocess.run(query, capture_output=True, text=True, check=False).stdout.strip()
            if out.isdigit():
                self.samples.append(float(out))

    @contextmanager
    def sampling(self) -> Iterator[None]:
        if self.available:
            self._stop.clear()
            self._thread = threading.Thread(target=self._poll, daemon=True)
            self._thread.start()
        try:
            yield
        finally:
            self._stop.set()
            if self._thread:
                self._thread.join()

    def mean(self) -> str:
        return f"{sum(self.samples) / len(self.samples):.0f} %" if self.samples else "n/a (no CUDA)"


class Timed:
    def __init__(self) -> None:
        self.stages: dict[str, float] = {}
        self.generation_s = 0.0
        self.windows = 0
        self.passes = 0  # model passes as packed (pack_passes)
        self.wavefront_passes = 0  # what window k of each batch of scenes per pass would have taken

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.stages[name] = self.stages.get(name, 0.0) + time.perf_counter() - start

    def generator(self, model: LoadedModel, sampling: SamplingSettings, gpu: GpuSampler, batch: int) -> BatchGenerator:
        """direct_generator, counting windows, passes and the seconds spent inside the model."""
        cfg = model.config
        window, overlap = cfg.video.window_s * cfg.sample_rate, 2 * cfg.sample_rate

        def run_batch(cues: list, requests: list[SceneRequest]) -> list[torch.Tensor]:
            depths = [len(plan_windows(round(r.seconds * cfg.sample_rate), window, overlap)) for r in requests]
            self.windows += sum(depths)
            self.passes += len(pack_passes(depths, batch))
            self.wavefront_passes += sum(max(depths[i : i + batch]) for i in range(0, len(depths), batch))
            start = time.perf_counter()
            with gpu.sampling():
                out = generate_scenes(model, requests, sampling, batch_size=batch)
                if model.device.type == "cuda":
                    torch.cuda.synchronize()
            self.generation_s += time.perf_counter() - start
            return out

        return run_batch


def warm_up(model: LoadedModel, sampling: SamplingSettings, batch: int) -> str:
    """One full batch of full windows: compiles the DiT for that shape (CUDA) and loads the kernels.
    With the DiT compiled, the same batch again in eager mode: the compiled bf16 output's largest
    difference from eager's, relative to eager's peak (returned as a line for the report)."""
    cfg = model.config
    size = cfg.video.clip.image_size
    frames = np.random.default_rng(0).integers(0, 255, (cfg.video.n_frames, size, size, 3), dtype=np.uint8)
    requests = [GenerationRequest(frames, f"warm-up {i}", i, float(cfg.video.window_s)) for i in range(batch)]
    short = dataclasses.replace(sampling, steps=min(sampling.steps, 4))
    out = generate(model, requests, short)
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    if not (model.compiled and model.compiled.active):
        return "compiled against eager: not compiled here (torch.compile runs on CUDA only)"
    eager = generate(dataclasses.replace(model, compiled=None), requests, short)
    worst = max(float((a - b).abs().max() / b.abs().max().clamp_min(1e-6)) for a, b in zip(out, eager))
    return f"compiled against eager ({model.precision}, {short.steps} steps, batch {batch}): max |diff| {worst:.4f} of peak"


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cpu-smoke", action="store_true", help="tiny model, 10 min of footage, CPU, 8 steps")
    p.add_argument("--minutes", type=float, help="feature length (default 120; 10 with --cpu-smoke)")
    p.add_argument("--model", help="official-size (default), tiny, demo or a release folder")
    p.add_argument("--device", default=None, help="auto (default), cuda or cpu")
    p.add_argument("--steps", type=int, help=f"sampling steps (default {SamplingSettings().steps}; 8 with --cpu-smoke)")
    p.add_argument("--batch", type=int, default=16, help="windows per model pass (batches hold 4x as many cues)")
    args = p.parse_args(argv)
    smoke = args.cpu_smoke
    minutes = args.minutes or (10.0 if smoke else 120.0)
    device = resolve_device(args.device or ("cpu" if smoke else "auto"))
    sampling = SamplingSettings(steps=args.steps or (8 if smoke else SamplingSettings().steps))
    model_name = args.model or ("tiny" if smoke else "official-size")
    size = (640, 360) if smoke else (1280, 720)
    timed, gpu = Timed(), GpuSampler()
    with tempfile.TemporaryDirectory(prefix="feature_bench_") as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        truth = make_feature(work / "feature.mp4", minutes * 60, size)
        made_s = time.perf_counter() - started
        print(
            f"footage: {minutes:g} min, {len(truth) + 1} shots at {FPS} fps {size[0]}x{size[1]} ({made_s:.0f} s to make)"
        )
        start = time.perf_counter()
        model = official_size_model(device) if model_name == "official-size" else load_model(model_name, device=device)
        load_s = time.perf_counter() - start
        start = time.perf_counter()
        numerics = warm_up(model, sampling, args.batch)
        warm_s = time.perf_counter() - start
        compiled = model.compiled.active if model.compiled else False
        print(
            f"model: {model_name} on {device} ({model.precision}, DiT compiled: {compiled}); "
            f"load {load_s:.1f} s, warm-up {warm_s:.1f} s (not in the run's figures)"
        )
        print(numerics)
        wall = time.perf_counter()
        with timed.stage("probe + scenes + model frames"):
            analysis = analyse(
                work / "feature.mp4",
                work,
                DetectorSettings(),
                frame_fps=model.config.video.video_fps,
                frame_size=model.config.video.clip.image_size,
            )
        with timed.stage("spotting (cue sheet, timeline)"):
            sheet, origin = choose_sheet(analysis, "feature", 0, None, None, model.config.prompts)
            plan = plan_sheet(analysis, sheet, origin, "cues.yaml", TimelineSettings())
            cues, placements = plan.cues, plan.placements
        with timed.stage("generation batches (conditioning, sampling, VAE) + cue files"):
            rendered = render_cues(
                model.config,
                cues,
                analysis,
                placements,
                work / "cues",
                timed.generator(model, sampling, gpu, args.batch),
                batch_size=args.batch,
            )
        with timed.stage("mix + master (loudness, limiter, stems, pictures)"):
            mix_reel(analysis, rendered, work, work / "out")
        with timed.stage("mux"):
            mux(work / "feature.mp4", analysis.info.video.index, work / "out" / "mix.wav", work / "soundtrack.mp4")
        wall_s = time.perf_counter() - wall
    found = len(analysis.scenes.scenes) - 1
    share = (wall_s - timed.generation_s) / wall_s
    print(f"scenes: {found + 1} ({found} cuts found, {len(truth)} made); cues: {len(cues)}; windows: {timed.windows}")
    for name, seconds in timed.stages.items():
        print(f"  {name:62s} {seconds:8.1f} s")
    print(f"  {'inside the model (generate_scenes)':62s} {timed.generation_s:8.1f} s")
    print(
        f"windows per second: {timed.windows / timed.generation_s:.2f}; GPU utilisation while generating: {gpu.mean()}"
    )
    print(
        f"model passes: {timed.passes} packed ({timed.windows / max(timed.passes, 1):.1f} of {args.batch} windows each), "
        f"against {timed.wavefront_passes} for window k of each {args.batch} scenes per pass "
        f"({timed.windows / max(timed.wavefront_passes, 1):.1f} each): "
        f"{timed.wavefront_passes / max(timed.passes, 1):.2f}x fewer passes"
    )
    verdict = "" if smoke else f" (target ≤ {FEATURE_TARGET_S} s: {'met' if wall_s <= FEATURE_TARGET_S else 'missed'})"
    print(
        f"feature: {wall_s:.1f} s{verdict}; not generation: {100 * share:.1f} % "
        f"(target ≤ {100 * NON_GENERATION_TARGET:.0f} %)"
    )
    print(f"wall_s={wall_s:.1f} non_generation_share={share:.3f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
