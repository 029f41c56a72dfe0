"""Audio in and out: decode a reel's sound with ffmpeg, resample, write 24-bit WAV through pydub.

Audio is float32 (channels, samples) in [-1, 1] between these functions.
"""

from __future__ import annotations

import io
import os
import wave
from pathlib import Path

import numpy as np
import torch
import torchaudio.functional as AF
from pydub import AudioSegment

from audiox_core.media.tools import run
from audiox_core.storage import write_atomic

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
            data = np.fromfile(self.path, np.float32, count=(last - first) * self.channels, offset=first * self.channels * 4)
            out[:, first - start : last - start] = data.reshape(-1, self.channels).T
        return out


def extract_audio(path: Path, stream_index: int, out: Path, rate: int = 48_000, channels: int = 2) -> RawAudio:
    """Decode stream ``stream_index`` of ``path`` to raw float32 at ``rate`` (5.1 and mono become stereo
    through ffmpeg's standard downmix) and return it as a RawAudio."""
    run(
        "ffmpeg",
        ["-v", "error", "-y", "-i", str(path), "-map", f"0:{stream_index}", "-ac", str(channels), "-ar", str(rate), "-f", "f32le", str(out)],
        subject=path,
        what="audio decoding failed",
    )
    return RawAudio(out, channels)


def resample(audio: torch.Tensor, orig_rate: int, new_rate: int) -> np.ndarray:
    """Band-limited (windowed-sinc) resampling; (C, N) float32 numpy out."""
    if orig_rate == new_rate:
        return audio.numpy().astype(np.float32)
    return AF.resample(audio.float(), orig_rate, new_rate).numpy().astype(np.float32)


def to_segment(audio: np.ndarray, rate: int, full_scale: float = INT24_MAX) -> AudioSegment:
    """A pydub segment of 32-bit samples where 1.0 maps to ``full_scale`` (default: 24-bit full scale,
    leaving 8 bits of headroom on the 32-bit bus)."""
    assert float(np.abs(audio).max(initial=0.0)) * full_scale < 2**31, "beyond the 32-bit bus's headroom"
    ints = np.empty((audio.shape[1], audio.shape[0]), "<i4")
    np.rint(audio.T * full_scale, out=ints, casting="unsafe")
    return AudioSegment(data=ints.tobytes(), sample_width=4, frame_rate=rate, channels=audio.shape[0])


def from_segment(segment: AudioSegment, full_scale: float = INT24_MAX) -> np.ndarray:
    """(C, N) float32 from a 32-bit pydub segment (the inverse of ``to_segment``)."""
    ints = np.frombuffer(segment.raw_data, dtype="<i4").reshape(-1, segment.channels)
    return (ints.T / full_scale).astype(np.float32)


def _pack24(audio: np.ndarray) -> bytes:
    """(C, N) float in [-1, 1] → interleaved little-endian 24-bit PCM."""
    ints = np.empty((audio.shape[1], audio.shape[0]), "<i4")  # (N, C)
    np.rint(audio.T * INT24_MAX, out=ints, casting="unsafe")
    little = ints.view(np.uint8).reshape(-1, 4)
    packed = np.empty((little.shape[0], 3), np.uint8)
    for byte in range(3):  # three vectorised byte copies beat one strided 3-of-4 copy
        packed[:, byte] = little[:, byte]
    return packed.tobytes()


class Wav24Writer:
    """A 24-bit PCM WAV written block by block to a temporary name, renamed into place on close()."""

    def __init__(self, path: Path, channels: int, rate: int) -> None:
        self.path = path
        self.tmp = path.with_name(f".{path.name}.partial")
        self.wav = wave.open(str(self.tmp), "wb")
        self.wav.setnchannels(channels)
        self.wav.setsampwidth(3)
        self.wav.setframerate(rate)

    def write(self, audio: np.ndarray) -> None:
        peak = max(float(audio.max(initial=0.0)), -float(audio.min(initial=0.0)))
        if peak > 1.0:
            raise ValueError(f"{self.path.name}: peak {peak:.3f} exceeds full scale; normalise before writing")
        self.wav.writeframes(_pack24(audio))

    def close(self) -> None:
        self.wav.close()
        os.chmod(self.tmp, 0o644)
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        self.wav.close()
        self.tmp.unlink(missing_ok=True)


def write_wav24(path: Path, audio: np.ndarray, rate: int) -> None:
    """24-bit PCM WAV, written atomically; samples beyond full scale are an error, not clipped.

    Written with the stdlib ``wave`` module: pydub widens 24-bit data to 32 bits internally.
    """
    peak = float(np.abs(audio).max(initial=0.0))
    if peak > 1.0:
        raise ValueError(f"{path.name}: peak {peak:.3f} exceeds full scale; normalise before writing")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(audio.shape[0])
        w.setsampwidth(3)
        w.setframerate(rate)
        w.writeframes(_pack24(audio))
    write_atomic(path, buffer.getvalue())


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """(C, N) float32 and the rate of a 16- or 24-bit PCM WAV."""
    with wave.open(str(path), "rb") as w:
        width, channels, rate = w.getsampwidth(), w.getnchannels(), w.getframerate()
        raw = w.readframes(w.getnframes())
    if width == 3:
        widened = np.zeros((len(raw) // 3, 4), np.uint8)
        widened[:, 1:] = np.frombuffer(raw, np.uint8).reshape(-1, 3)  # 24-bit sample in the top bytes
        audio = (widened.view("<i4")[:, 0] >> 8) * np.float32(1 / INT24_MAX)
    elif width == 2:
        audio = np.frombuffer(raw, "<i2") / 32768
    else:
        raise ValueError(f"{path}: unsupported WAV sample width {width}")
    return audio.reshape(-1, channels).T.astype(np.float32), rate
