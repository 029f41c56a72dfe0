"""Audio in and out: decode a reel's sound with ffmpeg, resample, write 24-bit WAV through pydub.

Audio is float32 (channels, samples) in [-1, 1] between these functions.
"""

from __future__ import annotations

import os
import wave
from pathlib import Path

import numpy as np
import torch
import torchaudio.functional as AF
from pydub import AudioSegment

from audiox_core.sound.bwf import wav_header
from audiox_core.store.files import write_atomic
from audiox_core.video.ffmpeg import run

MIX_RATE = 48_000  # the soundtrack's sample rate: the film and broadcast delivery rate, 24-bit

INT24_MAX = 2**23 - 1


class RawAudio:
    """Interleaved float32 audio in a raw file (what ffmpeg writes with ``-f f32le``), read by ranges."""

    def __init__(self, path: Path, channels: int = 2) -> None:
        self.path, self.channels = path, channels
        self.samples = path.stat().st_size // (4 * channels)

    def read(self, start: int, n: int) -> np.ndarray:
        """(C, n) float32 for samples [start, start + n); zeros outside the file."""
        out = np.zeros((self.channels, n), np.float32)
        first, last = max(start, 0), min(start + n, self.samples)
        if last > first:
            data = np.fromfile(
                self.path, np.float32, count=(last - first) * self.channels, offset=first * self.channels * 4
            )
            out[:, first - start : last - start] = data.reshape(-1, self.channels).T
        return out


def extract_audio(path: Path, stream_index: int, out: Path, rate: int = MIX_RATE, channels: int = 2) -> RawAudio:
    """Decode stream ``stream_index`` of ``path`` to raw float32 at ``rate`` (5.1 and mono become stereo
    through ffmpeg's standard downmix) and return it as a RawAudio. Sample 0 is time 0 on the
    container's timeline (where the scene times live): a stream that starts late is padded with
    silence, samples before zero (encoder priming) are dropped."""
    source = ["-i", str(path), "-map", f"0:{stream_index}"]
    align = ["-af", f"aresample={rate}:async=1:first_pts=0"]
    raw = [*align, "-ac", str(channels), "-ar", str(rate), "-f", "f32le", str(out)]
    run("ffmpeg", ["-v", "error", "-y", *source, *raw], subject=path, what="audio decoding failed")
    return RawAudio(out, channels)


def resample(audio: torch.Tensor, orig_rate: int, new_rate: int) -> np.ndarray:
    """Band-limited (windowed-sinc) resampling; (C, N) float32 numpy out."""
    if orig_rate == new_rate:
        return audio.numpy().astype(np.float32)
    return AF.resample(audio.float(), orig_rate, new_rate).numpy().astype(np.float32)


def sample_peak(audio: np.ndarray) -> float:
    """The largest magnitude in ``audio`` (float or integer), 0 when empty: two plain reductions,
    cheaper than taking the absolute value of the whole array."""
    return max(float(audio.max(initial=0)), -float(audio.min(initial=0)))


def to_ints(audio: np.ndarray, full_scale: float = INT24_MAX) -> np.ndarray:
    """Interleaved (N, C) int32 samples from (C, N) float, 1.0 mapping to ``full_scale``, rounded to nearest."""
    peak = sample_peak(audio)
    assert peak * full_scale < 2**31, f"peak {peak:.1f} is beyond the 32-bit bus's headroom"
    scaled = np.multiply(audio, np.float32(full_scale), dtype=np.float32)
    np.rint(scaled, out=scaled)
    ints = np.empty((audio.shape[1], audio.shape[0]), "<i4")
    for c in range(audio.shape[0]):  # contiguous rows into strided columns: cheaper than one transposed cast
        ints[:, c] = scaled[c]
    return ints


def to_segment(audio: np.ndarray, rate: int, full_scale: float = INT24_MAX) -> AudioSegment:
    """A pydub segment of 32-bit samples where 1.0 maps to ``full_scale`` (default: 24-bit full scale,
    leaving 8 bits of headroom on the 32-bit bus)."""
    return AudioSegment(
        data=to_ints(audio, full_scale).tobytes(), sample_width=4, frame_rate=rate, channels=audio.shape[0]
    )


def segment_ints(segment: AudioSegment) -> np.ndarray:
    """The (N, C) int32 samples of a 32-bit pydub segment (a read-only view)."""
    return np.frombuffer(segment.raw_data, dtype="<i4").reshape(-1, segment.channels)


def from_segment(segment: AudioSegment, full_scale: float = INT24_MAX) -> np.ndarray:
    """(C, N) float32 from a 32-bit pydub segment (the inverse of ``to_segment``)."""
    ints = segment_ints(segment)
    out = np.empty((ints.shape[1], ints.shape[0]), np.float32)
    for c in range(ints.shape[1]):  # one strided column at a time into contiguous rows
        np.multiply(ints[:, c], np.float32(1 / full_scale), out=out[c], casting="unsafe")
    return out


def pack24(ints: np.ndarray) -> np.ndarray:
    """Interleaved int32 samples within 24 bits → little-endian 24-bit PCM bytes (a uint8 array)."""
    peak = sample_peak(ints)
    if peak > INT24_MAX:
        raise ValueError(f"peak {peak / INT24_MAX:.3f} exceeds full scale; normalise before writing")
    little = np.ascontiguousarray(ints, "<i4").view(np.uint8).reshape(-1, 4)
    packed = np.empty((little.shape[0], 3), np.uint8)
    for byte in range(3):  # three vectorised byte copies beat one strided 3-of-4 copy
        packed[:, byte] = little[:, byte]
    return packed


def wav24_header(channels: int, rate: int, frames: int, chunks: bytes = b"") -> bytes:
    """The header of a 24-bit PCM WAV: the canonical 44 bytes (what the stdlib ``wave`` module
    writes), with ``chunks`` (a broadcast WAV's bext) between the RIFF header and the format."""
    return wav_header(channels, rate, 24, frames * channels * 3, chunks)


class Wav24File:
    """A 24-bit PCM WAV of known length, written at frame offsets under a temporary name and renamed
    into place on close(); abort() leaves nothing. Disjoint ranges may be written from several
    processes (each opens the file for itself, and release() closes it). ``chunks`` (a bext chunk)
    sit before the format; close() may replace them with chunks of the same size."""

    def __init__(self, path: Path, channels: int, rate: int, frames: int, chunks: bytes = b"") -> None:
        self.path, self.channels, self.frames, self.rate = path, channels, frames, rate
        self.tmp = path.with_name(f".{path.name}.partial")
        header = wav24_header(channels, rate, frames, chunks)
        self.data_offset, self.chunks = len(header), len(chunks)
        fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.pwrite(fd, header, 0)
            os.ftruncate(fd, self.data_offset + frames * channels * 3)
        finally:
            os.close(fd)
        self.fd: int | None = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "fd": None}  # a descriptor means nothing in another process

    def write_at(self, frame: int, ints: np.ndarray) -> None:
        """Write (N, C) int32 samples (within 24 bits) starting at ``frame``."""
        assert ints.shape[1] == self.channels and 0 <= frame and frame + ints.shape[0] <= self.frames, (
            frame,
            ints.shape,
            self.frames,
        )
        if self.fd is None:
            self.fd = os.open(self.tmp, os.O_WRONLY)
        data = pack24(ints).data
        offset = self.data_offset + frame * self.channels * 3
        while data:
            written = os.pwrite(self.fd, data, offset)
            data, offset = data[written:], offset + written

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def close(self, chunks: bytes | None = None) -> None:
        """Put the file in place, its leading chunks first replaced by ``chunks`` (the same size)."""
        self.release()
        if chunks is not None:
            if len(chunks) != self.chunks:
                raise ValueError(f"{self.path.name}: {len(chunks)} bytes of chunks cannot replace {self.chunks}")
            with open(self.tmp, "r+b") as f:
                f.seek(12)
                f.write(chunks)
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        self.release()
        self.tmp.unlink(missing_ok=True)


def write_wav24(path: Path, audio: np.ndarray, rate: int, chunks: bytes = b"") -> None:
    """24-bit PCM WAV, written atomically; samples beyond full scale are an error, not clipped.
    Without ``chunks`` the bytes are what the stdlib ``wave`` module writes (pydub would widen
    24-bit data to 32 bits internally); ``chunks`` (a bext chunk) go before the format."""
    peak = float(np.abs(audio).max(initial=0.0))
    if peak > 1.0:
        raise ValueError(f"{path.name}: peak {peak:.3f} exceeds full scale; normalise before writing")
    data = pack24(to_ints(audio)).tobytes()
    write_atomic(path, wav24_header(audio.shape[0], rate, audio.shape[1], chunks) + data)


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """(C, N) float32 and the rate of a 16- or 24-bit PCM WAV."""
    with wave.open(str(path), "rb") as w:
        width, channels, rate = w.getsampwidth(), w.getnchannels(), w.getframerate()
        raw = w.readframes(w.getnframes())
    frames = len(raw) // (width * channels)
    out = np.empty((channels, frames), np.float32)
    if width == 3:
        # Each sample read as the int32 that ends with its 3 bytes (the byte before it in the low
        # byte), then shifted down with its sign: one strided pass per channel, no widening copies.
        padded = np.empty(len(raw) + 1, np.uint8)
        padded[0], padded[1:] = 0, np.frombuffer(raw, np.uint8)
        samples = np.ndarray((frames, channels), dtype="<i4", buffer=padded, strides=(3 * channels, 3))
        for c in range(channels):
            np.multiply(samples[:, c] >> 8, np.float32(1 / INT24_MAX), out=out[c], casting="unsafe")
    elif width == 2:
        samples = np.frombuffer(raw, "<i2").reshape(-1, channels)
        for c in range(channels):
            np.multiply(samples[:, c], np.float32(1 / 32768), out=out[c], casting="unsafe")
    else:
        raise ValueError(f"{path}: unsupported WAV sample width {width}")
    return out, rate
