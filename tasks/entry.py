"""What a soundtrack run does before its stages: the database it records in, the checks of what it was
given, the versions an earlier execution of the flow run made, and the work folder of one reel."""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prefect.runtime import flow_run

from audiox_core.lifecycle import work_folder
from audiox_core.reel.preflight import check_database, check_destination, check_source_uri, refuse_secrets
from audiox_core.reel.settings import RunSettings
from audiox_core.reel.source import Source
from audiox_core.store.by_uri import store_for
from audiox_core.store.full_disk import full_disk_named
from audiox_core.store.local import local_path
from audiox_core.store.s3 import link_expiry_s
from audiox_core.store.uri import public_uri
from audiox_core.workspace import studio_home
from db import repository
from db.session import connection_problem, database_url
from tasks.inference import check_inference_settings


def database() -> str:
    """This installation's database URL, checked to answer (one line naming it, redacted, otherwise)."""
    url = database_url(studio_home())
    check_database(url, connection_problem)
    return url


def entry_checks(uris: Mapping[str, str | None], settings: Mapping[str, Any], out_uri: str) -> RunSettings:
    """The CLI's checks again, for deployment and API callers: no URI with secrets, every setting valid,
    the device there, and (S3) a valid link expiry for the review, before any work starts."""
    refuse_secrets(uris)
    s = RunSettings.from_dict(dict(settings))
    check_inference_settings(s.device)  # the device too: not after fetch, probe and model load
    if out_uri.startswith("s3://"):
        link_expiry_s()  # the review's presigned links: a bad value fails now, not after generation
    return s


def check_inputs(source: Source, out_uri: str) -> None:
    """The source can be read and the destination written, before the fetch."""
    check_source_uri(source.uri)
    check_destination(out_uri, 0)


def versions_made(db_url: str) -> list[dict[str, Any]]:
    """The versions this flow run made before it was suspended (oldest first)."""
    return repository.flow_run_versions(db_url, flow_run.get_id())


def questions_asked(db_url: str, run_id: int) -> int:
    """How many decisions on version ``run_id`` are recorded: the key of the next question on it."""
    return len(repository.reviews(db_url, [run_id]))


def delivery_root(out_uri: str, delivery_uri: str | None) -> str:
    """Where approved versions go: ``delivery_uri``, or ``<out_uri>/delivered``."""
    return delivery_uri or store_for(out_uri).child(out_uri, "delivered")


def location(uri: str) -> str:
    """Where a person finds a folder or file: a local path, or its URI."""
    return store_for(uri).location(uri)


def link(uri: str) -> str:
    """A URL that opens a file in a browser (S3: presigned; local: through ``audiox-studio serve``)."""
    return store_for(uri).link(uri)


@contextmanager
def reel_work(source: Source, out_uri: str) -> Iterator[Path]:
    """The reel's work folder, removed on every exit; a disk that fills is named in one line."""
    work = work_folder(source.folder)  # a killed process's is swept by the next run
    try:
        with full_disk_named(_written_folders(out_uri, work)):
            yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _written_folders(out_uri: str, work: Path) -> dict[str, Path]:
    """The folders a run writes to, by the name an error shows: the output root (local) and the work folder."""
    folders = {} if out_uri.startswith("s3://") else {public_uri(out_uri): local_path(out_uri)}
    return {**folders, f"{work.parent} (the work folder under AUDIOX_HOME)": work}
