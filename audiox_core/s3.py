"""S3 behind the storage protocol: boto3 with adaptive retries, multipart transfers with SHA-256
checksums, any S3-compatible endpoint (``AWS_ENDPOINT_URL``), and a local download cache keyed by
ETag and size, so the same object version is downloaded once. Keys never become local paths (the
cache names files by hash), and keys with ``..`` segments or a leading ``/`` are refused. A finished
reel folder is assembled locally and uploaded file by file, provenance.json last.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import urlparse

from audiox_core.errors import InputError, TransientError
from audiox_core.storage import CHUNK, Fetched

# S3 error codes: the request was wrong (never retried) or the service was busy (retried).
_INPUT_CODES = {
    "NoSuchBucket",
    "NoSuchKey",
    "404",
    "AccessDenied",
    "403",
    "InvalidBucketName",
    "AllAccessDisabled",
    "InvalidObjectState",
}
_TRANSIENT_CODES = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "InternalError",
    "ServiceUnavailable",
    "503",
    "500",
}


@dataclass(frozen=True)
class S3Object:
    bucket: str
    key: str
    size: int = 0
    etag: str = ""
    version: str | None = None

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def parse_s3(uri: str) -> tuple[str, str]:
    """(bucket, key) of an s3:// URI; InputError for keys that could escape a folder."""
    parsed = urlparse(uri)
    key = uri[len("s3://") + len(parsed.netloc) + 1 :] if uri.count("/") > 2 else ""
    if not parsed.netloc:
        raise InputError(f"{uri}: no bucket in the S3 URI")
    if key.startswith("/") or ".." in key.split("/"):
        raise InputError(f"{uri}: S3 key with a leading '/' or a '..' segment is refused")
    return parsed.netloc, key


@cache
def s3_client():
    """One boto3 S3 client per process: adaptive retries; the endpoint from AWS_ENDPOINT_URL if set."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3", config=Config(retries={"mode": "adaptive", "max_attempts": 8}, connect_timeout=10, read_timeout=60)
    )


def _transfer_config():
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(multipart_threshold=16 * CHUNK, multipart_chunksize=16 * CHUNK, max_concurrency=4)


def s3_error(uri: str, e: Exception) -> Exception:
    """Our exception for a boto3/botocore failure on ``uri``: InputError or TransientError."""
    from botocore.exceptions import (
        ClientError,
        ConnectionError,
        EndpointConnectionError,
        ReadTimeoutError,
    )

    if isinstance(e, ClientError):
        code = str(e.response.get("Error", {}).get("Code", ""))
        status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        message = e.response.get("Error", {}).get("Message", "") or code
        if code in {"AccessDenied", "403", "AllAccessDisabled"}:
            return InputError(f"{uri}: access denied ({code}): the credentials in use may not read or write it")
        if code in _INPUT_CODES or (400 <= status < 500 and code not in _TRANSIENT_CODES):
            return InputError(f"{uri}: {message} ({code or status})")
        return TransientError(f"{uri}: S3 is busy or failing: {message} ({code or status})")
    if isinstance(e, (EndpointConnectionError, ConnectionError, ReadTimeoutError)):
        return TransientError(f"{uri}: cannot reach S3 ({type(e).__name__})")
    return e


def head(uri: str) -> S3Object:
    bucket, key = parse_s3(uri)
    try:
        meta = s3_client().head_object(Bucket=bucket, Key=key)
    except Exception as e:
        raise s3_error(uri, e) from e
    return S3Object(bucket, key, meta["ContentLength"], meta["ETag"].strip('"'), meta.get("VersionId"))


def list_objects(prefix_uri: str) -> list[S3Object]:
    """Every object under an s3:// prefix (paginated)."""
    bucket, prefix = parse_s3(prefix_uri)
    found = []
    try:
        for page in s3_client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for o in page.get("Contents", []):
                found.append(S3Object(bucket, o["Key"], o["Size"], o["ETag"].strip('"')))
    except Exception as e:
        raise s3_error(prefix_uri, e) from e
    return found


def download(uri: str, cache_dir: Path) -> tuple[Path, S3Object]:
    """The object downloaded (multipart, checksum verified) into ``cache_dir`` under a name made from
    bucket, key, ETag and size; a cached copy of the same version is used as it is."""
    obj = head(uri)
    if obj.size == 0:
        raise InputError(f"{uri}: object is empty (0 bytes)")
    name = hashlib.sha256(f"{obj.bucket}/{obj.key}\0{obj.etag}\0{obj.size}".encode()).hexdigest()
    cached = cache_dir / name
    if cached.is_file() and cached.stat().st_size == obj.size:
        return cached, obj
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache_dir / f".{name}.partial"
    try:
        s3_client().download_file(
            obj.bucket, obj.key, str(tmp), ExtraArgs={"ChecksumMode": "ENABLED"}, Config=_transfer_config()
        )
    except Exception as e:
        tmp.unlink(missing_ok=True)
        raise s3_error(uri, e) from e
    os.replace(tmp, cached)
    return cached, obj


def upload_folder(folder: Path, out_uri: str, last: str = "provenance.json") -> dict[Path, str]:
    """Upload every file of a finished folder under ``out_uri`` (``last`` goes last, marking the set
    complete); returns local path → s3 URI."""
    bucket, prefix = parse_s3(out_uri.rstrip("/") + "/")
    files = sorted((p for p in folder.rglob("*") if p.is_file()), key=lambda p: (p.name == last, str(p)))
    uris = {}
    for path in files:
        key = prefix + path.relative_to(folder).as_posix()
        try:
            s3_client().upload_file(
                str(path), bucket, key, ExtraArgs={"ChecksumAlgorithm": "SHA256"}, Config=_transfer_config()
            )
        except Exception as e:
            raise s3_error(f"s3://{bucket}/{key}", e) from e
        uris[path] = f"s3://{bucket}/{key}"
    return uris


class S3Store:
    """``s3://bucket/key`` URIs: objects read through the download cache, reel folders assembled under
    the run's work folder and uploaded when complete, links presigned (7 days by default)."""

    def fetch(self, uri: str, cache_dir: Path) -> Fetched:
        path, obj = download(uri, cache_dir)
        return Fetched(path, obj.etag)  # the ETag: content identity, as the nightly listing sees it

    def child(self, root_uri: str, name: str) -> str:
        parse_s3(root_uri.rstrip("/") + "/")
        return f"{root_uri.rstrip('/')}/{name}"

    def assembly_folder(self, folder_uri: str, work: Path) -> Path:
        bucket, key = parse_s3(folder_uri)
        return work / "out" / hashlib.sha256(f"{bucket}/{key}".encode()).hexdigest()[:16] / key.rsplit("/", 1)[-1]

    def publish(self, folder: Path, folder_uri: str) -> None:
        upload_folder(folder, folder_uri)

    def location(self, folder_uri: str) -> str:
        return folder_uri

    def link(self, uri: str, expires_s: int = 7 * 24 * 3600) -> str:
        bucket, key = parse_s3(uri)
        return s3_client().generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_s
        )
