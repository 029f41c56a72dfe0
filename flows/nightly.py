"""The ``nightly`` flow: every reel under a bucket prefix that has no finished soundtrack yet for
its current content (ETag) and these settings, processed with bounded concurrency; one bad reel
never stops the others. Interrupted (a signal or a cancellation reaches this flow's main thread
only), it asks the reels in flight to stop (``request_stop``): each ends at its next stage boundary,
closing its own row as cancelled and removing its folders, before the batch itself ends."""

from __future__ import annotations

import re
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import TerminationSignal
from prefect.futures import PrefectFuture, as_completed, wait
from prefect.runtime import flow_run

from audiox_core.lifecycle import clear_stop, request_stop
from audiox_core.reel.preflight import refuse_secrets
from audiox_core.reel.settings import RunSettings
from audiox_core.store.uri import public_uri
from audiox_core.workspace import studio_home
from db import repository
from db.repository import CANCELLED
from db.session import database_url
from flows.soundtrack import soundtrack
from tasks.footage import list_footage, unprocessed
from tasks.provenance import close_process_runs
from tasks.run_end import forget_secret_parameters, interruption_reason


@task(name="reel", cache_policy=NO_CACHE)
def reel_task(source_uri: str, out_prefix: str, settings: dict[str, Any]) -> dict[str, Any]:
    """One reel as a child flow run; its failure is reported, not raised, so the batch goes on."""
    state = soundtrack(source_uri, out_prefix, settings, trigger="nightly", return_state=True)
    if state.is_completed():
        return {"source": source_uri, "status": "succeeded", **state.result()}
    error = state.result(raise_on_failure=False)
    return {"source": source_uri, "status": "failed", "error": str(error)}


@task(name="nightly-summary", cache_policy=NO_CACHE)
def summary_task(bucket: str, prefix: str, results: list[dict[str, Any]]) -> str:
    """One table for the night: per reel its status, scenes, cues generated and reused, loudness and
    a link to its review page (or why it failed)."""
    db_url = database_url(studio_home())
    lines = [
        f"# Nightly: s3://{bucket}/{prefix}",
        "",
        "| reel | status | scenes | cues new / reused | LUFS | review | approved |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for r in sorted(results, key=lambda r: r["source"]):
        approval = _approval(db_url, r["source"])
        if r["status"] == "succeeded":
            lines.append(
                f"| {r['reel']} | succeeded | {r['scenes']} | {r['cues_generated']} / {r['cues_reused']} | "
                f"{r['lufs']:.1f} | [review page]({r['review_page']}) | {approval} |"
            )
        else:
            lines.append(f"| {r['source']} | failed | | | | {r['error'].replace('|', '/')} | {approval} |")
    key = "nightly-" + (re.sub(r"[^a-z0-9]+", "-", f"{bucket}-{prefix}".lower()).strip("-") or "batch")
    create_markdown_artifact(key=key, markdown="\n".join(lines) + "\n", description="the night's reels")
    return key


def _approval(db_url: str, source_uri: str) -> str:
    """The reel's newest approval (who, when, which version, where delivered), or that it has none yet."""
    a = repository.latest_approval(db_url, public_uri(source_uri))
    if a is None:
        return "not yet (tonight's version awaits review)"
    when = a["decided_at"].strftime("%Y-%m-%d %H:%M")
    return f"{a['reviewer']}, {when}: run {a['run_id']}, delivered to {a['delivered_uri'] or '-'}".replace("|", "/")


def run_name() -> str:
    """A nightly flow run's name: the footage it lists (``nightly · s3://footage/incoming/``)."""
    p = flow_run.parameters
    return f"nightly · s3://{p.get('bucket', '')}/{p.get('prefix', '')}"


@flow(name="nightly", flow_run_name=run_name, log_prints=False)
def nightly(
    bucket: str, prefix: str = "", out_prefix: str = "", settings: dict[str, Any] | None = None, max_parallel: int = 2
) -> dict[str, Any]:
    """Soundtracks for new or changed footage under s3://bucket/prefix, written under ``out_prefix``
    (default s3://bucket/soundtracks). ``max_parallel`` reels run at once."""
    log = get_run_logger()
    forget_secret_parameters({"destination": out_prefix})
    refuse_secrets({"destination": out_prefix})
    settings = RunSettings.from_dict(settings).to_dict()
    out_prefix = out_prefix or f"s3://{bucket}/soundtracks"
    footage = list_footage(bucket, prefix)
    todo = unprocessed(footage, settings, out_prefix)
    log.info("%d reels under s3://%s/%s, %d to do", len(footage), bucket, prefix, len(todo))
    results: list[dict[str, Any]] = []
    running: list[PrefectFuture[dict[str, Any]]] = []
    try:
        for f in todo:  # a rolling window: the next reel starts as soon as any running one ends
            if len(running) >= max(1, max_parallel):
                done = next(as_completed(running))
                running.remove(done)
                results.append(done.result())
            running.append(reel_task.submit(f["uri"], out_prefix, settings))
        results += [done.result() for done in as_completed(running)]
    except (KeyboardInterrupt, TerminationSignal) as e:  # signals reach this (main) thread only
        reason = interruption_reason(e)
        request_stop(reason)
        try:
            wait(running)  # each reel in flight stops at its next stage and closes its own row
            close_process_runs(database_url(studio_home()), error=reason, status=CANCELLED)  # any a reel left open
        finally:
            clear_stop()
        raise
    failed = [r for r in results if r["status"] == "failed"]
    for r in failed:
        log.warning("%s", r["error"])
    if results:
        summary_task(bucket, prefix, results)
    return {
        "listed": len(footage),
        "skipped": len(footage) - len(todo),
        "succeeded": len(results) - len(failed),
        "failed": len(failed),
        "runs": sorted(results, key=lambda r: r["source"]),
    }
