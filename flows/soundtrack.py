"""The ``soundtrack`` flow: one reel from source footage to a muxed soundtrack with provenance.

fetch → probe/scenes → cues → generate → mix → mux → publish → provenance → review artifact.
Every source has its own output folder, ``<out>/<stem>-<hash>/`` (``audiox_core/reel/naming.py``), staged
in a hidden sibling and renamed into place only when complete; on S3 each version is uploaded under
``<out>/<stem>-<hash>/versions/<version>/`` and made current by writing ``current.json`` last. A
failure records the run as failed, an interrupt or cancellation as cancelled, each with its one-line
reason, and leaves no output and no work folder.
"""

from __future__ import annotations

import _thread
import contextvars
import shutil
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from prefect import flow, get_client, get_run_logger
from prefect.client.schemas.objects import FlowRun, State, StateType
from prefect.exceptions import TerminationSignal
from prefect.runtime import deployment, flow_run
from prefect.states import Cancelled

from audiox_core.errors import InputError, PipelineError
from audiox_core.lifecycle import SIGNAL_NAMES, Interrupted, StopRequested, stop_point, work_folder
from audiox_core.reel.cuesheet import CueSheet, for_reel
from audiox_core.reel.direction import APPROVE
from audiox_core.reel.naming import reel_folder, reel_title, source_name, version_name
from audiox_core.reel.preflight import (
    check_database,
    check_destination,
    check_footage,
    check_frames,
    check_source_uri,
    check_work_space,
    output_bytes,
    refuse_secrets,
    work_bytes,
)
from audiox_core.reel.review import ReviewFacts
from audiox_core.reel.settings import RunSettings
from audiox_core.reel.stages import write_cue_exports
from audiox_core.reel.storyboard import brief_sheet
from audiox_core.store.by_uri import store_for
from audiox_core.store.files import staged_directory
from audiox_core.store.full_disk import full_disk_named
from audiox_core.store.local import local_path
from audiox_core.store.s3 import link_expiry_s
from audiox_core.store.uri import public_uri, scrub, secret_in_uri
from audiox_core.workspace import studio_home
from db import repository
from db.pending import PENDING_CLOSINGS, database_lost, defer_closing, lost_reason
from db.repository import CANCELLED, CRASHED, FAILED
from db.session import connection_problem, database_url
from tasks.direction import await_direction, deliver_task, directed_sheet, record_direction_task
from tasks.generation import generate_cues, given_sounds_task, plan_generation, reusable_task
from tasks.inference import check_inference_settings, model_facts
from tasks.media import (
    analyse_source,
    animatic_task,
    fetch_picture,
    mix_task,
    mux_task,
    proxy_task,
    publish_scenes,
    publish_task,
)
from tasks.provenance import (
    close_flow_run,
    close_run,
    finish_run_task,
    generation_records_task,
    output_records,
    provenance_document,
    record_results_task,
    record_source_task,
    run_facts_task,
    source_facts,
    start_run_task,
    write_provenance_task,
)
from tasks.review import REVIEW_PAGE, artifact_slug, review_page_task, review_task
from tasks.spotting import read_sheet, spot_task
from tasks.sweep import sweep_task

CANCELLED_IN_PREFECT = "cancelled in Prefect"
DEFAULT_REVIEW_TIMEOUT_S = 7 * 24 * 3600  # a version waits a week for its producer, then stays unapproved
CANCELLATION_POLL_S = 2.0  # how often a run started here asks Prefect whether it was cancelled
_delivered: set[str] = set()  # flow runs whose cancellation this process delivered to itself


def _close_cancelled(flow: Any, run: FlowRun, state: State) -> None:
    """``on_cancellation``: a runner that cancels a deployment's run stops its process and calls this;
    a run row the process did not close is closed as cancelled."""
    close_flow_run(database_url(studio_home()), str(run.id), error=CANCELLED_IN_PREFECT, status=CANCELLED)


def _close_crashed(flow: Any, run: FlowRun, state: State) -> None:
    """``on_crashed``: a run row still open when Prefect reports the flow run crashed is closed as crashed.
    A cancellation this process delivered (``_cancellation_delivered``) reaches the engine as a SIGTERM,
    which it reports as a crash: the flow run is put back to Cancelled, as its run row says."""
    if str(run.id) in _delivered:
        with get_client(sync_client=True) as client:
            client.set_flow_run_state(run.id, Cancelled(message=CANCELLED_IN_PREFECT), force=True)
        return
    reason = f"crashed in Prefect: {state.message}"
    close_flow_run(database_url(studio_home()), str(run.id), error=reason, status=CRASHED)


@contextmanager
def _cancellation_delivered() -> Iterator[None]:
    """Prefect delivers a cancellation only to runs its runners started (as SIGTERM); a run started in
    this process (the CLI's) just turns Cancelling and goes on to the end. While the body runs, a
    thread watches the state and, once it is Cancelling, interrupts the main thread as SIGTERM would."""
    run_id = flow_run.get_id()
    if deployment.get_id() is not None or threading.current_thread() is not threading.main_thread():
        yield  # a runner cancels its own runs; a flow in a worker thread cannot interrupt the main one
        return
    done = threading.Event()

    def watch() -> None:
        while not done.wait(CANCELLATION_POLL_S):
            if _cancelling_in_prefect() and not done.is_set():
                _delivered.add(run_id)
                _thread.interrupt_main(signal.SIGTERM)
                return

    threading.Thread(target=contextvars.copy_context().run, args=(watch,), name="cancellation", daemon=True).start()
    try:
        yield
    finally:
        done.set()


def run_name() -> str:
    """A soundtrack flow run's name in the UI: the reel's title and its source, without secrets
    (``bikes · s3://footage/incoming/bikes.mp4``), so a producer finds a reel by name."""
    source = public_uri(str(flow_run.parameters.get("source_uri", "")))
    return f"{reel_title(source)} · {source}"


@flow(
    name="soundtrack",
    flow_run_name=run_name,
    log_prints=False,
    on_cancellation=[_close_cancelled],
    on_crashed=[_close_crashed],
)
def soundtrack(
    source_uri: str,
    out_uri: str = "out",
    settings: dict[str, Any] | None = None,
    trigger: str = "manual",
    cues: str | None = None,
    review: bool = False,
    review_timeout_s: int = DEFAULT_REVIEW_TIMEOUT_S,
    delivery_uri: str | None = None,
) -> dict[str, Any]:
    """Make the soundtrack of one reel; returns the output folder, run id and review artifact key.
    ``trigger`` says what started it (manual, nightly, s3-drop) for the provenance record; ``cues``
    is a cue sheet (path or URI) to follow instead of the reel's own (audiox_core/reel/cuesheet.py).
    With ``review``, each rendered version waits for the producer (``tasks/direction.py``): changes
    make a new version with exactly those cues regenerated, approval delivers the version to
    ``delivery_uri`` (default: ``<out_uri>/delivered``). However a version's run ends, its row is
    closed with a status and reason (``_failure``, ``interruption_reason``); only a killed process
    leaves it open, for the sweep that starts every run."""
    db_url = database_url(studio_home())
    uris = {"source": source_uri, "destination": out_uri, "cue sheet": cues, "delivery": delivery_uri}
    forget_secret_parameters(uris)  # before anything can fail: Prefect keeps no secret
    check_database(db_url, connection_problem)
    sweep_task(db_url, public_uri(out_uri))
    given = dict(settings or {})
    try:
        refuse_secrets(uris)  # the CLI's check, again for deployment and API callers
        s = RunSettings.from_dict(given)  # every setting checked before any work starts
        check_inference_settings(s.device)  # the device too: not after fetch, probe and model load
        if out_uri.startswith("s3://"):
            link_expiry_s()  # the review's presigned links: a bad value fails now, not after generation
    except InputError as e:
        finish_run_task(db_url, start_run_task(db_url, source_uri, out_uri, given, trigger), error=str(e))
        raise
    made = repository.flow_run_versions(db_url, flow_run.get_id()) if review else []
    if made:  # a suspended run, resumed: its versions are made; the last one is on review
        result = _resumed(made[-1], source_uri, s)
    else:
        result = _version(db_url, source_uri, out_uri, s, trigger, cues_uri=cues)
    if not review:
        return result
    return _review(db_url, result, source_uri, out_uri, s, review_timeout_s, delivery_uri)


def _version(
    db_url: str,
    source_uri: str,
    out_uri: str,
    s: RunSettings,
    trigger: str,
    cues_uri: str | None = None,
    sheet: CueSheet | None = None,
) -> dict[str, Any]:
    """One version of the reel: its run row, opened and closed whatever happens."""
    run_id = start_run_task(db_url, source_uri, out_uri, s.to_dict(), trigger)
    try:
        with _cancellation_delivered():
            result = _make_soundtrack(db_url, run_id, source_uri, out_uri, s, cues_uri, trigger, sheet)
    except Exception as e:
        reason = lost_reason(db_url, e) if database_lost(e) else _failure(e)
        _close_or_keep(db_url, run_id, reason, FAILED, e)
        if database_lost(e):  # back already: the row says why, and so does the one line
            raise PipelineError(reason) from e
        raise
    except BaseException as e:  # interrupted or cancelled
        _close_or_keep(db_url, run_id, interruption_reason(e), CANCELLED, e)
        raise
    finish_run_task(db_url, run_id)
    return result


def _close_or_keep(db_url: str, run_id: int, reason: str, status: str, e: BaseException) -> None:
    """Close the run row with ``reason`` (a plain call: after an interrupt or a cancellation Prefect
    may refuse new tasks). A database that went away keeps the closing for the next sweep to write
    (``db/pending.py``) and the run ends with one line saying so."""
    try:
        close_run(db_url, run_id, error=reason, status=status)
    except Exception as closing:
        if not database_lost(closing):
            raise
        defer_closing(studio_home() / PENDING_CLOSINGS, db_url, run_id, status, scrub(reason))
        if isinstance(e, Exception):
            said = reason if database_lost(e) else lost_reason(db_url, closing)
            raise PipelineError(
                f"{said}; run {run_id} is recorded as {status} when it answers again "
                "(the next run on this machine or `audiox-studio doctor --repair`)"
            ) from e


def _review(
    db_url: str,
    result: dict[str, Any],
    source_uri: str,
    out_uri: str,
    s: RunSettings,
    timeout_s: int,
    delivery_uri: str | None,
) -> dict[str, Any]:
    """The producer's loop: wait for direction on the current version; changes make the next version
    (only the changed cues are generated: the others' content keys are unchanged), approval delivers.
    A direction that cannot be applied (a cue the sheet does not have) is recorded as refused with its
    one-line reason, and the version waits again."""
    while True:
        asked = len(repository.reviews(db_url, [result["run_id"]]))  # the how-many-th question on it
        direction = await_direction(result["run_id"], asked, timeout_s)
        if direction is None:
            return {**result, "approved": False}
        if direction.decision == APPROVE:
            target = delivery_uri or store_for(out_uri).child(out_uri, "delivered")
            work = work_folder(f"deliver-{result['run_id']}")
            try:
                delivered = deliver_task(
                    result["base_uri"], target, reel_folder(source_uri), result["version"], result["files"], work
                )
            finally:
                shutil.rmtree(work, ignore_errors=True)
            record_direction_task(db_url, result["run_id"], direction, delivered)
            return {**result, "approved": True, "delivered": delivered, "reviewer": direction.reviewer}
        try:
            sheet = directed_sheet(db_url, result["run_id"], result["cue_sheet"], direction.changes)
        except InputError as e:
            get_run_logger().error("direction refused: %s", e)
            record_direction_task(db_url, result["run_id"], direction, refused=str(e))
            continue
        record_direction_task(db_url, result["run_id"], direction)
        result = _version(db_url, source_uri, out_uri, s, "review changes", sheet=sheet)


def _resumed(version: dict[str, Any], source_uri: str, s: RunSettings) -> dict[str, Any]:
    """The result of a version an earlier execution of this flow run made (before it was suspended)."""
    base_uri = version["base_uri"]
    reel = reel_folder(source_uri)
    return {
        "reel": reel_title(source_uri),
        "out_dir": store_for(base_uri).location(base_uri),
        "run_id": version["run_id"],
        "flow_run_id": flow_run.get_id(),
        "review_artifact": f"review-{artifact_slug(reel)}",
        "model": version["model_label"],
        "base_uri": base_uri,
        "version": version["version"],
        "files": version["files"],
        "cue_sheet": version["cue_sheet"],
    }


def _failure(e: Exception) -> str:
    """A failed run's reason: a pipeline error's own line, anything else named as an internal error."""
    return str(e) if isinstance(e, PipelineError) else f"internal error: {type(e).__name__}: {e}"


def interruption_reason(e: BaseException) -> str:
    """Why a run stopped on a BaseException: cancelled in Prefect (its flow run is Cancelling, as a
    runner sets it before it sends SIGTERM), interrupted by a signal, or ended by the exception."""
    if isinstance(e, StopRequested):  # a reel in a worker thread, stopped with its batch
        return e.reason
    if _cancelling_in_prefect():
        return CANCELLED_IN_PREFECT
    if isinstance(e, TerminationSignal):
        return f"interrupted by {SIGNAL_NAMES.get(e.signal, signal.Signals(e.signal).name)}"
    if isinstance(e, Interrupted):
        return f"interrupted by {e.signal_name}"
    if isinstance(e, KeyboardInterrupt):
        return f"interrupted by {SIGNAL_NAMES[signal.SIGINT]}"
    return f"ended by {type(e).__name__}: {e}"


def _cancelling_in_prefect() -> bool:
    """Whether this flow run is being cancelled in Prefect; False when the API does not answer."""
    try:
        with get_client(sync_client=True) as client:
            state = client.read_flow_run(flow_run.get_id()).state
    except httpx.HTTPError:
        return False
    return state is not None and state.type in (StateType.CANCELLING, StateType.CANCELLED)


def _version_files(stage: Path) -> list[str]:
    """The names of a staged version's files, with those still to come (the review page, provenance)."""
    names = {p.relative_to(stage).as_posix() for p in stage.rglob("*") if p.is_file()}
    return sorted(names | {REVIEW_PAGE, "provenance.json"})


def forget_secret_parameters(uris: dict[str, str | None]) -> None:
    """A deployment or API caller may pass a presigned or credential-bearing URI, which the checks
    refuse; before that, this flow run's stored parameters are overwritten with every string in them
    cleaned (``public_uri``), so Prefect's database keeps no secret."""
    if not any(uri and secret_in_uri(uri) for uri in uris.values()):
        return
    cleaned = {k: public_uri(v) if isinstance(v, str) else v for k, v in flow_run.parameters.items()}
    with get_client(sync_client=True) as client:
        client.update_flow_run(flow_run.get_id(), parameters=cleaned)


def _make_soundtrack(
    db_url: str,
    run_id: int,
    source_uri: str,
    out_uri: str,
    s: RunSettings,
    cues_uri: str | None,
    trigger: str,
    sheet: CueSheet | None = None,
) -> dict[str, Any]:
    check_source_uri(source_uri)  # before any work: refused URIs, missing files, unwritable outputs
    check_destination(out_uri, 0)
    reel = reel_folder(source_uri)  # unique per source: names the output folder and the review artifacts
    work = work_folder(reel)  # removed below on every exit path; a killed process's is swept
    try:
        with full_disk_named(_written_folders(out_uri, work)):
            return _reel(db_url, run_id, source_uri, out_uri, s, cues_uri, trigger, sheet, reel, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _written_folders(out_uri: str, work: Path) -> dict[str, Path]:
    """The folders a run writes to, by the name an error shows: the output root (local) and the work folder."""
    folders = {} if out_uri.startswith("s3://") else {public_uri(out_uri): local_path(out_uri)}
    return {**folders, f"{work.parent} (the work folder under AUDIOX_HOME)": work}


def _reel(
    db_url: str,
    run_id: int,
    source_uri: str,
    out_uri: str,
    s: RunSettings,
    cues_uri: str | None,
    trigger: str,
    sheet: CueSheet | None,
    reel: str,
    work: Path,
) -> dict[str, Any]:
    """The reel's stages, from its cue sheet to its review artifact, with ``work`` as scratch space."""
    log = get_run_logger()
    given = sheet
    if given is None and cues_uri:  # the producer's file: parsed, and refused if for another reel, before the fetch
        given = for_reel(read_sheet(cues_uri, work), reel_title(source_uri), public_uri(cues_uri))
    store = store_for(out_uri)
    folder_uri = store.child(out_uri, reel)
    version = version_name(run_id)
    base_uri = store.version_uri(folder_uri, version)  # this version's files, as provenance records them
    final_dir = store.assembly_folder(folder_uri, work)
    stop_point()
    source, animatic = animatic_task(fetch_picture(source_uri, work), source_uri, work, s.still_seconds)
    info = check_footage(source.path, source_uri, s.mix.rate)  # ffprobe only: before the decoding pass
    outputs_size = output_bytes(info, s.mix.rate, source.bytes)
    check_destination(out_uri, outputs_size)
    stop_point()
    model = model_facts(s.model, s.device)
    assembled_here = outputs_size if out_uri.startswith("s3://") else 0  # S3 outputs are assembled in work/
    check_work_space(work, work_bytes(info, s.mix.rate, model.frame_fps, model.frame_size) + assembled_here)
    stop_point()
    analysis = analyse_source(source.path, source_uri, work, s.detector, model.frame_fps, model.frame_size, animatic)
    check_frames(source_uri, analysis.scenes.frames)  # the header's count can be an estimate
    scene_ids = record_source_task(db_url, run_id, source_uri, source, analysis, model)
    log.info("%s: %d scenes at %s fps", reel, len(analysis.scenes.scenes), analysis.scenes.fps)
    title = reel_title(source_uri)
    if animatic and not animatic.picture and given is None:  # a text brief: one cue, the brief its prompt
        given = brief_sheet(title, analysis.scenes.fps, animatic.text, s.brief_kind, s.seed)  # type: ignore[arg-type]
    spotted = spot_task(
        db_url,
        run_id,
        source_uri,
        analysis,
        title,
        s.seed,
        given,
        public_uri(cues_uri or "the review's changes"),
        s.timeline,
        model.task_prompts,
    )
    sheet_name = public_uri(cues_uri) if spotted.origin == "given" and cues_uri else "the reel's cue sheet"
    given_sounds = given_sounds_task(db_url, source_uri, spotted.spanned, sheet_name, work)
    plan = plan_generation(s, model, list(spotted.cues), list(spotted.placements), source.sha256, given_sounds)
    reuse = reusable_task(db_url, plan.keys)
    stop_point()
    with staged_directory(final_dir) as stage:
        publish_scenes(analysis, stage, reel, source_name(source_uri))
        write_cue_exports(spotted, analysis, stage)
        rendered = generate_cues(plan, analysis, reuse, stage / "cues", reel)
        stop_point()
        mix = mix_task(analysis, rendered, work, stage, s.mix, source_name(source_uri))
        mux_task(analysis, stage)
        if s.review_proxy:
            proxy_task(analysis, stage)
        facts = ReviewFacts(
            title,
            public_uri(source_uri),
            version,
            trigger,
            s.changed(),
            model,
            mix,
            analysis.scenes.scenes,
            spotted.spanned,
            rendered,
            _version_files(stage),
            spotted.origin,
            s.mix.rate,
        )
        review_page_task(stage, facts, base_uri)
        stop_point()  # the last: once publishing starts, the run ends as it would have
        generations = generation_records_task(
            db_url, rendered, plan.keys, source.sha256, base_uri, stage, model, s.sampling
        )
        outputs = output_records(stage, base_uri)
        run = run_facts_task(db_url, run_id)
        document = provenance_document(
            run, source_facts(source_uri, source, analysis), model, analysis, generations, mix, outputs
        )
        write_provenance_task(stage, document)
    publish_task(final_dir, folder_uri, version)
    record_results_task(db_url, run_id, scene_ids, document)
    key = review_task(reel, facts, outputs, base_uri)
    return {
        "reel": reel_title(source_uri),
        "out_dir": store.location(base_uri),
        "run_id": run_id,
        "flow_run_id": flow_run.get_id(),
        "review_artifact": key,
        "model": model.label,
        "base_uri": base_uri,
        "version": version,
        "files": [o.uri.removeprefix(base_uri.rstrip("/") + "/") for o in outputs],
        "cue_sheet": spotted.sheet.to_yaml(),
        "scenes": len(analysis.scenes.scenes),
        "cues_generated": sum(1 for r in rendered if not r.reused),
        "cues_reused": sum(1 for r in rendered if r.reused),
        "lufs": round(mix.mix.integrated_lufs, 1),
        "review_page": store.link(f"{base_uri.rstrip('/')}/{REVIEW_PAGE}"),
    }
