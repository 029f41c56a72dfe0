"""Broadcast WAV (EBU Tech 3285 v2): the ``bext`` chunk that spots a file to timecode in a DAW."""

from __future__ import annotations

import math
import os
import struct
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from audiox_core.errors import InputError

ORIGINATOR = "AudioX Studio"
# Description, originator, its reference, date, time, time reference (low, high), version, UMID,
# five loudness figures (1/100 LU or dB), reserved: 602 bytes, then the coding history.
_FIXED = struct.Struct("<256s32s32s10s8sIIH64s5h180s")
_HISTORY = 128  # the coding history's fixed room, so a new time reference rewrites the chunk in place
CHUNK_BYTES = 8 + _FIXED.size + _HISTORY
_UNSET = 0x7FFF  # a loudness figure not measured


@dataclass(frozen=True)
class Loudness:
    """The EBU R 128 figures a v2 chunk carries (None: not measured)."""

    integrated_lufs: float | None = None
    range_lu: float | None = None
    true_peak_dbtp: float | None = None
    max_momentary_lufs: float | None = None
    max_short_term_lufs: float | None = None


@dataclass(frozen=True)
class Bext:
    description: str
    originator_reference: str  # unique per file within the originator (e.g. the reel, version and file)
    origination: datetime
    time_reference: int  # the file's first sample, in samples since midnight
    loudness: Loudness = Loudness()
    originator: str = ORIGINATOR

    def chunk(self, rate: int, channels: int, bits: int = 24) -> bytes:
        """The whole chunk (id, size, payload): always ``CHUNK_BYTES`` long."""
        if not 0 <= self.time_reference < 2**64:
            raise ValueError(f"time reference {self.time_reference} is outside 64 bits")
        mode = "mono" if channels == 1 else "stereo" if channels == 2 else f"{channels}ch"
        history = f"A=PCM,F={rate},W={bits},M={mode},T={self.originator}\r\n".encode("ascii")
        payload = _FIXED.pack(
            _ascii(self.description, 256),
            _ascii(self.originator, 32),
            _ascii(self.originator_reference, 32),
            self.origination.strftime("%Y-%m-%d").encode(),
            self.origination.strftime("%H:%M:%S").encode(),
            self.time_reference & 0xFFFFFFFF,
            self.time_reference >> 32,
            2,
            b"",
            *(_centi(v) for v in _figures(self.loudness)),
            b"",
        ) + history[:_HISTORY].ljust(_HISTORY, b"\0")
        return b"bext" + struct.pack("<I", len(payload)) + payload


def _ascii(text: str, size: int) -> bytes:
    return text.encode("ascii", "replace")[:size]


def _figures(loudness: Loudness) -> tuple[float | None, ...]:
    return (
        loudness.integrated_lufs,
        loudness.range_lu,
        loudness.true_peak_dbtp,
        loudness.max_momentary_lufs,
        loudness.max_short_term_lufs,
    )


def _centi(value: float | None) -> int:
    if value is None or not math.isfinite(value):
        return _UNSET
    return max(-32767, min(32766, round(value * 100)))


@dataclass(frozen=True)
class WavLayout:
    """Where a PCM WAV's parts lie: its format, the byte offset and size of its samples, its bext chunk."""

    channels: int
    rate: int
    bits: int
    data_offset: int
    data_bytes: int
    bext: Bext | None

    @property
    def frames(self) -> int:
        return self.data_bytes // (self.channels * self.bits // 8)


def read_layout(path: Path) -> WavLayout:
    """The chunks of a RIFF WAV; InputError naming the file when it is not a PCM WAV."""
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            raise InputError(f"{path}: not a RIFF WAV file")
        fmt, bext, offset = None, None, 12
        while True:
            f.seek(offset)
            header = f.read(8)
            if len(header) < 8:
                raise InputError(f"{path}: a WAV without a data chunk")
            cid, size = header[:4], struct.unpack("<I", header[4:])[0]
            if cid == b"fmt ":
                fmt = struct.unpack("<HHIIHH", f.read(16))
            elif cid == b"bext":
                bext = _parse_bext(f.read(size))
            elif cid == b"data":
                if fmt is None or fmt[0] not in (1, 0xFFFE):
                    raise InputError(f"{path}: not a PCM WAV (no PCM format before its data)")
                _, channels, rate, _, _, bits = fmt
                return WavLayout(channels, rate, bits, offset + 8, size, bext)
            offset += 8 + size + (size & 1)


def _parse_bext(payload: bytes) -> Bext:
    fields = _FIXED.unpack(payload[: _FIXED.size].ljust(_FIXED.size, b"\0"))
    text = [v.rstrip(b"\0").decode("ascii", "replace") for v in fields[:5]]
    when = datetime.strptime(f"{text[3]} {text[4]}", "%Y-%m-%d %H:%M:%S") if text[3] else datetime(1970, 1, 1)
    figures = [None if v == _UNSET else v / 100 for v in fields[9:14]]
    return Bext(
        description=text[0],
        originator=text[1],
        originator_reference=text[2],
        origination=when,
        time_reference=fields[5] | fields[6] << 32,
        loudness=Loudness(*figures),
    )


def read_bext(path: Path) -> Bext | None:
    return read_layout(path).bext


def restamp(path: Path, bext: Bext) -> None:
    """Write ``bext`` over the file's own chunk of the same size, in place (a file this module wrote)."""
    layout = read_layout(path)
    chunk = bext.chunk(layout.rate, layout.channels, layout.bits)
    with open(path, "r+b") as f:
        f.seek(12)
        if f.read(4) != b"bext":
            raise ValueError(f"{path}: no bext chunk of ours to rewrite")
        f.seek(12)
        f.write(chunk)


def write_stamped(source: Path, target: Path, bext: Bext) -> None:
    """``target``: the PCM samples of ``source`` behind a fresh header carrying ``bext`` (the samples
    copied in the kernel, not read into memory), written under a temporary name and renamed into place."""
    layout = read_layout(source)
    chunk = bext.chunk(layout.rate, layout.channels, layout.bits)
    header = wav_header(layout.channels, layout.rate, layout.bits, layout.data_bytes, chunk)
    tmp = target.with_name(f".{target.name}.partial")
    try:
        with open(source, "rb") as src, open(tmp, "wb") as dst:
            dst.write(header)
            dst.flush()
            left, offset = layout.data_bytes, layout.data_offset
            while left:
                sent = os.copy_file_range(src.fileno(), dst.fileno(), left, offset)
                if sent == 0:
                    raise InputError(f"{source}: shorter than its data chunk says")
                left, offset = left - sent, offset + sent
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def wav_header(channels: int, rate: int, bits: int, data_bytes: int, chunks: bytes = b"") -> bytes:
    """RIFF, WAVE, ``chunks`` (a bext chunk), fmt and the data chunk's header: everything before the samples."""
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * channels * bits // 8, channels * bits // 8, bits)
    riff = 4 + len(chunks) + 8 + len(fmt) + 8 + data_bytes
    if riff >= 2**32:
        raise ValueError(f"{data_bytes} bytes of samples exceed the 4 GB limit of a RIFF WAV")
    return (
        b"RIFF"
        + struct.pack("<I", riff)
        + b"WAVE"
        + chunks
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", data_bytes)
    )
