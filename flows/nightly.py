"""The ``nightly`` flow: every reel under a bucket prefix that has no finished soundtrack yet for
its current content (ETag) and these settings, processed with bounded concurrency; one bad reel
never stops the others."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from audiox_core.settings import RunSettings
from flows.soundtrack import soundtrack
from tasks.footage import list_footage, unprocessed


@task(name="reel", cache_policy=NO_CACHE)
def reel_task(source_uri: str, out_prefix: str, settings: dict[str, Any]) -> dict[str, Any]:
    """One reel as a child flow run; its failure is reported, not raised, so the batch goes on."""
    state = soundtrack(source_uri, out_prefix, settings, trigger="nightly", return_state=True)
    if state.is_completed():
        return {"source": source_uri, "status": "succeeded", **state.result()}
    error = state.result(raise_on_failure=False)
    return {"source": source_uri, "status": "failed", "error": str(error)}


@flow(name="nightly", log_prints=False)
def nightly(
    bucket: str, prefix: str = "", out_prefix: str = "", settings: dict[str, Any] | None = None, max_parallel: int = 2
) -> dict[str, Any]:
    """Soundtracks for new or changed footage under s3://bucket/prefix, written under ``out_prefix``
    (default s3://bucket/soundtracks). ``max_parallel`` reels run at once."""
    log = get_run_logger()
    settings = RunSettings.from_dict(settings).to_dict()
    out_prefix = out_prefix or f"s3://{bucket}/soundtracks"
    footage = list_footage(bucket, prefix)
    todo = unprocessed(footage, settings)
    log.info("%d reels under s3://%s/%s, %d to do", len(footage), bucket, prefix, len(todo))
    results: list[dict[str, Any]] = []
    for first in range(0, len(todo), max(1, max_parallel)):
        batch = todo[first : first + max(1, max_parallel)]
        futures = [reel_task.submit(f["uri"], out_prefix, settings) for f in batch]
        results += [f.result() for f in futures]
    failed = [r for r in results if r["status"] == "failed"]
    for r in failed:
        log.warning("%s", r["error"])
    return {
        "listed": len(footage),
        "skipped": len(footage) - len(todo),
        "succeeded": len(results) - len(failed),
        "failed": len(failed),
        "runs": results,
    }
