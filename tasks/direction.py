"""The producer's turn: a rendered version waits for direction (approve, or change cues), the decision
is recorded, and an approved version's deliverables are published to the delivery location.

Waiting uses Prefect's typed pause input, so the UI shows the form (``audiox_core/reel/direction.py``): a
run of a deployment is *suspended* (its process exits and no worker is held; on resume the worker
runs the flow again, which finds its versions in the database and asks again with the same key, and
Prefect hands back the input given); a run started in this process (the CLI, a test) is *paused*, its
process polling. After ``timeout_s`` without an answer the version stays unapproved.
"""

from __future__ import annotations

import functools
import json
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import prefect.flow_runs
from prefect import get_run_logger, pause_flow_run, suspend_flow_run, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.exceptions import FlowPauseTimeout
from prefect.input import RunInput
from prefect.runtime import deployment, flow_run
from prefect.states import Completed

from audiox_core.lifecycle import work_folder
from audiox_core.reel.cuesheet import CueSheet, parse_sheet, resolve
from audiox_core.reel.daw_reel import DawSettings
from audiox_core.reel.direction import CueChange, Direction, apply_changes, described, effective_changes, prefilled
from audiox_core.reel.source import Source
from audiox_core.reel.stem_names import delivered_names
from audiox_core.sound.audio import MIX_RATE
from audiox_core.store.by_uri import store_for
from audiox_core.store.files import staged_directory
from audiox_core.store.uri import public_uri
from audiox_core.video.scenes import Scene
from db import repository
from tasks.retry import TRANSIENT_RETRIES

DELIVERABLES = (
    "soundtrack.mp4",
    "soundtrack.mov",
    "soundtrack.mkv",
    "mix.wav",
    "stems/dialogue.wav",
    "stems/music.wav",
    "stems/foley.wav",
    "stems/m_and_e.wav",
    "loudness.json",
    "soundtrack.aaf",
    "scenes.edl",
    "scenes.csv",
    "music_cues.csv",
    "cues.yaml",
    "provenance.json",
)


class DirectionForm(Direction, RunInput):
    """The direction as Prefect's typed pause input (the form on the run's page)."""


def direction_form(sheet_yaml: str, run_id: int, refused: tuple[Direction, str] | None = None) -> type[RunInput]:
    """The form a version asks with: above it the version's cues as the sheet has them (id, kind,
    span, prompt, seed, gain, mute), so a producer changes what is there; after a refused direction,
    why it was refused first and the producer's own input kept in the form."""
    sheet = parse_sheet(sheet_yaml, f"cue sheet of run {run_id}")
    rows = [
        "| cue | kind | span | prompt | seed | gain | mute |",
        "|---|---|---|---|---:|---:|---|",
        *(
            f"| {c.id} | {c.kind} | {_span(c)} | {c.prompt.replace('|', '/')} | {c.seed} | {c.gain_db:+.1f} dB | "
            f"{'muted' if c.mute else ''} |"
            for c in sheet.cues
        ),
    ]
    lines = [
        f"Version of run {run_id}: approve it, or edit the cues' items below (each starts as the cue is now;"
        " an item left as it is changes nothing)."
    ]
    kept: dict[str, Any] = {"changes": prefilled(sheet)}
    if refused is not None:
        direction, reason = refused
        lines.insert(
            0, f"**Your last direction was refused: {reason}.** It is kept below: correct it and submit again.\n"
        )
        kept = direction.model_dump()
    return DirectionForm.with_initial_data(description="\n".join([*lines, "", *rows]), **kept)


def _span(cue: Any) -> str:
    if cue.scenes is None:
        return f"{cue.tc_in}–{cue.tc_out}"
    first, last = cue.scenes
    return f"scene {first}" if first == last else f"scenes {first}–{last}"


_STATES_LOCK = threading.Lock()


@contextmanager
def _waiting_states_say(message: str) -> Iterator[None]:
    """Prefect's pause and suspend write their Paused/Suspended state without a message; while asking,
    the state they propose carries ``message`` (the run's page shows it beside the state)."""
    with _STATES_LOCK:
        kept = prefect.flow_runs.Suspended, prefect.flow_runs.Paused
        prefect.flow_runs.Suspended = functools.partial(kept[0], message=message)
        prefect.flow_runs.Paused = functools.partial(kept[1], message=message)
        try:
            yield
        finally:
            prefect.flow_runs.Suspended, prefect.flow_runs.Paused = kept


def await_direction(
    run_id: int, asked: int, timeout_s: int, form: type[RunInput] = DirectionForm, refused: str | None = None
) -> Direction | None:
    """The producer's direction on version ``run_id`` (``asked`` decisions on it recorded before), or
    None when none came within ``timeout_s``. The key names the version and the question, so a
    resumed flow run asking again gets the answer it was given. The waiting state's message says
    so, and why the last direction was ``refused``."""
    key = f"review-run{run_id}-{asked}"
    log = get_run_logger()
    log.info("version %d waits for the producer's direction (the run's page in the Prefect UI)", run_id)
    message = f"version of run {run_id} waits for direction"
    if refused:
        message = f"direction refused: {refused}; the {message} again"
    try:
        with _waiting_states_say(message):
            if deployment.get_id() is not None:
                answer = suspend_flow_run(wait_for_input=form, timeout=timeout_s, key=key)
            else:
                answer = pause_flow_run(wait_for_input=form, timeout=timeout_s, key=key, poll_interval=2)
    except FlowPauseTimeout:
        log.warning("no direction within %d s: version %d stays unapproved", timeout_s, run_id)
        return None
    return Direction.model_validate(answer.model_dump())


def as_changed(direction: Direction, sheet_yaml: str, run_id: int) -> Direction:
    """The direction with only the items that change their cue (the form starts with every cue's item)."""
    sheet = parse_sheet(sheet_yaml, f"cue sheet of run {run_id}")
    return direction.model_copy(update={"changes": effective_changes(sheet, direction.changes)})


def directed_sheet(db_url: str, run_id: int, sheet_yaml: str, changes: list[CueChange]) -> CueSheet:
    """The next version's cue sheet: the version's sheet with the producer's changes made, checked on
    the version's own scenes (a span to regenerate outside its cue, say), so a direction that cannot
    be followed is refused with its one line before anything runs."""
    sheet = apply_changes(parse_sheet(sheet_yaml, f"cue sheet of run {run_id}"), changes)
    rows = sorted(repository.get_run(db_url, run_id).scenes, key=lambda r: r.index)
    scenes = [Scene(r.index, r.start_frame, r.end_frame, r.start_s, r.end_s, r.start_tc, r.end_tc) for r in rows]
    if scenes:
        resolve(sheet, scenes, sheet.fps, "direction")
    return sheet


@task(name="record-direction", cache_policy=NO_CACHE, **TRANSIENT_RETRIES)
def record_direction_task(
    db_url: str, run_id: int, direction: Direction, delivered_uri: str | None = None, refused: str | None = None
) -> int:
    """The decision on the record: approved (and where it went), changes, or refused (with why)."""
    decision = "refused" if refused else "approved" if direction.decision == "approve" else "changes"
    note = f"{direction.note} [refused: {refused}]".strip() if refused else direction.note
    review = {
        "run_id": run_id,
        "flow_run_id": flow_run.get_id(),
        "decision": decision,
        "reviewer": direction.reviewer,
        "note": f"{note}\ncomments:\n{direction.comments.strip()}".strip() if direction.comments.strip() else note,
        "changes": described(direction.changes),
        "delivered_uri": delivered_uri,
    }
    return repository.record_review(db_url, review)


def deliver(
    result: dict[str, Any], source: Source, delivery_root: str, daw: DawSettings, approval: dict[str, Any]
) -> str:
    """``deliver_task`` for a finished version (the flow's result), in a work folder removed after;
    the stems and printmaster named by the run's ``stem_names`` pattern, the approval in its provenance.json."""
    work = work_folder(f"deliver-{result['run_id']}")
    fps = parse_sheet(result["cue_sheet"], f"cue sheet of run {result['run_id']}").fps
    names = delivered_names(daw.stem_names, reel=source.title, run_id=result["run_id"], fps=fps, rate=MIX_RATE)
    try:
        return deliver_task(
            result["base_uri"], delivery_root, source.folder, result["version"], result["files"], work, names, approval
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


@task(name="deliver", cache_policy=NO_CACHE, **TRANSIENT_RETRIES)
def deliver_task(
    base_uri: str,
    delivery_root: str,
    reel: str,
    version: str,
    files: list[str],
    work: Path,
    names: dict[str, str] | None = None,
    approval: dict[str, Any] | None = None,
) -> str:
    """Copy the approved version's deliverables (those of ``DELIVERABLES`` among its ``files``) to
    ``<delivery_root>/<reel>/`` (a file in ``names`` under its name there), atomically as a version
    is published, its provenance.json with the ``approval`` (who, when, which version); returns where they are."""
    names = names or {}
    source, target = store_for(base_uri), store_for(delivery_root)
    folder_uri = target.child(delivery_root, reel)
    final_dir = target.assembly_folder(folder_uri, version, work)
    with staged_directory(final_dir) as stage:
        for name in (n for n in DELIVERABLES if n in files or n == "provenance.json"):  # written after its list
            fetched = source.fetch(f"{base_uri.rstrip('/')}/{name}", work / "delivery-cache")
            delivered = stage / names.get(name, name)
            delivered.parent.mkdir(parents=True, exist_ok=True)
            if name == "provenance.json" and approval is not None:
                document = json.loads(fetched.path.read_text())
                delivered.write_text(json.dumps({**document, "approval": approval}, indent=2, default=str) + "\n")
            else:
                shutil.copyfile(fetched.path, delivered)
    target.publish(final_dir, folder_uri, version)
    get_run_logger().info("delivered %s to %s", reel, target.location(target.version_uri(folder_uri, version)))
    return target.version_uri(folder_uri, version)


def approval_facts(result: dict[str, Any], direction: Direction) -> dict[str, Any]:
    """The approval as the delivered provenance.json, the artifact and the run's state state it."""
    return {
        "approved_by": direction.reviewer,
        "approved_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "run_id": result["run_id"],
        "version": result["version"],
        "note": direction.note,
    }


def show_approval(result: dict[str, Any], approval: dict[str, Any], delivered: str) -> Completed:
    """The approved run as the producer sees it on its page: an artifact saying who approved which
    version when and where it went, the ``approved`` tag, and the final state's message (the state
    the flow ends in, with its result)."""
    where = public_uri(delivered)
    line = f"approved by {approval['approved_by']}: version {approval['version']} (run {approval['run_id']}), delivered to {where}"
    create_markdown_artifact(
        key=f"approval-{result['review_artifact'].removeprefix('review-')}",
        markdown="\n".join(
            [
                f"# Approved: {result['reel']}",
                "",
                f"**{approval['approved_by']}** approved version `{approval['version']}` (run {approval['run_id']}) "
                f"at {approval['approved_at']}.  ",
                f"Delivered to `{where}`.  ",
                f"Note: {approval['note']}" if approval["note"] else "",
            ]
        ),
        description=f"approval of {result['reel']}: {approval['approved_by']}, version {approval['version']}",
    )
    _tag_flow_run("approved")
    return Completed(
        message=line, data={**result, "approved": True, "delivered": delivered, "reviewer": approval["approved_by"]}
    )


def show_refusal(result: dict[str, Any], direction: Direction, reason: str) -> None:
    """A direction that could not be followed, on the run's page (beside the form that asks again)."""
    changes = "".join(f"\n- `{c}`" for c in described(direction.changes)) or " (none)"
    create_markdown_artifact(
        key=f"direction-refused-{result['review_artifact'].removeprefix('review-')}",
        markdown=f"# Direction refused\n\n**{reason}**\n\nFrom {direction.reviewer}; changes asked:{changes}\n\n"
        f"Version `{result['version']}` waits for direction again.",
        description=f"direction refused: {reason}",
    )


def _tag_flow_run(tag: str) -> None:
    run_id = flow_run.get_id()
    if run_id is None:
        return
    with get_client(sync_client=True) as client:
        tags = client.read_flow_run(run_id).tags
        if tag not in tags:
            client.update_flow_run(run_id, tags=[*tags, tag])
