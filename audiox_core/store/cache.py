"""The local caches under $AUDIOX_HOME/cache: bounded by $AUDIOX_CACHE_GB, least recently used first out, verified."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from audiox_core.environment import env_number
from audiox_core.store.files import sha256_file, write_atomic
from audiox_core.workspace import studio_home

if TYPE_CHECKING:  # torch loads only where tensors are cached: the S3 source cache and `watch` stay light
    import torch

log = logging.getLogger(__name__)

DEFAULT_BUDGET_GB = 20.0
# An entry used in the last hour counts as in use and is never evicted: a run reads its source from the
# fetch to the final mux, and an inference worker reads the frames the flow has just staged.
IN_USE_S = 3600.0
SIDECAR = ".sha256"  # a downloaded file's recorded content hash, beside it
_HEADER_BYTES = 8  # safetensors: a little-endian u64 header length, the JSON header, then the data


def cache_root() -> Path:
    """The folder holding every cache of this installation (sources, cues, Prefect's batch records)."""
    return studio_home() / "cache"


def sources_cache() -> Path:
    """Where fetched sources and earlier outputs are downloaded (S3 objects, by content)."""
    return cache_root() / "sources"


def cache_budget() -> int:
    """The caches' size budget in bytes: $AUDIOX_CACHE_GB gigabytes (default 20)."""
    return int(env_number("AUDIOX_CACHE_GB", DEFAULT_BUDGET_GB, "gigabytes") * 1e9)


def touch(path: Path) -> None:
    """Record a use of a cache entry now (its modification time is its last use)."""
    os.utime(path)


def discard(path: Path) -> None:
    """Remove a cache entry and its sidecar, if there."""
    path.unlink(missing_ok=True)
    path.with_name(path.name + SIDECAR).unlink(missing_ok=True)


def _entries(root: Path) -> list[tuple[float, int, Path]]:
    """(last use, bytes with the sidecar, path) of every entry under ``root``; files being written
    (hidden names) and sidecars are not entries of their own."""
    found = []
    for folder, _, names in os.walk(root):
        for name in names:
            if name.startswith(".") or name.endswith(SIDECAR):
                continue
            path = Path(folder, name)
            try:
                stat = path.stat()
                extra = path.with_name(name + SIDECAR)
                size = stat.st_size + (extra.stat().st_size if extra.exists() else 0)
            except FileNotFoundError:  # another process evicted it meanwhile
                continue
            found.append((stat.st_mtime, size, path))
    return found


def budget_scope(folder: Path) -> Path:
    """What one budget covers: the whole cache root for any of its caches, else ``folder`` alone."""
    root = cache_root()
    return root if folder.resolve().is_relative_to(root.resolve()) else folder


def evict(keep: Path, root: Path, budget: int | None = None) -> list[Path]:
    """After a put under ``root``: remove the least recently used entries until it fits its budget,
    never ``keep`` (the entry just written) nor one in use. Returns the entries removed."""
    budget = cache_budget() if budget is None else budget
    entries = sorted(_entries(root))
    total = sum(size for _, size, _ in entries)
    recent = time.time() - IN_USE_S
    removed = []
    for used, size, path in entries:
        if total <= budget:
            break
        if path == keep or used >= recent:
            continue
        discard(path)
        total -= size
        removed.append(path)
    if removed:
        log.info("cache over its %.1f GB budget: removed %d least recently used entries", budget / 1e9, len(removed))
    return removed


def verified_file(path: Path) -> bool:
    """Whether a cached file still has the sha256 its sidecar recorded (a hit then counts as a use);
    a file that does not is discarded with a warning."""
    sidecar = path.with_name(path.name + SIDECAR)
    try:
        recorded = sidecar.read_text().strip()
    except FileNotFoundError:
        recorded = ""
    if path.is_file() and recorded and sha256_file(path) == recorded:
        touch(path)
        return True
    if path.exists() or sidecar.exists():
        log.warning("cached file %s does not match its recorded sha256; fetching it again", path)
        discard(path)
    return False


def record_file(tmp: Path, path: Path) -> None:
    """Put a fully written file ``tmp`` into its cache folder as ``path``, its sha256 recorded
    beside it, then evict to the budget."""
    write_atomic(path.with_name(path.name + SIDECAR), sha256_file(tmp).encode())
    os.replace(tmp, path)
    evict(keep=path, root=budget_scope(path.parent))


def tensors_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """The sha256 of named tensors: each name, dtype, shape and bytes, in name order."""
    import torch

    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


def pack_tensors(key: str, tensors: dict[str, torch.Tensor]) -> bytes:
    """Named tensors as safetensors bytes whose metadata records ``key`` and their sha256."""
    from safetensors.torch import save

    cpu = {name: t.detach().cpu().contiguous() for name, t in tensors.items()}
    return save(cpu, metadata={"key": key, "sha256": tensors_sha256(cpu)})


def unpack_tensors(key: str, data: bytes, where: str) -> dict[str, torch.Tensor] | None:
    """The tensors ``pack_tensors`` wrote for ``key``, or None (with a warning naming ``where``) when
    the bytes are unreadable, hold another key, or do not match their recorded sha256."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    try:
        n = int.from_bytes(data[:_HEADER_BYTES], "little")
        meta = json.loads(data[_HEADER_BYTES : _HEADER_BYTES + n]).get("__metadata__") or {}
        tensors = load(data)
        ok = meta.get("key") == key and meta.get("sha256") == tensors_sha256(tensors)
    except (SafetensorError, ValueError, AttributeError) as e:  # a bad header, bad JSON, not a dict
        log.warning("cache entry %s is unreadable (%s: %s); discarding it", where, type(e).__name__, e)
        return None
    if not ok:
        log.warning("cache entry %s does not match its recorded sha256; discarding it", where)
        return None
    return tensors


def entry_name(key: str) -> str:
    """A cache entry's relative name: the key's hash, so no key becomes a path of its own."""
    name = hashlib.sha256(key.encode()).hexdigest()
    return f"{name[:2]}/{name}.safetensors"


class TensorCache:
    """Named tensors by content key (a cue's generation key, staged frames), one safetensors file per
    key, verified against the sha256 in its own metadata whenever it is read."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder or cache_root() / "cues"

    def path(self, key: str) -> Path:
        """Where ``key``'s file lives (``entry_name``)."""
        return self.folder / entry_name(key)

    @property
    def location(self) -> str:
        return str(self.folder)

    def has(self, key: str) -> bool:
        return self.path(key).is_file()

    def put(self, key: str, tensors: dict[str, torch.Tensor]) -> None:
        """Store the tensors under ``key`` (atomically), then evict to the budget."""
        path = self.path(key)
        write_atomic(path, pack_tensors(key, tensors))
        evict(keep=path, root=budget_scope(self.folder))

    def get(self, key: str) -> dict[str, torch.Tensor] | None:
        """The tensors stored under ``key``, or None when absent; a damaged or altered file is
        discarded with a warning (its content will be made again)."""
        path = self.path(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        tensors = unpack_tensors(key, data, str(path))
        if tensors is None:
            discard(path)
            return None
        touch(path)
        return tensors

    def discard(self, key: str) -> None:
        discard(self.path(key))
