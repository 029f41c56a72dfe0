"""Closing what killed processes left behind.

A process killed with SIGKILL (or the OOM killer, or a power cut) runs no clean-up: its run row stays
``running``, its Prefect flow run Running, its hidden staging folder sits in the delivery folder and
its work folder (frames.rgb: about 2.7 GB per hour of footage) on disk. Rows and folders carry the
process tag of their owner (``audiox_core.lifecycle``), so a sweep on the same host tells the dead
owners from the live ones; what a live process or another host owns is never touched. The sweep
runs at the start of every run (it reads only the rows still running) and in
``audiox-studio doctor --repair`` (which also looks in every output root the database knows).
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import httpx
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType
from prefect.exceptions import ObjectNotFound
from prefect.states import Crashed

from audiox_core.errors import InputError
from audiox_core.lifecycle import abandoned, ended_reason, tag_alive
from audiox_core.store.cache import cache_root, sources_cache
from audiox_core.store.local import local_path
from audiox_core.store.local_versions import SUFFIX as VERSIONS_SUFFIX
from audiox_core.store.shared import tensor_cache
from audiox_core.store.staged import sweep_staged
from audiox_core.store.uri import public_uri, scrub
from audiox_core.workspace import studio_home
from db import repository
from db.pending import PENDING_CLOSINGS, apply_deferred

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Repair:
    """One thing a sweep closed or removed: its kind (run, flow run, staging folder, work folder) and a line."""

    kind: str
    line: str


def sweep(db_url: str, out_uris: Iterable[str] = ()) -> list[Repair]:
    """Close the runs of dead processes on this host as crashed (and their Prefect flow runs, when the
    API answers), then remove the dead processes' staging folders in those runs' output roots and in
    ``out_uris``, and their work folders."""
    kept = apply_deferred(studio_home() / PENDING_CLOSINGS, db_url)  # first: these runs' ends are known
    repairs = [Repair("run", f"recorded the end of run {i}, kept while the database was away") for i in kept]
    closed = repository.sweep_abandoned(db_url, dead=lambda tag: tag_alive(tag) is False, reason=ended_reason)
    repairs += [Repair("run", f"closed run {r['id']} as crashed: {ended_reason(r['process'])}") for r in closed]
    for r in closed:
        if r["flow_run_id"] and _crash_flow_run(r["flow_run_id"], ended_reason(r["process"])):
            repairs.append(Repair("flow run", f"set Prefect flow run {r['flow_run_id']} (run {r['id']}) to Crashed"))
    for root in sorted({*out_uris, *(r["out_uri"] for r in closed if r["out_uri"])}):
        repairs += _sweep_out_root(root)
    work = studio_home() / "work"
    for folder in sorted(work.iterdir()) if work.is_dir() else ():
        if abandoned(folder.name):
            shutil.rmtree(folder, ignore_errors=True)
            repairs.append(Repair("work folder", f"removed work folder {folder}"))
    if staged := sweep_staged(cache_root(), tensor_cache()):
        repairs.append(Repair("staged frames", f"removed {staged} staged-frame cache entries of dead processes"))
    sources = sources_cache()  # s3.download's .<name>.<tag>.<random>.partial
    for partial in sorted(sources.iterdir()) if sources.is_dir() else ():
        if partial.name.startswith(".") and partial.is_file() and abandoned(partial.name):
            partial.unlink(missing_ok=True)
    return repairs


@task(name="sweep-abandoned", cache_policy=NO_CACHE)
def sweep_task(db_url: str, out_uri: str) -> int:
    """``sweep`` before a run starts, with this run's output root; logs one line per repair. Clean-up
    of other runs' leftovers never fails this run (it runs before this run's row exists, so a failure
    would go unrecorded): whatever goes wrong is one warning line, and ``doctor --repair`` can retry."""
    logger = get_run_logger()
    try:
        repairs = sweep(db_url, [public_uri(out_uri)])
    except Exception as e:  # any failure of the clean-up is reported, and the run goes on
        logger.warning("sweep of abandoned runs and folders skipped: %s: %s", type(e).__name__, scrub(str(e)))
        return 0
    for r in repairs:
        logger.warning("%s", r.line)
    return len(repairs)


def _crash_flow_run(flow_run_id: str, reason: str) -> bool:
    """Set a flow run still Running or Pending to Crashed with ``reason``; False when it is in another
    state, unknown to this API, or the API cannot be reached (said in a warning)."""
    try:
        with get_client(sync_client=True) as client:
            state = client.read_flow_run(UUID(flow_run_id)).state
            if state is None or state.type not in (StateType.RUNNING, StateType.PENDING):
                return False
            client.set_flow_run_state(UUID(flow_run_id), Crashed(message=reason), force=True)
    except ObjectNotFound:
        return False
    except httpx.HTTPError as e:
        log.warning("Prefect flow run %s left as it is: the Prefect API did not answer (%s)", flow_run_id, e)
        return False
    return True


def _is_versions(folder: Path) -> bool:
    return folder.name.endswith(VERSIONS_SUFFIX) and folder.is_dir() and not folder.is_symlink()


def _sweep_out_root(root_uri: str) -> list[Repair]:
    """A local output root's hidden entries of dead processes (and those in its reels' versions
    folders): ``.partial`` staging folders, write probes and pointer links removed; a ``.previous`` folder (the version being replaced when the process died) put back
    if the reel's folder is missing, else removed. S3 outputs are staged inside the work folder."""
    if root_uri.startswith("s3://"):
        return []
    try:
        root = local_path(root_uri)
        entries = sorted(root.iterdir()) if root.is_dir() else []
        entries += [e for folder in entries if _is_versions(folder) for e in sorted(folder.iterdir())]
    except (InputError, OSError) as e:  # an output root gone or unreadable is the run's own check to report
        log.warning("output root %s not swept: %s", root_uri, e)
        return []
    repairs = []
    for entry in entries:
        if not (entry.name.startswith(".") and abandoned(entry.name)):
            continue
        final = entry.parent / entry.name[1:].rsplit(".", 2)[0]  # .<reel>.<tag>.previous
        if entry.name.endswith(".previous") and not final.exists():
            os.replace(entry, final)
            repairs.append(Repair("staging folder", f"restored {final} from {entry.name} (its successor never landed)"))
        elif entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
            repairs.append(Repair("staging folder", f"removed staging folder {entry}"))
        else:
            entry.unlink(missing_ok=True)
            repairs.append(Repair("staging folder", f"removed {entry}"))
    return repairs
