"""A training data folder: examples of picture, sound and caption, checked before anything trains."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from audiox_core.errors import InputError
from audiox_core.video.ffmpeg import run, stall_timeout_s

log = logging.getLogger(__name__)

MIN_SECONDS = 1.0
SILENCE_DBFS = -60.0
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg")
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv")
# The sound check decodes a mono mix at 16 kHz: enough to measure length and peak (an 8 kHz band),
# a fraction of the data of a full decode.
CHECK_RATE = 16000
CHECK_BATCH = 32  # sounds per ffmpeg process: starting ffmpeg costs far more than decoding an 8 s clip


@dataclass(frozen=True)
class Event:
    """A visual event of a clip: ``t`` seconds from the clip start (its frame time), e.g. an impact."""

    t: float
    kind: str
    visual: str = ""


@dataclass(frozen=True)
class Example:
    """One usable example; paths are absolute or relative to the caller's folder argument."""

    id: str
    split: str
    video: Path | None
    frames: Path | None
    audio: Path
    caption: str
    sound_class: str | None
    events: tuple[Event, ...]
    frames_fps: int | None
    seconds: float = 0.0  # length of the sound, as decoded by the check


@dataclass(frozen=True)
class Skipped:
    id: str
    reason: str  # one line naming the file


@dataclass(frozen=True)
class ExampleSet:
    folder: Path
    examples: list[Example]
    skipped: list[Skipped]


@dataclass(frozen=True)
class Decoded:
    frames: np.ndarray  # (F, size, size, 3) uint8 RGB on the model's fps grid
    audio: np.ndarray  # (channels, N) float32 at the model's rate
    caption: str


class _Bad(Exception):
    """An example is unusable; the message is the one-line reason."""


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _entries(folder: Path) -> list[dict]:
    """The manifest's examples, or examples paired by file name when there is no manifest."""
    manifest = folder / "manifest.json"
    if manifest.is_file():
        try:
            entries = json.loads(manifest.read_text()).get("examples")
        except (OSError, ValueError, AttributeError) as e:
            raise InputError(f"{manifest}: not a readable data manifest ({e})") from e
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise InputError(f"{manifest}: no 'examples' list of objects")
        return entries
    entries = []
    for caption in sorted(folder.glob("*.json")):
        cid = caption.stem
        audio = next((f"{cid}{s}" for s in AUDIO_SUFFIXES if (folder / f"{cid}{s}").is_file()), None)
        video = next((f"{cid}{s}" for s in VIDEO_SUFFIXES if (folder / f"{cid}{s}").is_file()), None)
        frames = f"{cid}.frames" if (folder / f"{cid}.frames").is_dir() else None
        entries.append({"id": cid, "video": video, "frames": frames, "audio": audio, "caption": caption.name})
    return entries


def _read_caption(path: Path) -> tuple[str, str | None, tuple[Event, ...], int | None]:
    """(caption, sound_class, events, frames_fps) of a caption file; _Bad when it does not parse."""
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise _Bad(f"{path.name}: caption file does not parse ({str(e).splitlines()[0]})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("caption"), str) or not meta["caption"].strip():
        raise _Bad(f'{path.name}: caption file has no "caption" text')
    try:
        events = tuple(Event(float(e["t"]), str(e["kind"]), str(e.get("visual", ""))) for e in meta.get("events", []))
        fps = int(meta["frames_fps"]) if meta.get("frames_fps") is not None else None
    except (KeyError, TypeError, ValueError) as e:
        raise _Bad(f"{path.name}: malformed events or frames_fps ({type(e).__name__}: {e})") from None
    cls = meta.get("sound_class")
    return meta["caption"], str(cls) if cls is not None else None, events, fps


def _check_files(folder: Path, entry: dict) -> Example:
    """The example an entry describes, before its sound is decoded; _Bad with the reason when unusable."""
    cid = str(entry.get("id", "?"))
    for name, facts in (entry.get("files") or {}).items():
        path = folder / name
        if not path.exists():
            raise _Bad(f"{name} is missing")
        want = facts.get("sha256") if isinstance(facts, dict) else None
        if want and path.is_file() and sha256_file(path) != want:
            raise _Bad(f"{name}: sha256 differs from the manifest (the file was changed)")
    if not entry.get("caption") or not (folder / entry["caption"]).is_file():
        raise _Bad(f"{entry.get('caption') or cid + '.json'}: no caption file")
    caption, sound_class, events, fps = _read_caption(folder / entry["caption"])
    if not entry.get("audio"):
        raise _Bad(f"{cid}: no audio file (a clip without sound cannot train)")
    audio = folder / entry["audio"]
    if not audio.is_file():
        raise _Bad(f"{entry['audio']} is missing")
    video = folder / entry["video"] if entry.get("video") else None
    frames = folder / entry["frames"] if entry.get("frames") else None
    if video is not None and not video.is_file():
        raise _Bad(f"{entry['video']} is missing")
    if frames is not None and not frames.is_dir():
        raise _Bad(f"{entry['frames']} is missing")
    if frames is not None and video is None and fps is None:
        raise _Bad(f'{entry["caption"]}: a frames folder needs "frames_fps" in the caption file')
    return Example(cid, str(entry.get("split", "train")), video, frames, audio, caption, sound_class, events, fps)


def _decode_check(paths: list[Path]) -> list[np.ndarray]:
    """Each sound as int16 mono at CHECK_RATE, all decoded by one ffmpeg; InputError if any fails."""
    with tempfile.TemporaryDirectory(prefix="audiox-check-") as tmp:
        args = ["-v", "error", "-y"]
        for p in paths:
            args += ["-i", str(p)]
        for i in range(len(paths)):
            args += ["-map", f"{i}:a:0", "-ac", "1", "-ar", str(CHECK_RATE), "-f", "s16le", f"{tmp}/{i}.raw"]
        run("ffmpeg", args, subject=paths[0], what="cannot decode the sound", timeout_s=stall_timeout_s())
        return [np.fromfile(f"{tmp}/{i}.raw", np.int16) for i in range(len(paths))]


def _sound_reasons(examples: list[Example]) -> list[Example | _Bad]:
    """Each example with its sound's length filled in, or _Bad (undecodable, silent, too short)."""
    try:
        decoded: list[np.ndarray | InputError] = list(_decode_check([e.audio for e in examples]))
    except InputError:  # one bad sound fails the batch: decode each alone to learn which
        decoded = []
        for e in examples:
            try:
                decoded.append(_decode_check([e.audio])[0])
            except InputError as err:
                decoded.append(err)
    out: list[Example | _Bad] = []
    for ex, pcm in zip(examples, decoded):
        name = ex.audio.name
        if isinstance(pcm, InputError):
            out.append(_Bad(f"{name}: {str(pcm).removeprefix(f'{ex.audio}: ')}"))
            continue
        seconds = pcm.size / CHECK_RATE
        peak = int(np.abs(pcm.astype(np.int32)).max(initial=0)) / 32768
        dbfs = 20 * math.log10(peak) if peak > 0 else -math.inf
        if seconds < MIN_SECONDS:
            out.append(_Bad(f"{name}: {seconds:.2f} s is too short (at least {MIN_SECONDS:g} s)"))
        elif dbfs < SILENCE_DBFS:
            out.append(_Bad(f"{name}: silent (peak {dbfs:.0f} dBFS, below {SILENCE_DBFS:g} dBFS)"))
        else:
            out.append(replace(ex, seconds=seconds))
    return out


def load_examples(data: Path, *, split: str | None = None) -> ExampleSet:
    """The usable examples of ``data`` (of ``split`` when given) and the skipped ones with reasons (checks kept
    cheap: sha256 of the listed files, one low-rate decode of each sound); InputError (one line naming the
    folder) when the folder is missing or nothing in it is usable."""
    if not data.is_dir():
        raise InputError(f"{data}: training data folder not found")
    entries = [e for e in _entries(data) if split is None or e.get("split", "train") == split]
    checked: list[tuple[str, Example | _Bad]] = []
    for entry in entries:
        try:
            checked.append((str(entry.get("id", "?")), _check_files(data, entry)))
        except _Bad as bad:
            checked.append((str(entry.get("id", "?")), bad))
    pending = [c for _, c in checked if isinstance(c, Example)]
    batches = [pending[i : i + CHECK_BATCH] for i in range(0, len(pending), CHECK_BATCH)]
    with ThreadPoolExecutor(max(1, min(4, os.cpu_count() or 1))) as pool:
        sounded = iter([r for batch in pool.map(_sound_reasons, batches) for r in batch])
    examples, skipped = [], []
    for cid, result in checked:
        result = next(sounded) if isinstance(result, Example) else result
        if isinstance(result, Example):
            examples.append(result)
        else:
            skipped.append(Skipped(cid, str(result)))
            log.warning("%s: skipping example %s: %s", data, cid, result)
    which = f" {split}" if split else ""
    if not entries:
        raise InputError(f"{data}: no{which} examples found (expected manifest.json or <id>.json with <id>.wav)")
    if not examples:
        first = skipped[0]
        raise InputError(
            f"{data}: no usable{which} examples ({len(skipped)} skipped; first: {first.id}: {first.reason})"
        )
    return ExampleSet(data, examples, skipped)


def decode_audio(path: Path, rate: int, channels: int = 2) -> np.ndarray:
    """(channels, N) float32 at ``rate``, decoded by ffmpeg; InputError naming the file when it cannot."""
    proc = run(
        "ffmpeg",
        ["-v", "error", "-i", str(path), "-vn", "-f", "f32le", "-ac", str(channels), "-ar", str(rate), "pipe:1"],
        subject=path,
        what="cannot decode the sound",
        binary_output=True,
        timeout_s=stall_timeout_s(),
    )
    return np.frombuffer(proc.stdout, np.float32).reshape(-1, channels).T.copy()


def _video_frames(path: Path, fps: int, size: int) -> np.ndarray:
    # The model branch of audiox_core.video.decode's graph, with the same input flags and output mode:
    # the model trains on exactly the frames it is given at inference.
    graph = f"[0:V:0]fps={fps},scale={size}:{size}:flags=area,format=rgb24[m]"
    proc = run(
        "ffmpeg",
        ["-v", "error", "-flags", "-output_corrupt", "-i", str(path), "-filter_complex", graph]
        + ["-map", "[m]", "-f", "rawvideo", "-fps_mode", "passthrough", "pipe:1"],
        subject=path,
        what="cannot decode the picture",
        binary_output=True,
        timeout_s=stall_timeout_s(),
    )
    return np.frombuffer(proc.stdout, np.uint8).reshape(-1, size, size, 3).copy()


def _frame_number(path: Path) -> tuple[int, str]:
    digits = re.findall(r"\d+", path.stem)
    return (int(digits[-1]) if digits else -1, path.name)


def _folder_frames(folder: Path, source_fps: int, fps: int, size: int) -> np.ndarray:
    """Numbered PNGs at ``source_fps`` on the ``fps`` grid (nearest source frame in time), area-resized."""
    files = sorted(folder.glob("*.png"), key=_frame_number)
    if not files:
        raise InputError(f"{folder}: no PNG frames")
    ratio = Fraction(source_fps, fps)  # source frames per output frame
    count = math.floor(len(files) / ratio)
    out = np.empty((count, size, size, 3), np.uint8)
    for k in range(count):
        source = files[min(len(files) - 1, math.floor(k * ratio + Fraction(1, 2)))]
        image = cv2.imread(str(source), cv2.IMREAD_COLOR)
        if image is None:
            raise InputError(f"{source}: cannot read the frame")
        out[k] = cv2.cvtColor(cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
    return out


def decode_example(example: Example, *, sample_rate: int, fps: int, size: int, channels: int = 2) -> Decoded:
    """The example's frames (model fps and size, RGB) and sound (model rate); no picture gives 0 frames.
    InputError naming the file when ffmpeg or OpenCV cannot read it."""
    if example.video is not None:
        frames = _video_frames(example.video, fps, size)
    elif example.frames is not None:
        frames = _folder_frames(example.frames, example.frames_fps or fps, fps, size)
    else:
        frames = np.zeros((0, size, size, 3), np.uint8)
    return Decoded(frames, decode_audio(example.audio, sample_rate, channels), example.caption)
