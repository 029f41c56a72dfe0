"""The ``soundtrack`` flow: one reel from source footage to a muxed soundtrack with provenance.

fetch → preflight → scenes → cue sheet → generate → mix → mux → review page → provenance → publish → review.
Every source has its own output folder, ``<out>/<stem>-<hash>/`` (``audiox_core/reel/naming.py``), staged
in a hidden sibling and renamed into place only when complete; on S3 each version is uploaded under
``<out>/<stem>-<hash>/versions/<version>/`` and made current by writing ``current.json`` last. A
failure records the run as failed, an interrupt or cancellation as cancelled, each with its one-line
reason, and leaves no output and no work folder (``tasks/run_end.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from prefect.states import Completed

from audiox_core.errors import InputError
from audiox_core.lifecycle import stop_point
from audiox_core.reel.cuesheet import CueSheet
from audiox_core.reel.daw_reel import Stamps
from audiox_core.reel.destination import Destination
from audiox_core.reel.direction import Direction
from audiox_core.reel.settings import RunSettings
from audiox_core.reel.source import Source
from audiox_core.workspace import studio_home
from tasks.direction import (
    approval_facts,
    as_changed,
    await_direction,
    deliver,
    directed_sheet,
    direction_form,
    record_direction_task,
    show_approval,
    show_refusal,
)
from tasks.entry import (
    check_inputs,
    database,
    delivery_root,
    entry_checks,
    link,
    location,
    questions_asked,
    reel_work,
    versions_made,
)
from tasks.generation import generate_cues, plan_generation_stage
from tasks.media import (
    analyse_task,
    daw_task,
    exports_task,
    fetch_footage,
    mix_task,
    mux_task,
    proxy_task,
    publish_task,
    staged_version,
)
from tasks.preflight import preflight
from tasks.provenance import finish_run_task, provenance_task, record_results_task, record_source_task, start_run_task
from tasks.review import REVIEW_PAGE, review_key, review_page_task, show_review, version_facts
from tasks.run_end import (
    cancellation_delivered,
    close_cancelled,
    close_crashed,
    close_failed,
    close_interrupted,
    forget_secret_parameters,
)
from tasks.spotting import given_sheet, spot_task
from tasks.sweep import sweep_task

DEFAULT_REVIEW_TIMEOUT_S = 7 * 24 * 3600  # a version waits a week for its producer, then stays unapproved


def run_name() -> str:
    """A soundtrack flow run's name in the UI: the reel's title and its source, without secrets
    (``bikes · s3://footage/incoming/bikes.mp4``), so a producer finds a reel by name."""
    source = Source.of(str(flow_run.parameters.get("source_uri", "")))
    return f"{source.title} · {source.shown}"


@flow(
    name="soundtrack",
    flow_run_name=run_name,
    log_prints=False,
    on_cancellation=[close_cancelled],
    on_crashed=[close_crashed],
)
def soundtrack(
    source_uri: str,
    out_uri: str | None = None,
    settings: dict[str, Any] | None = None,
    trigger: str = "manual",
    cues: str | None = None,
    review: bool = False,
    review_timeout_s: int = DEFAULT_REVIEW_TIMEOUT_S,
    delivery_uri: str | None = None,
) -> dict[str, Any] | Completed:
    """Make the soundtrack of one reel; returns the output folder, run id and review artifact key.
    With ``review``, each rendered version waits for the producer (``tasks/direction.py``): changes
    make a new version with exactly those cues regenerated, approval delivers the version.

    Args:
        source_uri: The footage: a path on the worker or s3://bucket/key (a still, a storyboard folder or CSV, or a .txt brief also work).
        out_uri: Where the reel's folder goes: a folder on the worker or an s3:// prefix (empty: $AUDIOX_HOME/out on the worker).
        settings: Settings that differ from the defaults, e.g. {"steps": 25, "seed": 3, "start_timecode": "00:59:58:00"}; the keys are listed in the README (Command line).
        trigger: What started the run, for the provenance record (manual, on-demand, nightly, s3-drop).
        cues: A cue sheet (path or s3:// URI) to follow instead of the reel's own edited sheet or a draft.
        review: Wait for the producer's direction on each version (approve, or change cues).
        review_timeout_s: How long a version waits for direction before it stays unapproved (seconds).
        delivery_uri: Where an approved version is delivered (empty: <out_uri>/delivered).
    """
    out_uri = out_uri or str(studio_home() / "out")  # never a folder relative to wherever the worker started
    source = Source.of(source_uri)
    uris = {"source": source_uri, "destination": out_uri, "cue sheet": cues, "delivery": delivery_uri}
    forget_secret_parameters(uris)  # before anything can fail: Prefect keeps no secret
    db_url = database()
    sweep_task(db_url, out_uri)
    try:
        s = entry_checks(uris, settings or {}, out_uri)  # every setting checked before any work starts
    except InputError as e:
        finish_run_task(
            db_url, start_run_task(db_url, source.shown, out_uri, dict(settings or {}), trigger), error=str(e)
        )
        raise
    made = versions_made(db_url) if review else []
    if made:  # a suspended run, resumed: its versions are made; the last one is on review
        result = _resumed(made[-1], source)
    else:
        result = _version(db_url, source, out_uri, s, trigger, cues_uri=cues)
    if not review:
        return result
    return _review(db_url, result, source, out_uri, s, review_timeout_s, delivery_uri)


def _version(
    db_url: str,
    source: Source,
    out_uri: str,
    s: RunSettings,
    trigger: str,
    cues_uri: str | None = None,
    sheet: CueSheet | None = None,
) -> dict[str, Any]:
    """One version of the reel: its run row, opened and closed whatever happens (``tasks/run_end.py``)."""
    run_id = start_run_task(db_url, source.shown, out_uri, s.to_dict(), trigger)
    try:
        with cancellation_delivered():
            check_inputs(source, out_uri)  # before any work: refused URIs, missing files, unwritable outputs
            with reel_work(source, out_uri) as work:
                result = _reel(db_url, run_id, source, out_uri, s, cues_uri, trigger, sheet, work)
    except Exception as e:
        close_failed(db_url, run_id, e)
        raise
    except BaseException as e:  # interrupted or cancelled
        close_interrupted(db_url, run_id, e)
        raise
    finish_run_task(db_url, run_id)
    return result


def _review(
    db_url: str,
    result: dict[str, Any],
    source: Source,
    out_uri: str,
    s: RunSettings,
    timeout_s: int,
    delivery_uri: str | None,
) -> dict[str, Any] | Completed:
    """The producer's loop: wait for direction on the current version; changes make the next version
    (only the changed cues are generated: the others' content keys are unchanged), approval delivers.
    A direction that cannot be applied (a cue the sheet does not have) is recorded as refused with its
    one-line reason, and the version waits again."""
    refused: tuple[Direction, str] | None = None
    while True:
        form = direction_form(result["cue_sheet"], result["run_id"], refused)
        asked = questions_asked(db_url, result["run_id"])
        direction = await_direction(result["run_id"], asked, timeout_s, form, refused[1] if refused else None)
        refused = None
        if direction is None:
            return {**result, "approved": False}
        given, direction = direction, as_changed(direction, result["cue_sheet"], result["run_id"])
        if direction.approves:
            approval = approval_facts(result, direction)
            delivered = deliver(result, source, delivery_root(out_uri, delivery_uri), s.daw, approval)
            record_direction_task(db_url, result["run_id"], direction, delivered)
            return show_approval(result, approval, delivered)  # the artifact, the tag, the final state's message
        try:
            sheet = directed_sheet(db_url, result["run_id"], result["cue_sheet"], direction.changes)
        except InputError as e:
            get_run_logger().error("direction refused: %s", e)
            record_direction_task(db_url, result["run_id"], direction, refused=str(e))
            show_refusal(result, direction, str(e))
            refused = (given, str(e))  # the form asks again with the producer's input kept and why it was refused
            continue
        record_direction_task(db_url, result["run_id"], direction)
        result = _version(db_url, source, out_uri, s, "review changes", sheet=sheet)


def _resumed(version: dict[str, Any], source: Source) -> dict[str, Any]:
    """The result of a version an earlier execution of this flow run made (before it was suspended)."""
    return {
        **_result(source, version["base_uri"], version["run_id"], version["model_label"], version["version"]),
        "files": version["files"],
        "cue_sheet": version["cue_sheet"],
    }


def _result(source: Source, base_uri: str, run_id: int, model: str, version: str) -> dict[str, Any]:
    return {
        "reel": source.title,
        "out_dir": location(base_uri),
        "run_id": run_id,
        "flow_run_id": flow_run.get_id(),
        "review_artifact": review_key(source.folder, run_id),
        "model": model,
        "base_uri": base_uri,
        "version": version,
    }


def _reel(
    db_url: str,
    run_id: int,
    source: Source,
    out_uri: str,
    s: RunSettings,
    cues_uri: str | None,
    trigger: str,
    sheet: CueSheet | None,
    work: Path,
) -> dict[str, Any]:
    """The reel's stages, from its cue sheet to its review artifact, with ``work`` as scratch space."""
    given = sheet or (given_sheet(cues_uri, source, work) if cues_uri else None)
    where = Destination.of(out_uri, source.folder, run_id, work)
    stop_point()
    footage = fetch_footage(source, work, s.still_seconds)
    stop_point()
    model = preflight(footage, source, where, work, s)
    stop_point()
    analysis = analyse_task(footage, source, work, s.detector, model)
    scene_ids = record_source_task(db_url, run_id, source, footage, analysis, model)
    spotted = spot_task(db_url, run_id, source, footage, analysis, s, model, given, cues_uri)
    plan = plan_generation_stage(db_url, s, model, spotted, source, footage, work)
    stop_point()
    stamps = Stamps.of(s.daw, analysis.scenes.fps, source.title, run_id)  # the files' place on the DAW timeline
    with staged_version(where) as stage:
        exports_task(analysis, spotted, stage, source)
        rendered = generate_cues(plan, analysis, stage / "cues", source.folder, stamps)
        takes = {
            t.take: generate_cues(t, analysis, stage / "takes" / f"take{t.take}", source.folder, stamps)
            for t in plan.takes
        }
        stop_point()
        mix = mix_task(analysis, rendered, work, stage, s.mix, source.name, stamps)
        mux_task(analysis, stage)
        daw_task(stage, run_id, source, analysis, spotted, rendered, plan, model, s, mix)
        if s.review_proxy:
            proxy_task(analysis, stage)
        facts = version_facts(stage, where, source, trigger, s, model, mix, analysis, spotted, rendered, takes, work)
        review_page_task(stage, facts, where.base_uri)
        stop_point()  # the last: once publishing starts, the run ends as it would have
        document = provenance_task(
            db_url, run_id, stage, where, source, footage, analysis, plan, rendered, mix, model, takes
        )
    publish_task(where)
    record_results_task(db_url, run_id, scene_ids, document)
    key = show_review(source.folder, run_id, facts, document.outputs, where.base_uri)  # on the flow run
    return {
        **_result(source, where.base_uri, run_id, model.label, where.version),
        "review_artifact": key,
        "files": [o.uri.removeprefix(where.base_uri.rstrip("/") + "/") for o in document.outputs],
        "cue_sheet": spotted.sheet.to_yaml(),
        "scenes": len(analysis.scenes.scenes),
        "cues_generated": sum(1 for r in rendered if not r.reused),
        "cues_reused": sum(1 for r in rendered if r.reused),
        "lufs": round(mix.mix.integrated_lufs, 1),
        "review_page": link(where.file_uri(REVIEW_PAGE)),
    }
