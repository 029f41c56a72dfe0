"""What a sound editor's DAW receives: soundtrack.otio and soundtrack.aaf for a version, or the whole package again on export."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import opentimelineio as otio

from audiox_core.errors import InputError
from audiox_core.provenance.records import ModelFacts, RenderedCue
from audiox_core.reel.aaf_export import write_aaf
from audiox_core.reel.cues import cue_file
from audiox_core.reel.daw_reel import DawReel, DawSettings, Made, Stamps, daw_cues, reel_from_folder
from audiox_core.reel.otio_timeline import timeline
from audiox_core.reel.stages import Analysis, SheetPlan
from audiox_core.reel.stem_names import delivered_names
from audiox_core.sound.bwf import Loudness, read_bext, write_stamped
from audiox_core.sound.loudness import LoudnessReport
from audiox_core.sound.mix import MixSettings
from audiox_core.sound.timeline import DIALOGUE, TimelineSettings, to_sample
from audiox_core.store.files import staged_directory, write_atomic

OTIO_FILE = "soundtrack.otio"
AAF_FILE = "soundtrack.aaf"


def run_reel(
    *,
    title: str,
    run_id: int,
    source_shown: str,
    analysis: Analysis,
    spotted: SheetPlan,
    rendered: Sequence[RenderedCue],
    keys: dict[tuple[int, str], str],
    model: ModelFacts,
    timeline_settings: TimelineSettings,
    mix_settings: MixSettings,
    report: LoudnessReport,
    daw: DawSettings,
) -> DawReel:
    """The DAW view of the version this run is making (its files staged, not yet published)."""
    made = {
        (r.scene_index, r.kind): Made(
            cue_file(r.scene_index, r.kind), keys.get((r.scene_index, r.kind)), model.name, model.checkpoint_sha256
        )
        for r in rendered
    }
    scenes = analysis.scenes
    return DawReel(
        title=title,
        run_id=run_id,
        source_uri=source_shown,
        fps=scenes.fps,
        frames=scenes.scenes[-1].end_frame,
        samples=to_sample(scenes.scenes[-1].end_s, mix_settings.rate),
        scenes=scenes.scenes,
        cues=daw_cues(spotted.spanned, timeline_settings, made),
        dialogue="stems/dialogue.wav" if DIALOGUE in report.outputs else None,
        stem_gain_db=dict(mix_settings.stem_gain_db),
        normalization_gain_db=report.normalization_gain_db,
        settings=daw,
        rate=mix_settings.rate,
    )


def write_timelines(reel: DawReel, folder: Path) -> list[Path]:
    """soundtrack.otio and soundtrack.aaf in ``folder``, beside the files they reference."""
    write_atomic(folder / OTIO_FILE, otio.adapters.write_to_string(timeline(reel), "otio_json").encode())
    write_aaf(reel, folder, folder / AAF_FILE)
    return [folder / OTIO_FILE, folder / AAF_FILE]


def export_reel(folder: Path, target: Path, settings: DawSettings) -> tuple[DawReel, list[Path], float]:
    """The DAW package of a published version again, at another start timecode or stem naming: the
    cue files and stems as broadcast WAVs spotted to the new start (stems named by the pattern), and
    the timelines referencing them; nothing generated, nothing written unless all of it is (the
    target is staged and put in place whole). Returns the reel, the files written and the seconds taken."""
    started = time.perf_counter()
    reel = reel_from_folder(folder, settings)
    stamps = Stamps.of(settings, reel.fps, reel.title, reel.run_id)  # a start the picture's rate skips is refused here
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise InputError(f"{target}: exists and is not an empty folder (export writes a new one)")
    names = delivered_names(settings.stem_names, reel=reel.title, run_id=reel.run_id, fps=reel.fps, rate=reel.rate)
    with staged_directory(target) as stage:
        (stage / "cues").mkdir()
        for cue in reel.cues:
            if cue.file is not None:
                src = folder / cue.file
                had = read_bext(src)
                bext = stamps.cue(cue.scene_index, cue.kind, cue.prompt, cue.placement.start)
                write_stamped(
                    src, stage / cue.file, bext if had is None else replace(bext, origination=had.origination)
                )
        for file, name in names.items():
            if (folder / file).is_file():
                had = read_bext(folder / file)
                stem = "mix" if file == "mix.wav" else Path(file).stem
                write_stamped(folder / file, stage / name, stamps.output(stem, had.loudness if had else Loudness()))
        if reel.dialogue:
            reel = replace(reel, dialogue=names[reel.dialogue])
        write_timelines(reel, stage)
        written = sorted(p.relative_to(stage) for p in stage.rglob("*") if p.is_file())
    return reel, [target / p for p in written], time.perf_counter() - started
