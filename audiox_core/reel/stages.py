"""The stages of one reel as plain functions over files (analyse, render cues, mix, mux); Prefect tasks wrap them."""

from __future__ import annotations

import contextvars
import hashlib
import json
import logging
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

import numpy as np
import torch

from audiox_core.errors import InputError
from audiox_core.model.config import AudioXConfig, TaskPrompts
from audiox_core.model.generate import SamplingSettings
from audiox_core.model.inpaint import Span
from audiox_core.model.longform import WINDOW_OVERLAP_S, SceneRequest, generate_scenes, plan_windows
from audiox_core.model.runtime import LoadedModel
from audiox_core.provenance.records import GivenSound, RenderedCue
from audiox_core.reel.cues import Cue, SceneLook, cue_file, measure
from audiox_core.reel.cuesheet import CueSheet, SpannedCue, draft_sheet, is_draft, music_cue_csv, resolve
from audiox_core.reel.daw_reel import Stamps
from audiox_core.reel.given_sound import cue_request, finished_cue, read_given_audio, read_previous_cue, span_list
from audiox_core.sound.audio import MIX_RATE, extract_audio, resample, write_wav24
from audiox_core.sound.bwf import Bext, read_bext, restamp, write_stamped
from audiox_core.sound.loudness import LoudnessReport
from audiox_core.sound.mix import MixSettings, master
from audiox_core.sound.pictures import ReviewPictures
from audiox_core.sound.timeline import Placement, TimelineSettings, place_cues, to_sample
from audiox_core.store.files import sha256_file, write_atomic
from audiox_core.video.decode import ModelFrames
from audiox_core.video.edl import scenes_csv, scenes_edl
from audiox_core.video.frames import FrameStore
from audiox_core.video.probe import MediaInfo
from audiox_core.video.scenes import DetectorSettings, SceneList, detect_scenes

Progress = Callable[[int, int], None]
T = TypeVar("T")
R = TypeVar("R")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Analysis:
    info: MediaInfo
    scenes: SceneList
    frames: FrameStore
    picture: bool = True  # False for a text brief: the model is given no frames at all

    def model_frames(self, start_s: float, end_s: float) -> np.ndarray:
        """The frames the model is given for [start_s, end_s): none at all without a picture."""
        if not self.picture:
            return np.zeros((0, self.frames.size, self.frames.size, 3), np.uint8)
        return self.frames.between(start_s, end_s)


def analyse(
    path: Path,
    work: Path,
    detector: DetectorSettings,
    *,
    frame_fps: int,
    frame_size: int,
    progress: Progress | None = None,
    known_cuts: Sequence[int] | None = None,
) -> Analysis:
    """Probe the file, then one decoding pass: scene cuts (or the ``known_cuts`` of a storyboard)
    plus the model's frames."""
    model_frames = ModelFrames(work / "frames.rgb", fps=frame_fps, size=frame_size)
    info, scenes = detect_scenes(path, detector, model_frames=model_frames, progress=progress, known_cuts=known_cuts)
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


def reel_looks(analysis: Analysis) -> list[SceneLook]:
    return [measure(analysis.frames.between(s.start_s, s.end_s)) for s in analysis.scenes.scenes]


@dataclass(frozen=True)
class SheetPlan:
    """What a cue sheet asks of the generate and mix stages: the cues to render, where each sits, and
    the sheet's cues resolved on the reel (muted ones too, for the review and the exports)."""

    sheet: CueSheet
    origin: str  # "given", "edited" (the reel's stored sheet) or "draft"
    spanned: tuple[SpannedCue, ...]
    cues: tuple[Cue, ...]
    placements: tuple[Placement, ...]
    sheet_name: str = "the reel's cue sheet"  # how errors about its cues name it


def choose_sheet(
    analysis: Analysis,
    title: str,
    run_seed: int,
    given: CueSheet | None,
    stored: CueSheet | None,
    task: TaskPrompts = TaskPrompts(),
) -> tuple[CueSheet, str]:
    """The sheet a run follows: the one given, else the reel's stored sheet when a producer edited it
    and it still fits the reel's scenes, else a fresh draft in the model's words (``task``; so a
    changed run seed or model redrafts a sheet nobody edited)."""
    if given is not None:
        return given, "given"
    scenes, fps = analysis.scenes.scenes, analysis.scenes.fps
    looks = reel_looks(analysis)
    if stored is not None and not is_draft(stored, scenes, fps, looks, task) and _fits(stored, analysis):
        return stored, "edited"
    return draft_sheet(title, scenes, fps, looks, run_seed, task), "draft"


def _fits(sheet: CueSheet, analysis: Analysis) -> bool:
    try:
        resolve(sheet, analysis.scenes.scenes, analysis.scenes.fps, "stored cue sheet")
    except InputError as e:
        log.warning("the reel's stored cue sheet no longer fits its scenes (%s): drafting a new one", e)
        return False
    return True


def plan_sheet(analysis: Analysis, sheet: CueSheet, origin: str, name: str, timeline: TimelineSettings) -> SheetPlan:
    """Resolve the sheet on the reel and place its cues; muted cues keep their place (their neighbours'
    crossfades do not move) but are neither generated nor mixed."""
    spanned = resolve(sheet, analysis.scenes.scenes, analysis.scenes.fps, name)
    placed = place_cues([s.as_span() for s in spanned], timeline)
    muted = {(s.scene_index, s.cue.kind) for s in spanned if s.cue.mute}
    cues = tuple(s.as_cue() for s in spanned if not s.cue.mute)
    placements = tuple(p for p in placed if (p.scene_index, p.kind) not in muted)
    return SheetPlan(sheet, origin, tuple(spanned), cues, placements)


def write_cue_exports(plan: SheetPlan, analysis: Analysis, folder: Path) -> list[Path]:
    """cues.yaml (the sheet this version followed) and music_cues.csv (the distributor's music cue sheet)."""
    files = {
        "cues.yaml": plan.sheet.to_yaml(),
        "music_cues.csv": music_cue_csv(plan.spanned, analysis.scenes.fps, analysis.scenes.scenes),
    }
    for name, text in files.items():
        write_atomic(folder / name, text.encode())
    return [folder / name for name in files]


BatchGenerator = Callable[[list[Cue], list[SceneRequest]], list[torch.Tensor]]


def direct_generator(
    model: LoadedModel, sampling: SamplingSettings, overlap_s: float = WINDOW_OVERLAP_S, batch_size: int = 8
) -> BatchGenerator:
    """Batches straight through a model loaded in this process, ``batch_size`` windows per pass."""
    return lambda cues, requests: generate_scenes(model, requests, sampling, overlap_s=overlap_s, batch_size=batch_size)


PACK = 4  # a batch holds this many passes' worth of cues: its scenes' windows keep the passes full


def render_cues(
    config: AudioXConfig,
    cues: Sequence[Cue],
    analysis: Analysis,
    placements: Sequence[Placement],
    out_dir: Path,
    generate: BatchGenerator,
    *,
    reuse: Mapping[tuple[int, str], Path] | None = None,
    given: Mapping[tuple[int, str], GivenSound] | None = None,
    rate: int = MIX_RATE,
    batch_size: int = 8,
    cue_peak_dbfs: float = -6.0,
    overlap_s: float = WINDOW_OVERLAP_S,
    progress: Progress | None = None,
    in_flight: int = 1,
    stamps: Stamps | None = None,
) -> list[RenderedCue]:
    """Generate every cue for its placement's span (batched, long cues in windows), resample to
    ``rate``, level its peak and write it as a WAV. Cues in ``reuse`` (a finished earlier
    generation with the same key) are copied instead of generated; a cue in ``given`` starts from
    that sound (its previous version, spans of it made again, or a sketch it completes:
    given_sound.py). ``generate`` runs one batch of
    requests at the model's rate (``PACK`` × ``batch_size`` cues; the generator packs their windows
    into passes of ``batch_size``): ``direct_generator`` here, or the pipeline's cached Prefect task
    (in this process or on an inference worker), so a rerun skips the batches that finished.
    ``in_flight`` batches are sent at once (inference workers on several machines take them in
    parallel); their results are written in the batches' order either way. With ``stamps`` each cue
    file is a broadcast WAV spotted to its place on the timeline (a reused cue keeps its chunk when
    its place is unchanged, so it stays byte for byte the file it was)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    reuse, given = reuse or {}, given or {}
    hop_s = config.autoencoder.hop / config.sample_rate
    where = {(p.scene_index, p.kind): p for p in placements}
    window = config.video.window_s
    rendered: list[RenderedCue] = []

    def finish(
        cue: Cue,
        placement: Placement,
        frames: np.ndarray,
        path: Path,
        elapsed: float,
        reused: bool,
        audio_input: dict[str, Any] | None = None,
    ) -> None:
        windows = len(plan_windows(placement.length, window * rate, round(overlap_s * rate)))
        rendered.append(
            RenderedCue(
                cue.scene_index,
                cue.kind,
                cue.prompt,
                cue.seed,
                placement.length / rate,
                path,
                sha256_file(path),
                placement,
                hashlib.sha256(frames.tobytes()).hexdigest(),
                windows,
                elapsed,
                reused,
                audio_input,
            )
        )

    todo = []
    for cue in cues:
        placement = where[(cue.scene_index, cue.kind)]
        frames = analysis.model_frames(placement.start / rate, (placement.start + placement.length) / rate)
        path = out_dir / PurePosixPath(cue_file(cue.scene_index, cue.kind)).name
        if (cue.scene_index, cue.kind) in reuse:
            shutil.copyfile(reuse[(cue.scene_index, cue.kind)], path)
            if stamps is not None:
                _respot(path, stamps.cue(cue.scene_index, cue.kind, cue.prompt, placement.start))
            finish(cue, placement, frames, path, 0.0, True)
        else:
            todo.append((cue, placement, frames, path))

    made_here = {(c.scene_index, c.kind) for c, _, _, _ in todo}
    sounds = {w: given_samples(g, rate) for w, g in given.items() if w in made_here}  # read before any sampling

    def request(cue: Cue, placement: Placement, frames: np.ndarray) -> SceneRequest:
        g = given.get((cue.scene_index, cue.kind))
        sound = sounds.get((cue.scene_index, cue.kind))
        name = g.name if g else f"cue {cue.kind} of scene {cue.scene_index}"
        return cue_request(cue, frames, placement.length / rate, sound, rate, config.sample_rate, hop_s, name)

    requests = {(c.scene_index, c.kind): request(c, p, frames) for c, p, frames, _ in todo}

    def sample(chunk: list[tuple[Cue, Placement, np.ndarray, Path]]) -> tuple[list[torch.Tensor], float]:
        started = time.perf_counter()
        audios = generate([c for c, _, _, _ in chunk], [requests[(c.scene_index, c.kind)] for c, _, _, _ in chunk])
        return audios, (time.perf_counter() - started) / len(chunk)

    per_batch = batch_size * PACK
    chunks = [todo[first : first + per_batch] for first in range(0, len(todo), per_batch)]
    for chunk, (audios, elapsed) in zip(chunks, _in_order(sample, chunks, in_flight)):
        for (cue, placement, frames, path), audio in zip(chunk, audios):
            where = (cue.scene_index, cue.kind)
            pcm = _fit(resample(audio, config.sample_rate, rate), placement.length)
            pcm, new = finished_cue(cue, pcm, sounds.get(where), rate, cue_peak_dbfs)
            chunk = stamps.cue(cue.scene_index, cue.kind, cue.prompt, placement.start).chunk(rate, 2) if stamps else b""
            write_wav24(path, pcm, rate, chunk)
            finish(cue, placement, frames, path, elapsed, False, _audio_input(cue, given.get(where), new))
        if progress:
            progress(len(rendered), len(cues))
    return sorted(rendered, key=lambda r: (r.scene_index, r.kind))


def _respot(path: Path, bext: Bext) -> None:
    """A reused cue's chunk made ``bext`` where the timeline's start moved (its creation date kept)."""
    had = read_bext(path)
    if had is None:
        write_stamped(path, path, bext)
    elif had.time_reference != bext.time_reference:
        restamp(path, replace(bext, origination=had.origination))


def given_samples(given: GivenSound, rate: int) -> np.ndarray:
    """The given sound at ``rate``: the previous version's cue WAV, or a sketch in any audio format."""
    if given.path is None:
        raise InputError(f"{given.name} (sha256 {given.sha256[:12]}…) is gone from the outputs")
    if given.task == "inpaint":
        return read_previous_cue(given.path, rate, given.name)
    return read_given_audio(given.path, rate, given.name)


def _audio_input(cue: Cue, given: GivenSound | None, new: tuple[Span, ...]) -> dict[str, Any] | None:
    """What the generation record keeps of the sound the cue was made from (None: picture and prompt only)."""
    if given is None:
        return None
    record: dict[str, Any] = {"task": given.task, "uri": given.uri, "sha256": given.sha256}
    record["spans"] = span_list(new)
    if given.task == "complete":
        record["kept"] = cue.prompt_audio_kept
    return record


def _in_order(work: Callable[[T], R], items: list[T], in_flight: int) -> Iterator[R]:
    """``work`` of each item, yielded in the items' order, with up to ``in_flight`` running at once
    (threads, each in a copy of the caller's context: Prefect's run context and loggers go along);
    when one fails, those not started yet are cancelled and its error is raised."""
    if in_flight <= 1 or len(items) <= 1:
        yield from map(work, items)
        return
    with ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="batch") as pool:
        futures = [pool.submit(contextvars.copy_context().run, work, item) for item in items]
        try:
            for future in futures:
                yield future.result()
        finally:
            for future in futures:
                future.cancel()


def _fit(audio: np.ndarray, samples: int) -> np.ndarray:
    """Trim or zero-pad (C, N) to exactly ``samples`` (resampling can be off by one)."""
    if audio.shape[1] >= samples:
        return audio[:, :samples]
    return np.pad(audio, ((0, 0), (0, samples - audio.shape[1])))


def picture_samples(analysis: Analysis, rate: int) -> int:
    """The reel's length in samples: the picture's duration from its timestamps."""
    return to_sample(analysis.scenes.scenes[-1].end_s, rate)


def mix_reel(
    analysis: Analysis,
    rendered: Sequence[RenderedCue],
    work: Path,
    out_dir: Path,
    settings: MixSettings = MixSettings(),
    progress: Progress | None = None,
    name: str = "",
    stamps: Stamps | None = None,
) -> LoudnessReport:
    """mix.wav, stems/*.wav, loudness.json and the waveform/spectrogram PNGs under ``out_dir``; the
    pictures are titled with ``name`` (the source's own file name; the local file's by default)."""
    rate = settings.rate
    total = picture_samples(analysis, rate)
    dialogue = None
    if analysis.info.audio is not None:
        dialogue = extract_audio(analysis.info.path, analysis.info.audio.index, work / "dialogue.f32", rate)
    pictures = ReviewPictures(total, rate)
    if stamps is not None:
        stamps = stamps.dated(r.path for r in rendered)
    report = master(
        [(c.placement, c.path) for c in rendered],
        dialogue,
        total,
        out_dir,
        settings,
        progress=progress,
        pictures=pictures,
        stamps=stamps.output if stamps else None,
    )
    mix = report.mix
    title = f"{name or analysis.info.path.name}  {mix.integrated_lufs:.1f} LUFS  LRA {mix.loudness_range_lu:.1f} LU  TP {mix.true_peak_dbtp:.1f} dBTP  ({report.preset})"
    cuts = [to_sample(s.start_s, rate) for s in analysis.scenes.scenes[1:]]
    numbers = [s.index for s in analysis.scenes.scenes]
    pictures.write(out_dir / "waveform.png", out_dir / "spectrogram.png", cuts, title, numbers)
    write_atomic(out_dir / "loudness.json", (json.dumps(report.to_dict(), indent=2) + "\n").encode())
    return report
