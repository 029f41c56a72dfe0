"""Prefect's result storage for the inference workers' task parameters and JSON results: a local
folder for one machine, or an ``s3://`` prefix (the shared store's ``results/``) that flow runs and
inference workers on any machine read. On S3 it is a saved block of our own type holding only the
bucket and prefix: each machine reaches S3 with its own credentials and endpoint (AWS_* variables,
the instance role), so no secret is stored in Prefect. Prefect reads a record with the serializer the
record names, so whoever may write under that prefix may run code in the workers: give the prefix
the same write access as the workers' own code."""

from __future__ import annotations

import asyncio
import hashlib
import os
import stat
from functools import cache
from pathlib import Path

from prefect.exceptions import ObjectAlreadyExists
from prefect.filesystems import WritableFileSystem

from audiox_core.errors import InputError
from audiox_core.store.s3 import s3_client, s3_error
from audiox_core.store.shared import shared_store


class S3Results(WritableFileSystem):
    """Prefect result records as objects under ``s3://bucket/prefix/``, through boto3 with this
    machine's S3 settings."""

    _block_type_name = "AudioX S3 results"
    _block_type_slug = "audiox-s3-results"
    _description = "Task parameters and results of AudioX Studio's inference workers, on S3."

    bucket: str
    prefix: str = ""

    # Prefect calls these synchronously with ``_sync=True`` (its sync-compatible block protocol)
    # and awaits the ``a``-prefixed ones; a missing record is an exception either way.
    def _key(self, path: str) -> str:
        if path.startswith("/") or ".." in path.split("/"):
            raise InputError(f"{path}: a result key with a leading '/' or a '..' segment is refused")
        return f"{self.prefix}/{path}" if self.prefix else path

    def read_path(self, path: str, _sync: bool = True) -> bytes:  # type: ignore[override]
        key = self._key(path)
        try:
            return s3_client().get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except Exception as e:
            raise s3_error(f"s3://{self.bucket}/{key}", e) from e

    def write_path(self, path: str, content: bytes, _sync: bool = True) -> str:  # type: ignore[override]
        key = self._key(path)
        try:
            s3_client().put_object(Bucket=self.bucket, Key=key, Body=content, ContentType="application/json")
        except Exception as e:
            raise s3_error(f"s3://{self.bucket}/{key}", e) from e
        return path

    async def aread_path(self, path: str) -> bytes:
        return await asyncio.to_thread(self.read_path, path)

    async def awrite_path(self, path: str, content: bytes) -> str:
        return await asyncio.to_thread(self.write_path, path, content)


def results_storage() -> Path | S3Results:
    """Where Prefect keeps the inference tasks' parameters and results: ``<shared store>/results``.
    A local folder is created 0700 and refused when another account could write into it (Prefect
    would read a record planted there with the serializer it names, pickle included); an S3 prefix
    is a block saved once per process under a name made from the prefix."""
    store = shared_store()
    if store.startswith("s3://"):
        return _saved_block(f"{store}/results")
    folder = Path(store) / "results"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = folder.stat()
    if st.st_uid != os.getuid() or st.st_mode & 0o022:
        raise InputError(
            f"{folder}: Prefect's results folder is writable by others or owned by another user "
            f"(mode {stat.filemode(st.st_mode)}, uid {st.st_uid}); make it yours alone: chmod 700 (and chown) it"
        )
    return folder


@cache
def _saved_block(prefix_uri: str) -> S3Results:
    from audiox_core.store.s3 import parse_s3

    bucket, prefix = parse_s3(prefix_uri)
    block = S3Results(bucket=bucket, prefix=prefix)
    name = f"audiox-results-{hashlib.sha256(prefix_uri.encode()).hexdigest()[:16]}"
    try:
        block.save(name, overwrite=True)
    except ObjectAlreadyExists:  # another worker registered the block type or schema a moment before us
        block.save(name, overwrite=True)
    return block
