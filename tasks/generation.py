"""The generate stage of one reel: every cue's content key, the cues an earlier run already made with
the same key, and the batches for the rest, sent to wherever inference runs (tasks/inference.py)."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import torch
from prefect import get_run_logger, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE

from audiox_core.errors import InputError
from audiox_core.lifecycle import stop_point
from audiox_core.model.longform import SceneRequest
from audiox_core.model.spec import load_config
from audiox_core.provenance.records import CueId, GivenSound, ModelFacts, RenderedCue
from audiox_core.reel.cues import Cue
from audiox_core.reel.cuesheet import SpannedCue
from audiox_core.reel.daw_reel import Stamps
from audiox_core.reel.generation_plan import GenerationPlan, plan_generation, take_plans
from audiox_core.reel.given_sound import read_given_audio, span_list
from audiox_core.reel.settings import RunSettings
from audiox_core.reel.source import Footage, Source
from audiox_core.reel.stages import Analysis, SheetPlan, render_cues
from audiox_core.store.by_uri import store_for
from audiox_core.store.cache import sources_cache
from audiox_core.store.files import sha256_file
from audiox_core.store.uri import public_uri
from db import repository
from tasks.inference import BATCH_PROGRESS, batches_in_flight, run_batch
from tasks.progress import progress_bar
from tasks.retry import TRANSIENT_RETRIES
from tasks.review import artifact_slug

ARTIFACT_EVERY_S = 1.0


CHECK_RATE = 16_000  # a given sketch is decoded at this rate to check it before the run generates anything


@task(name="given-sounds", cache_policy=NO_CACHE, **TRANSIENT_RETRIES)
def given_sounds_task(
    db_url: str, source_shown: str, spanned: tuple[SpannedCue, ...], sheet_name: str, work: Path
) -> dict[CueId, GivenSound]:
    """The sound each cue starts from, fetched and verified before anything is generated: for a cue with
    spans to regenerate, its previous version (the latest succeeded run's cue; when that cue was this
    very inpainting, the version it was made from, so a rerun reuses it); for a cue with prompt audio,
    the sketch (a path, relative ones from the working folder, or a URI)."""
    found: dict[CueId, GivenSound] = {}
    for s in spanned:
        c, where = s.as_cue(), (s.scene_index, s.cue.kind)
        name = f"{sheet_name}: cue {s.cue.id}"
        if s.cue.mute:
            continue
        if c.regenerate:
            found[where] = _previous_cue(db_url, source_shown, c, name)
        elif c.prompt_audio:
            shown = public_uri(c.prompt_audio)
            try:
                path = store_for(c.prompt_audio).fetch(c.prompt_audio, work / "given").path
            except InputError as e:
                raise InputError(f"{name}: prompt audio {e}") from e
            found[where] = GivenSound("complete", path, shown, sha256_file(path), f"{name}: prompt audio {shown}")
            read_given_audio(path, CHECK_RATE, found[where].name)  # missing, silent or not audio: one line now
    return found


def _previous_cue(db_url: str, source_uri: str, cue: Cue, name: str) -> GivenSound:
    g = repository.latest_generation(db_url, source_uri, cue.scene_index, cue.kind)
    if g is None:
        raise InputError(
            f"{name}: regenerate needs a previous version of the cue, and no finished run of this reel made"
            " it; generate the whole cue first (drop `regenerate`)"
        )
    uri, sha = g["output_uri"], g["output_sha256"]
    made = g.get("audio_input") or {}
    spans = span_list(cue.regenerate)
    again = made.get("task") == "inpaint" and made.get("spans") == spans
    if again and (g["prompt"], g["seed"]) == (cue.prompt, cue.seed):
        # The same inpainting again, from the same previous version: its key is the recorded one, so
        # the cue is reused; the previous version's file is needed only if that cue is gone too.
        uri, sha = made["uri"], made["sha256"]
        return GivenSound("inpaint", _recorded_copy(db_url, uri, sha), uri, sha, f"{name}: previous version {uri}")
    path = _recorded_copy(db_url, uri, sha)
    if path is None:
        raise InputError(f"{name}: its previous version {uri} (sha256 {sha[:12]}…) is gone from the outputs")
    return GivenSound("inpaint", path, uri, sha, f"{name}: previous version {uri}")


@task(name="find-reusable", cache_policy=NO_CACHE, **TRANSIENT_RETRIES)
def reusable_task(db_url: str, keys: dict[CueId, str]) -> dict[CueId, Path]:
    """Cues an earlier finished run generated with the same key, whose bytes (sha256) are still in
    the file it recorded or, once that version was removed, in a later output that reused them."""
    found = repository.find_generations(db_url, keys.values())
    reuse = {}
    for where, key in keys.items():
        g = found.get(key)
        if g is None:
            continue
        if path := _recorded_copy(db_url, g["output_uri"], g["output_sha256"]):
            reuse[where] = path
    if reuse:
        get_run_logger().info(
            "reusing %d of %d cues generated before with the same inputs and settings", len(reuse), len(keys)
        )
    return reuse


def _recorded_copy(db_url: str, output_uri: str, sha256: str) -> Path | None:
    """A local file with exactly these bytes: the recorded URI first, then other recorded outputs
    with the same sha256; None when none is left (the cue is generated again)."""
    for uri in dict.fromkeys([output_uri, *repository.output_uris(db_url, sha256)]):
        try:
            path = store_for(uri).fetch(uri, sources_cache()).path
        except InputError:
            continue  # this copy is gone (removed with an old version, or deleted)
        if sha256_file(path) == sha256:
            return path
    return None


def plan_generation_stage(
    db_url: str,
    settings: RunSettings,
    model: ModelFacts,
    spotted: SheetPlan,
    source: Source,
    footage: Footage,
    work: Path,
) -> GenerationPlan:
    """The generate stage's plan: the sound each cue starts from, every cue's content key, and the cues
    an earlier run already made with the same key."""
    name = spotted.sheet_name
    given = given_sounds_task(db_url, source.shown, spotted.spanned, name, work)
    plan = plan_generation(settings, model, list(spotted.cues), list(spotted.placements), footage.file.sha256, given)
    takes = {(s.scene_index, s.cue.kind): s.cue.takes for s in spotted.spanned if s.cue.takes > 1 and not s.cue.mute}
    extra = take_plans(plan, takes, settings, model, footage.file.sha256)
    return replace(
        plan,
        reuse=reusable_task(db_url, plan.keys),
        takes=tuple(replace(t, reuse=reusable_task(db_url, t.keys)) for t in extra),
    )


def generate_cues(
    plan: GenerationPlan, analysis: Analysis, out_dir: Path, reel: str, stamps: Stamps | None = None
) -> list[RenderedCue]:
    """The generate stage, run in the flow itself (not inside a task): each batch is then a task of
    the flow whose cached result is committed as soon as it finishes, where a task nested in another
    task would commit only with its parent, and a crash would lose every finished batch."""
    what = "cues" if plan.take == 1 else f"take {plan.take} of cues"
    artifact = create_progress_artifact(
        progress=0.0, key=f"generation-{artifact_slug(reel)}", description=f"{what} generated"
    )
    total = len(plan.cues)
    reuse = plan.reuse
    done = float(len(reuse))  # cues finished (reused ones from the start), fractional while a batch samples
    last_sent = 0.0

    with progress_bar(f"generate {total - len(reuse)} {what}") as bar:

        def update(finished: float, _: int = total) -> None:
            nonlocal done, last_sent
            done = finished
            bar(finished, total)
            now = time.monotonic()
            if finished >= total or now - last_sent >= ARTIFACT_EVERY_S:  # the API gets a few updates a second at most
                update_progress_artifact(artifact, progress=100.0 * finished / max(total, 1))
                last_sent = now

        def generate(batch: list[Cue], requests: list[SceneRequest]) -> list[torch.Tensor]:
            stop_point()  # a stopped batch's reel ends before its next batch
            keys = [plan.keys[(c.scene_index, c.kind)] for c in batch]
            before = done
            token = BATCH_PROGRESS.set(lambda fraction: update(before + fraction * len(batch)))
            try:
                return run_batch(plan.model_spec, plan.device, requests, plan.sampling, keys, plan.batch_size)
            finally:
                BATCH_PROGRESS.reset(token)

        rendered = render_cues(
            load_config(plan.model_spec),
            plan.cues,
            analysis,
            plan.placements,
            out_dir,
            generate,
            reuse=reuse,
            given=plan.given,
            batch_size=plan.batch_size,
            progress=update,
            in_flight=batches_in_flight(),
            stamps=stamps,
        )
        update(total)  # 100 % also when every cue was reused (no batch ran)
    return rendered
