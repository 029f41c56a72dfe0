"""The spotting stage of one reel: which cue sheet the run follows (given, the producer's edited
sheet from an earlier run, or a draft), resolved on the reel's scenes and recorded on the run."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from audiox_core.errors import InputError
from audiox_core.provenance.records import ModelFacts
from audiox_core.reel.cuesheet import CueSheet, for_reel, parse_sheet
from audiox_core.reel.settings import RunSettings
from audiox_core.reel.source import Footage, Source
from audiox_core.reel.stages import Analysis, SheetPlan, choose_sheet, plan_sheet
from audiox_core.reel.storyboard import brief_sheet
from audiox_core.store.by_uri import store_for
from audiox_core.store.uri import public_uri
from db import repository
from tasks.retry import TRANSIENT_RETRIES

STORED = "the reel's stored cue sheet"


def read_sheet(cues_uri: str, cache_dir: Path) -> CueSheet:
    """The cue sheet at a path or URI, parsed (one line naming it when it cannot be read or parsed)."""
    path = store_for(cues_uri).fetch(cues_uri, cache_dir).path
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{public_uri(cues_uri)}: cannot read the cue sheet: {e}") from e
    return parse_sheet(text, public_uri(cues_uri))


def given_sheet(cues_uri: str, source: Source, work: Path) -> CueSheet:
    """The producer's cue sheet file, parsed, and refused if it is for another reel: before the fetch."""
    return for_reel(read_sheet(cues_uri, work), source.title, public_uri(cues_uri))


@task(name="cue-sheet", cache_policy=NO_CACHE, **TRANSIENT_RETRIES)
def spot_task(
    db_url: str,
    run_id: int,
    source: Source,
    footage: Footage,
    analysis: Analysis,
    settings: RunSettings,
    model: ModelFacts,
    given: CueSheet | None,
    cues_uri: str | None,
) -> SheetPlan:
    """The sheet this run follows, resolved on the reel (an invalid given sheet fails the run with one
    line naming the entry) and stored on the run row, so the next run starts from it. A draft is in
    the words of the model that will render it; a text brief's sheet is its one cue, the brief its prompt."""
    log = get_run_logger()
    if given is None and footage.brief is not None:
        given = brief_sheet(source.title, analysis.scenes.fps, footage.brief, settings.brief_kind, settings.seed)  # type: ignore[arg-type]
    stored = None
    if given is None and (text := repository.latest_cue_sheet(db_url, source.shown)):
        try:
            stored = parse_sheet(text, STORED)
        except InputError as e:
            log.warning("%s: drafting a new one", e)
    task = model.task_prompts
    sheet, origin = choose_sheet(analysis, source.title, settings.seed, given, stored, task)
    given_name = public_uri(cues_uri) if cues_uri else None
    name = given_name or "the review's changes"
    plan = plan_sheet(analysis, sheet, origin, name if origin == "given" else STORED, settings.timeline)
    if origin == "given" and given_name:
        plan = replace(plan, sheet_name=given_name)
    repository.record_cue_sheet(db_url, run_id, sheet.to_yaml())
    music = sum(1 for s in plan.spanned if s.cue.kind == "music")
    muted = sum(1 for s in plan.spanned if s.cue.mute)
    log.info("cue sheet (%s): %d cues, %d music, %d muted", origin, len(plan.spanned), music, muted)
    return plan
