"""The tensor cache on S3: one object per content key, the local cache's safetensors bytes, verified on every read."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from audiox_core.store.cache import entry_name, pack_tensors, unpack_tensors
from audiox_core.store.s3 import error_code, parse_s3, s3_client, s3_error

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

_ABSENT = {"NoSuchKey", "404", "NotFound"}


class S3TensorCache:
    """Named tensors by content key under an ``s3://bucket/prefix``."""

    def __init__(self, prefix_uri: str) -> None:
        self.bucket, prefix = parse_s3(prefix_uri.rstrip("/"))
        self.prefix = prefix.rstrip("/")

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def object_key(self, key: str) -> str:
        return f"{self.prefix}/{entry_name(key)}" if self.prefix else entry_name(key)

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.object_key(key)}"

    def has(self, key: str) -> bool:
        try:
            s3_client().head_object(Bucket=self.bucket, Key=self.object_key(key))
        except Exception as e:
            if error_code(e) in _ABSENT:
                return False
            raise s3_error(self.uri(key), e) from e
        return True

    def put(self, key: str, tensors: dict[str, torch.Tensor]) -> None:
        data = pack_tensors(key, tensors)
        try:  # one PUT, which S3 applies whole: a reader sees the old object, the new one or none
            s3_client().put_object(
                Bucket=self.bucket,
                Key=self.object_key(key),
                Body=data,
                ContentType="application/octet-stream",
                ChecksumAlgorithm="SHA256",
            )
        except Exception as e:
            raise s3_error(self.uri(key), e) from e

    def get(self, key: str) -> dict[str, torch.Tensor] | None:
        """The tensors under ``key``, or None when absent; a damaged or altered object is deleted
        with a warning (its content will be made again)."""
        try:
            data = s3_client().get_object(Bucket=self.bucket, Key=self.object_key(key))["Body"].read()
        except Exception as e:
            if error_code(e) in _ABSENT:
                return None
            raise s3_error(self.uri(key), e) from e
        tensors = unpack_tensors(key, data, self.uri(key))
        if tensors is None:
            self.discard(key)
        return tensors

    def discard(self, key: str) -> None:
        try:
            s3_client().delete_object(Bucket=self.bucket, Key=self.object_key(key))
        except Exception as e:
            raise s3_error(self.uri(key), e) from e
