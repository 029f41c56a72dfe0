"""Tasks over footage listings: what is under a bucket prefix, and which of it still needs a soundtrack."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from audiox_core.errors import InputError
from audiox_core.reel.settings import RunSettings
from audiox_core.store.s3 import list_objects
from audiox_core.store.uri import public_uri
from audiox_core.video.probe import is_footage
from audiox_core.workspace import studio_home
from db import repository
from db.session import database_url
from tasks.retry import TRANSIENT_RETRIES


@task(name="list-footage", cache_policy=NO_CACHE, **TRANSIENT_RETRIES)
def list_footage(bucket: str, prefix: str) -> list[dict[str, str]]:
    """Video files under the prefix (by extension), with their ETags."""
    return [{"uri": o.uri, "version": o.etag} for o in list_objects(f"s3://{bucket}/{prefix}") if is_footage(o.key)]


@task(name="select-unprocessed", cache_policy=NO_CACHE)
def unprocessed(footage: list[dict[str, str]], settings: dict[str, Any], out_uri: str) -> list[dict[str, str]]:
    """The footage whose current version has no succeeded run to ``out_uri`` with these settings in
    the provenance database."""
    return needing_soundtracks(database_url(studio_home()), footage, settings, out_uri)


def needing_soundtracks(
    url: str, footage: list[dict[str, str]], settings: dict[str, Any], out_uri: str
) -> list[dict[str, str]]:
    """The footage whose version no run delivered to ``out_uri`` with the same effective settings,
    whichever trigger started it and however it spelled them (both sides normalised by
    ``RunSettings``); a run to another destination leaves this one without its soundtrack."""
    wanted = RunSettings.from_dict(settings)
    out = public_uri(out_uri)  # runs store their destination cleaned
    return [
        f
        for f in footage
        if not any(
            same_settings(stored, wanted) for stored in repository.succeeded_settings(url, f["uri"], f["version"], out)
        )
    ]


def same_settings(stored: dict[str, Any], wanted: RunSettings) -> bool:
    """Whether a run's stored settings are ``wanted`` once normalised; settings this version cannot
    read (a key of an older release) are not the same."""
    try:
        return comparable(RunSettings.from_dict(stored)) == comparable(wanted)
    except InputError:
        return False


def comparable(settings: RunSettings) -> RunSettings:
    """``settings`` with a local model path resolved to its absolute form (``models/x/``, ``./models/x``
    and ``/abs/models/x`` name one model); ``tiny`` and ``demo`` are names, kept as they are."""
    if settings.model in ("tiny", "demo"):
        return settings
    return replace(settings, model=str(Path(settings.model).expanduser().resolve()))
