"""S3 behind the ``Store`` protocol: adaptive retries, checksummed multipart transfers, a download cache by ETag, and
all-or-nothing publishing of a version behind ``current.json``."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import uuid
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from urllib.parse import urlparse

from audiox_core.environment import env_seconds
from audiox_core.errors import InputError, TransientError
from audiox_core.lifecycle import process_tag
from audiox_core.store.files import CHUNK, sha256_file
from audiox_core.store.media_types import media_type
from audiox_core.store.protocol import Fetched
from audiox_core.store.uri import public_uri

log = logging.getLogger(__name__)

CURRENT = "current.json"
VERSIONS = "versions"

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
        raise InputError(f"{public_uri(uri)}: no bucket in the S3 URI")
    if key.startswith("/") or ".." in key.split("/"):
        raise InputError(f"{public_uri(uri)}: S3 key with a leading '/' or a '..' segment is refused")
    return parsed.netloc, key


@cache
def s3_client():
    """One boto3 S3 client per process: adaptive retries; the endpoint from AWS_ENDPOINT_URL if set.
    SigV4 throughout: botocore would presign with the deprecated SigV2 in us-east-1, whose links have
    no upper bound on their lifetime."""
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"mode": "adaptive", "max_attempts": 8}, connect_timeout=10, read_timeout=60, signature_version="s3v4"
    )
    return boto3.client("s3", config=config)


def _transfer_config():
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(multipart_threshold=16 * CHUNK, multipart_chunksize=16 * CHUNK, max_concurrency=4)


def s3_error(uri: str, e: Exception) -> Exception:
    """Our exception for a boto3/botocore/s3transfer failure on ``uri``, one line naming it:
    InputError (4xx, no credentials, a request botocore refused before sending it: an invalid
    bucket name, say) or TransientError (5xx, throttling, connection, a transfer that failed
    without a service answer). boto3's ``S3UploadFailedError`` wraps the service's
    answer in its text; the answer itself is the exception it was raised while handling."""
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        NoCredentialsError,
        ParamValidationError,
        PartialCredentialsError,
        UnsupportedS3ArnError,
        ValidationError,
    )
    from s3transfer.exceptions import RetriesExceededError, S3UploadFailedError

    userinfo = "@" in urlparse(uri).netloc
    uri = public_uri(uri)
    cause = _service_answer(e)
    if isinstance(cause, ClientError):
        code = str(cause.response.get("Error", {}).get("Code", ""))
        status = cause.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        message = cause.response.get("Error", {}).get("Message", "") or code
        if code in {"AccessDenied", "403", "AllAccessDisabled"}:
            return InputError(f"{uri}: access denied ({code}): the credentials in use may not read or write it")
        if code in _INPUT_CODES or (400 <= status < 500 and code not in _TRANSIENT_CODES):
            return InputError(f"{uri}: {message} ({code or status})")
        return TransientError(f"{uri}: S3 is busy or failing: {message} ({code or status})")
    if isinstance(cause, (NoCredentialsError, PartialCredentialsError)):
        return InputError(f"{uri}: no usable AWS credentials ({type(cause).__name__}); set AWS_PROFILE or AWS_* keys")
    if isinstance(cause, (ParamValidationError, ValidationError, UnsupportedS3ArnError)):
        # botocore's text quotes the raw bucket (it may hold credentials): named by the cleaned URI only
        if userinfo:
            return InputError(f"{uri}: credentials in an S3 URI are refused; set AWS_PROFILE or AWS_* keys")
        return InputError(f"{uri}: not a valid S3 bucket name or key ({type(cause).__name__}, refused before sending)")
    if isinstance(cause, BotoCoreError):  # connection refused or reset, timeouts, truncated bodies, checksums
        return TransientError(f"{uri}: cannot reach S3 or the transfer broke off ({type(cause).__name__})")
    if isinstance(cause, (Boto3Error, RetriesExceededError, S3UploadFailedError)):
        return TransientError(f"{uri}: transfer failed ({type(cause).__name__})")
    return e


def _service_answer(e: BaseException) -> BaseException:
    """The botocore exception behind a transfer error (its ``__cause__`` or ``__context__``), else ``e``."""
    from botocore.exceptions import BotoCoreError, ClientError

    seen = e
    while not isinstance(seen, (ClientError, BotoCoreError)):
        inner = seen.__cause__ or seen.__context__
        if inner is None:
            return e
        seen = inner
    return seen


def error_code(e: BaseException) -> str:
    """The S3 error code of the service's answer behind ``e`` (``NoSuchBucket``, ``404``...), else ""."""
    from botocore.exceptions import ClientError

    cause = _service_answer(e)
    return str(cause.response.get("Error", {}).get("Code", "")) if isinstance(cause, ClientError) else ""


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
    bucket, key, ETag and size; a cached copy of the same version is used once its content still
    matches the sha256 recorded at download (audiox_core/store/cache.py: LRU, bounded, verified). Each
    download writes its own hidden ``.<name>.<process tag>.<random>.partial`` (concurrent downloads
    of one object never share it), removed on any exception or interrupt; one a killed process left
    is removed by the sweep (``lifecycle.abandoned``)."""
    from audiox_core.store.cache import record_file, verified_file

    obj = head(uri)
    if obj.size == 0:
        raise InputError(f"{public_uri(uri)}: object is empty (0 bytes)")
    name = hashlib.sha256(f"{obj.bucket}/{obj.key}\0{obj.etag}\0{obj.size}".encode()).hexdigest()
    cached = cache_dir / name
    if verified_file(cached):
        return cached, obj
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(prefix=f".{name}.{process_tag()}.", suffix=".partial", dir=cache_dir)
    tmp = Path(partial)
    try:
        try:
            with os.fdopen(fd, "wb") as f:  # into our own file: s3transfer's download_file adds a temp name of its own
                s3_client().download_fileobj(
                    obj.bucket, obj.key, f, ExtraArgs={"ChecksumMode": "ENABLED"}, Config=_transfer_config()
                )
        except Exception as e:
            raise s3_error(uri, e) from e
        record_file(tmp, cached)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return cached, obj


@dataclass(frozen=True)
class PublishedFile:
    """One file of a published version, as current.json lists it."""

    key: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Manifest:
    """``<folder>/current.json``: the current version, its prefix and exactly its files;
    ``previous`` is the version it replaced (kept for readers of the old pointer)."""

    version: str
    prefix: str
    provenance: str
    files: tuple[PublishedFile, ...]
    previous: str | None = None

    def to_json(self) -> bytes:
        return (json.dumps(asdict(self), indent=2) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        d = json.loads(data)
        return cls(
            d["version"], d["prefix"], d["provenance"], tuple(PublishedFile(**f) for f in d["files"]), d.get("previous")
        )


def version_uri(folder_uri: str, version: str) -> str:
    """Where one version of a published folder lives: ``<folder>/versions/<version>``."""
    return f"{folder_uri.rstrip('/')}/{VERSIONS}/{version}"


def upload_folder(folder: Path, out_uri: str, last: str = "provenance.json") -> list[PublishedFile]:
    """Upload every file of a finished folder under ``out_uri`` (``last`` goes last), each with its
    media type (so a link plays in the browser) and its SHA-256 checksum checked by S3. Uploading again puts the same bytes under the same keys, so a
    retry after a transient failure is safe."""
    bucket, prefix = parse_s3(out_uri.rstrip("/") + "/")
    files = sorted((p for p in folder.rglob("*") if p.is_file()), key=lambda p: (p.name == last, str(p)))
    published = []
    for path in files:
        key = prefix + path.relative_to(folder).as_posix()
        try:
            s3_client().upload_file(
                str(path),
                bucket,
                key,
                ExtraArgs={"ChecksumAlgorithm": "SHA256", "ContentType": media_type(path)},
                Config=_transfer_config(),
            )
        except Exception as e:
            raise s3_error(f"s3://{bucket}/{key}", e) from e
        published.append(PublishedFile(key, sha256_file(path), path.stat().st_size))
    return published


def read_current(folder_uri: str) -> Manifest | None:
    """The folder's current.json, or None when no version was published yet or it cannot be parsed
    (said in a warning): a damaged pointer must not block every later publish, which replaces it."""
    from botocore.exceptions import ClientError

    bucket, key = parse_s3(f"{folder_uri.rstrip('/')}/{CURRENT}")
    try:
        body = s3_client().get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") == "NoSuchKey":
            return None
        raise s3_error(f"s3://{bucket}/{key}", e) from e
    except Exception as e:
        raise s3_error(f"s3://{bucket}/{key}", e) from e
    try:
        return Manifest.from_json(body)
    except (ValueError, KeyError, TypeError, AttributeError) as e:  # not JSON, not an object, fields missing
        shown = public_uri(f"s3://{bucket}/{key}")
        log.warning("%s: cannot be parsed (%s: %s); treated as absent", shown, type(e).__name__, e)
        return None


def publish_version(folder: Path, folder_uri: str, version: str) -> Manifest:
    """Upload ``folder`` as ``version`` of ``folder_uri``, then point current.json at it (last), then
    remove the versions whose names sort before both ``version`` and the one current.json named
    before (``previous``): neither is deleted. The last publish wins the pointer, even when its
    version name is older (a run started earlier that finished later). A retry of the same version
    (after a transient failure, even after current.json moved) uploads the same keys and keeps the
    same ``previous``."""
    prefix_uri = version_uri(folder_uri, version)
    files = upload_folder(folder, prefix_uri)
    current = read_current(folder_uri)
    if current is None:
        previous = None
    elif current.version == version:  # a retry after current.json moved: it replaced the same version
        previous = current.previous
    else:
        previous = current.version
    _, prefix = parse_s3(prefix_uri + "/")
    provenance = next((f.key for f in files if f.key == prefix + "provenance.json"), "")
    manifest = Manifest(version, prefix, provenance, tuple(files), previous)
    bucket, key = parse_s3(f"{folder_uri.rstrip('/')}/{CURRENT}")
    try:
        s3_client().put_object(
            Bucket=bucket, Key=key, Body=manifest.to_json(), ContentType="application/json", ChecksumAlgorithm="SHA256"
        )
    except Exception as e:
        raise s3_error(f"s3://{bucket}/{key}", e) from e
    if previous:
        _remove_versions_before(folder_uri, min(version, previous))
    return manifest


def _remove_versions_before(folder_uri: str, oldest_kept: str) -> None:
    """Delete the objects of every version whose name sorts before ``oldest_kept``. Housekeeping
    only: the new version is already current, so a failure here is logged and left for the next publish."""
    root = version_uri(folder_uri, "")
    try:
        stale = [o.key for o in list_objects(root) if o.key[len(parse_s3(root)[1]) :].split("/", 1)[0] < oldest_kept]
        bucket = parse_s3(root)[0]
        for start in range(0, len(stale), 1000):  # DeleteObjects takes at most 1000 keys
            batch = [{"Key": k} for k in stale[start : start + 1000]]
            s3_client().delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
    except Exception as e:
        log.warning("%s: old versions not removed yet: %s", public_uri(root), s3_error(root, e))


def check_writable(root_uri: str) -> None:
    """InputError when ``root_uri`` cannot take outputs: malformed or escaping URI, no such bucket,
    or a small probe object under the prefix cannot be put and deleted (access denied)."""
    shown = public_uri(root_uri)
    if not urlparse(root_uri).netloc:
        raise InputError(f"{shown}: no bucket in the S3 URI (s3://bucket/prefix)")
    bucket, prefix = parse_s3(root_uri.rstrip("/") + "/")
    try:
        s3_client().head_bucket(Bucket=bucket)
    except Exception as e:
        if error_code(e) in {"NoSuchBucket", "404"}:
            raise InputError(f"{shown}: no such bucket {urlparse(shown).netloc!r}") from e
        raise s3_error(root_uri, e) from e
    probe = f"{prefix}.write-probe.{process_tag()}.{uuid.uuid4().hex[:8]}"
    try:
        s3_client().put_object(Bucket=bucket, Key=probe, Body=b"probe")
        s3_client().delete_object(Bucket=bucket, Key=probe)
    except Exception as e:
        raise s3_error(root_uri, e) from e


class S3Store:
    """``s3://bucket/key`` URIs: objects read through the download cache, reel folders assembled under
    the run's work folder and published as versions behind current.json, links presigned (7 days by default)."""

    def fetch(self, uri: str, cache_dir: Path) -> Fetched:
        path, obj = download(uri, cache_dir)
        return Fetched(path, obj.etag)  # the ETag: content identity, as the nightly listing sees it

    def check_writable(self, root_uri: str, need_bytes: int) -> None:
        """See ``check_writable``; ``need_bytes`` is not checked (a bucket has no fixed capacity)."""
        check_writable(root_uri)

    def child(self, root_uri: str, name: str) -> str:
        parse_s3(root_uri.rstrip("/") + "/")
        return f"{root_uri.rstrip('/')}/{name}"

    def version_uri(self, folder_uri: str, version: str) -> str:
        return version_uri(folder_uri, version)

    def assembly_folder(self, folder_uri: str, version: str, work: Path) -> Path:
        bucket, key = parse_s3(folder_uri)
        return work / "out" / hashlib.sha256(f"{bucket}/{key}".encode()).hexdigest()[:16] / key.rsplit("/", 1)[-1]

    def publish(self, folder: Path, folder_uri: str, version: str) -> None:
        publish_version(folder, folder_uri, version)

    def versions(self, folder_uri: str) -> list[str]:
        """Versions whose provenance.json (uploaded last) is there: a version still uploading is left out."""
        root = version_uri(folder_uri, "")
        prefix = parse_s3(root)[1]
        return sorted(
            {o.key[len(prefix) :].split("/", 1)[0] for o in list_objects(root) if o.key.endswith("/provenance.json")}
        )

    def location(self, folder_uri: str) -> str:
        return folder_uri

    def link(self, uri: str) -> str:
        """Presigned for ``link_expiry_s()``: a bearer credential (access key id and signature) for this
        one object, so it lives no longer than a review needs."""
        bucket, key = parse_s3(uri)
        return s3_client().generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=link_expiry_s()
        )


LINK_EXPIRY_ENV = "AUDIOX_LINK_EXPIRY_S"
DEFAULT_LINK_EXPIRY_S = 3 * 24 * 3600  # a nightly run reviewed on the next working day, a weekend included
MAX_LINK_EXPIRY_S = 7 * 24 * 3600  # SigV4: a presigned URL lives at most seven days


def link_expiry_s() -> int:
    """How long the presigned links in review pages and Prefect artifacts live: $AUDIOX_LINK_EXPIRY_S
    seconds (default three days, at most seven); a bad value is one line naming the variable."""
    seconds = env_seconds(LINK_EXPIRY_ENV, DEFAULT_LINK_EXPIRY_S)
    if not seconds <= MAX_LINK_EXPIRY_S:
        raise InputError(
            f"{LINK_EXPIRY_ENV}={os.environ[LINK_EXPIRY_ENV]!r}: presigned links live at most "
            f"{MAX_LINK_EXPIRY_S} s (7 days, S3's limit)"
        )
    return max(1, round(seconds))
