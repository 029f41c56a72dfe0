"""The stages of one reel as plain functions over files: analyse, render cues, mix, mux.

Prefect tasks wrap these one to one; tests call them directly. Each takes paths and small values
and writes its results to the folder it is given.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from audiox_core.cues import Cue, measure, plan_cues
from audiox_core.media.audio import decode_audio, read_wav, resample, write_wav24
from audiox_core.media.decode import ModelFrames
from audiox_core.media.edl import scenes_csv, scenes_edl
from audiox_core.media.frames import FrameStore
from audiox_core.media.mix import DIALOGUE, PlacedCue, MixSettings, build_stem, level_cue, mix_stems
from audiox_core.media.probe import MediaInfo
from audiox_core.media.scenes import DetectorSettings, SceneList, detect_scenes
from audiox_core.media.timecode import frame_to_sample
from audiox_core.model.checkpoint import LoadedModel
from audiox_core.model.generate import SamplingSettings
from audiox_core.model.longform import SceneRequest, generate_scenes
from audiox_core.storage import sha256_file, write_atomic

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Analysis:
    info: MediaInfo
    scenes: SceneList
    frames: FrameStore


@dataclass(frozen=True)
class RenderedCue:
    scene_index: int
    kind: str
    prompt: str
    seed: int
    seconds: float
    path: Path
    sha256: str


@dataclass(frozen=True)
class MixSummary:
    rate: int
    samples: int
    gain_db: float
    peak_dbfs: float
    stems: tuple[str, ...]


def analyse(path: Path, work: Path, detector: DetectorSettings, *, frame_fps: int, frame_size: int, progress: Progress | None = None) -> Analysis:
    """Probe the file, then one decoding pass: scene cuts plus the model's frames."""
    model_frames = ModelFrames(work / "frames.rgb", fps=frame_fps, size=frame_size)
    info, scenes = detect_scenes(path, detector, model_frames=model_frames, progress=progress)
    return Analysis(info, scenes, FrameStore.open(model_frames.path, frame_fps, frame_size))


def write_scene_exports(scenes: SceneList, folder: Path, title: str, clip_name: str) -> list[Path]:
    """scenes.json, scenes.csv and scenes.edl (CMX 3600) side by side."""
    files = {
        "scenes.json": json.dumps(scenes.to_dict(), indent=2) + "\n",
        "scenes.csv": scenes_csv(scenes),
        "scenes.edl": scenes_edl(scenes, title, clip_name),
    }
    for name, text in files.items():
        write_atomic(folder / name, text.encode())
    return [folder / name for name in files]


def reel_cues(analysis: Analysis, run_seed: int) -> list[Cue]:
    looks = [measure(analysis.frames.between(s.start_s, s.end_s)) for s in analysis.scenes.scenes]
    return plan_cues(analysis.scenes.scenes, looks, run_seed)


def render_cues(
    model: LoadedModel,
    cues: Sequence[Cue],
    analysis: Analysis,
    sampling: SamplingSettings,
    out_dir: Path,
    *,
    rate: int = 48_000,
    batch_size: int = 8,
    cue_peak_dbfs: float = MixSettings.cue_peak_dbfs,
    progress: Progress | None = None,
) -> list[RenderedCue]:
    """Generate every cue (batched, long scenes in windows), resample to ``rate``, level, write WAVs."""
    out_dir.mkdir(parents=True, exist_ok=True)
    scenes = analysis.scenes
    rendered: list[RenderedCue] = []
    for first in range(0, len(cues), batch_size):
        chunk = cues[first : first + batch_size]
        requests, lengths = [], []
        for cue in chunk:
            scene = scenes.scenes[cue.scene_index]
            samples = frame_to_sample(scene.end_frame, scenes.fps, rate) - frame_to_sample(scene.start_frame, scenes.fps, rate)
            lengths.append(samples)
            frames = analysis.frames.between(scene.start_s, scene.end_s)
            requests.append(SceneRequest(frames, cue.prompt, cue.seed, samples / rate))
        for cue, samples, audio in zip(chunk, lengths, generate_scenes(model, requests, sampling)):
            pcm = _fit(resample(audio, model.config.sample_rate, rate), samples)
            path = out_dir / f"scene{cue.scene_index:04d}_{cue.kind}.wav"
            write_wav24(path, level_cue(pcm, cue_peak_dbfs), rate)
            rendered.append(RenderedCue(cue.scene_index, cue.kind, cue.prompt, cue.seed, samples / rate, path, sha256_file(path)))
        if progress:
            progress(len(rendered), len(cues))
    return rendered


def _fit(audio: np.ndarray, samples: int) -> np.ndarray:
    """Trim or zero-pad (C, N) to exactly ``samples`` (resampling can be off by one)."""
    if audio.shape[1] >= samples:
        return audio[:, :samples]
    return np.pad(audio, ((0, 0), (0, samples - audio.shape[1])))


def mix_reel(analysis: Analysis, rendered: Sequence[RenderedCue], out_dir: Path, settings: MixSettings = MixSettings()) -> MixSummary:
    """Stems (foley, music, and dialogue = the reel's own audio) and mix.wav, 48 kHz 24-bit, picture length."""
    scenes, rate = analysis.scenes, settings.rate
    total = frame_to_sample(scenes.frames, scenes.fps, rate)
    stems: dict[str, np.ndarray] = {}
    for kind in sorted({c.kind for c in rendered}):
        placed = [
            PlacedCue(kind, frame_to_sample(scenes.scenes[c.scene_index].start_frame, scenes.fps, rate), read_wav(c.path)[0])
            for c in rendered
            if c.kind == kind
        ]
        stems[kind] = build_stem(placed, total, rate, settings.fade_ms)
    if analysis.info.audio is not None:
        stems[DIALOGUE] = _fit(decode_audio(analysis.info.path, analysis.info.audio.index, rate), total)
    result = mix_stems(stems, settings)
    (out_dir / "stems").mkdir(parents=True, exist_ok=True)
    for kind, audio in result.stems.items():
        write_wav24(out_dir / "stems" / f"{kind}.wav", audio, rate)
    write_wav24(out_dir / "mix.wav", result.mix, rate)
    return MixSummary(rate, total, result.gain_db, result.peak_dbfs, tuple(sorted(result.stems)))


def torch_version() -> str:
    cuda = torch.version.cuda
    return f"{torch.__version__}" + (f" (CUDA {cuda})" if cuda and torch.cuda.is_available() else "")
