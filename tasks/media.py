"""Tasks over media: fetch the source, analyse it, mix and mux the soundtrack."""

from __future__ import annotations

import os
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from audiox_core.errors import InputError
from audiox_core.provenance.records import ModelFacts, SourceFile
from audiox_core.reel.daw_package import run_reel, write_timelines
from audiox_core.reel.daw_reel import Stamps
from audiox_core.reel.destination import Destination
from audiox_core.reel.generation_plan import GenerationPlan
from audiox_core.reel.preflight import check_frames
from audiox_core.reel.settings import RunSettings
from audiox_core.reel.source import Footage, Source
from audiox_core.reel.stages import (
    Analysis,
    RenderedCue,
    SheetPlan,
    analyse,
    mix_reel,
    write_cue_exports,
    write_scene_exports,
)
from audiox_core.reel.storyboard import board_kind, board_sha256, read_board, render_animatic
from audiox_core.sound.loudness import LoudnessReport
from audiox_core.sound.mix import MixSettings
from audiox_core.store.by_uri import store_for
from audiox_core.store.cache import sources_cache
from audiox_core.store.files import sha256_file, staged_directory
from audiox_core.store.local import local_path
from audiox_core.video.mux import mux, soundtrack_name
from audiox_core.video.proxy import review_proxy
from audiox_core.video.scenes import DetectorSettings
from tasks.progress import progress_bar, working
from tasks.retry import TRANSIENT_RETRIES


@task(name="fetch", cache_policy=NO_CACHE, **TRANSIENT_RETRIES)
def fetch_source(source: Source, work: Path) -> SourceFile:
    """The local path, sha256, size and object version of the source. An S3 object is downloaded into
    the source cache and hard-linked into the run's ``work`` folder, so the cache's eviction (another
    run's download) cannot take it away before this run's mux reads it at the very end."""
    cache = sources_cache()
    fetched = store_for(source.uri).fetch(source.uri, cache)
    path = fetched.path
    if path.is_relative_to(cache):
        pinned = work / "source"
        try:
            os.link(path, pinned)
            path = pinned
        except OSError:  # another file system: the cache's one-hour in-use rule still protects it
            pass
    return SourceFile(path, sha256_file(path), path.stat().st_size, fetched.version)


@task(name="animatic", cache_policy=NO_CACHE)
def animatic_task(file: SourceFile, source: Source, work: Path, seconds: float) -> Footage:
    """A still, storyboard or text brief as the picture the reel is made of (audiox_core/reel/storyboard.py):
    its animatic, with the board's own identity as the source's sha256; footage as it is."""
    if board_kind(file.path) is None:
        return Footage(file)
    board = read_board(file.path, source.shown, seconds)
    with working(f"animatic of {len(board.cards)} card(s) …"):
        animatic = render_animatic(board, work / "animatic.mp4")
    return Footage(SourceFile(animatic.path, board_sha256(board), file.bytes, file.version), animatic)


def fetch_footage(source: Source, work: Path, seconds: float) -> Footage:
    """The source as this run reads it: fetched (a local storyboard folder is read in place), then a
    still, storyboard or brief made into its animatic."""
    if not source.uri.startswith("s3://") and (folder := local_path(source.uri)).is_dir():
        file = SourceFile(folder, "", 0, None)
    else:
        file = fetch_source(source, work)
    return animatic_task(file, source, work, seconds)


def staged_version(where: Destination) -> AbstractContextManager[Path]:
    """The version's folder while it is written: flushed and put in place when complete, removed on any error."""
    return staged_directory(where.assembly)


@task(name="publish", cache_policy=NO_CACHE, **TRANSIENT_RETRIES)
def publish_task(where: Destination) -> None:
    """Make a finished reel folder the current version at its destination, all or nothing (S3:
    uploaded under the version's prefix, then current.json). Idempotent: a transient failure is retried."""
    store_for(where.folder_uri).publish(where.assembly, where.folder_uri, where.version)


@task(name="scenes", cache_policy=NO_CACHE)
def analyse_task(
    footage: Footage, source: Source, work: Path, detector: DetectorSettings, model: ModelFacts
) -> Analysis:
    """ffprobe, then one OpenCV pass for scene cuts and the model's frames (a storyboard's cuts are its
    cards'; a text brief gives the model no picture). Errors name the source as the user gave it (an
    S3 object is read from a cache file with a hashed name)."""
    path, animatic = footage.file.path, footage.animatic
    with progress_bar(f"scenes  {source.name}") as update:
        try:
            analysis = analyse(
                path,
                work,
                detector,
                frame_fps=model.frame_fps,
                frame_size=model.frame_size,
                progress=update,
                known_cuts=animatic.cuts if animatic else None,
            )
        except InputError as e:
            raise e.naming(path, source.shown) from e
    check_frames(source.shown, analysis.scenes.frames)  # the header's count can be an estimate
    return replace(analysis, picture=animatic.picture) if animatic else analysis


@task(name="write-exports", cache_policy=NO_CACHE)
def exports_task(analysis: Analysis, spotted: SheetPlan, stage: Path, source: Source) -> list[Path]:
    """scenes.json, scenes.csv and scenes.edl for the editors (the EDL's clip is the source's own name),
    cues.yaml and music_cues.csv."""
    scenes = write_scene_exports(analysis.scenes, stage, source.folder, source.name)
    return scenes + write_cue_exports(spotted, analysis, stage)


@task(name="mix", cache_policy=NO_CACHE)
def mix_task(
    analysis: Analysis,
    rendered: list[RenderedCue],
    work: Path,
    stage: Path,
    settings: MixSettings,
    name: str,
    stamps: Stamps,
) -> LoudnessReport:
    """Stems, mix and music-and-effects at the loudness preset as broadcast WAVs (spotted to the
    timeline's start timecode), the loudness report and pictures (titled with the source's own name)."""
    with progress_bar("mix") as update:
        return mix_reel(analysis, rendered, work, stage, settings, progress=update, name=name, stamps=stamps)


@task(name="daw-timelines", cache_policy=NO_CACHE)
def daw_task(
    stage: Path,
    run_id: int,
    source: Source,
    analysis: Analysis,
    spotted: SheetPlan,
    rendered: list[RenderedCue],
    plan: GenerationPlan,
    model: ModelFacts,
    settings: RunSettings,
    report: LoudnessReport,
) -> list[Path]:
    """soundtrack.otio and soundtrack.aaf: the version as an editable timeline, every cue a clip where
    the mix placed it (audiox_core/reel/otio_timeline.py, aaf_export.py)."""
    reel = run_reel(
        title=source.title,
        run_id=run_id,
        source_shown=source.shown,
        analysis=analysis,
        spotted=spotted,
        rendered=rendered,
        keys=dict(plan.keys),
        model=model,
        timeline_settings=settings.timeline,
        mix_settings=settings.mix,
        report=report,
        daw=settings.daw,
    )
    with working("DAW timelines (OTIO, AAF with embedded audio) …"):
        return write_timelines(reel, stage)


@task(name="mux", cache_policy=NO_CACHE)
def mux_task(analysis: Analysis, stage: Path) -> Path:
    out = stage / soundtrack_name(analysis.info.video.codec, analysis.info.path)
    mux(analysis.info.path, analysis.info.video.index, stage / "mix.wav", out)
    return out


@task(name="review-proxy", cache_policy=NO_CACHE)
def proxy_task(analysis: Analysis, stage: Path) -> Path:
    """The optional small review copy with scene numbers and timecode burned in (moviepy)."""
    return review_proxy(analysis.info.path, stage / "mix.wav", analysis.scenes, stage / "review_proxy.mp4")
