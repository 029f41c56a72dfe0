"""Tasks over footage listings: what is under a bucket prefix, and which of it still needs a soundtrack."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from audiox_core.media.probe import is_footage
from audiox_core.s3 import list_objects
from audiox_core.workspace import studio_home
from db import repository
from db.session import database_url
from tasks.retry import TRANSIENT_RETRIES


@task(name="list-footage", cache_policy=NO_CACHE, **TRANSIENT_RETRIES)
def list_footage(bucket: str, prefix: str) -> list[dict[str, str]]:
    """Video files under the prefix (by extension), with their ETags."""
    return [{"uri": o.uri, "version": o.etag} for o in list_objects(f"s3://{bucket}/{prefix}") if is_footage(o.key)]


@task(name="select-unprocessed", cache_policy=NO_CACHE)
def unprocessed(footage: list[dict[str, str]], settings: dict[str, Any]) -> list[dict[str, str]]:
    """The footage whose current version has no succeeded run with these settings in the provenance database."""
    url = database_url(studio_home())
    return [f for f in footage if not repository.processed(url, f["uri"], f["version"], settings)]
