"""What a cue starts from besides picture and prompt: its previous version (inpainting) or a sketch (completion)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from audiox_core.errors import InputError
from audiox_core.model.inpaint import EDGE_FADE_S, Span, checked_spans, splice
from audiox_core.model.longform import SceneRequest
from audiox_core.reel.cues import Cue
from audiox_core.sound.audio import read_wav, resample
from audiox_core.sound.mix import level_cue
from audiox_core.video.ffmpeg import run

SILENT_BELOW_DBFS = -60.0  # a given sound whose peak stays under this is silence, not a sketch
SPLICE_HEADROOM = 10 ** (-1 / 20)  # the regenerated part is turned down when it would peak above −1 dBFS


def read_given_audio(path: Path, rate: int, name: str) -> np.ndarray:
    """(2, N) float32 at ``rate`` from any file ffmpeg decodes (stereo, mono doubled); one line naming
    ``name`` for a file that is missing, has no sound in it, or is silent."""
    if not path.is_file():
        raise InputError(f"{name}: no such file")
    decode = ["-v", "error", "-i", str(path), "-map", "0:a:0", "-ac", "2", "-ar", str(rate), "-f", "f32le", "-"]
    try:
        done = run("ffmpeg", decode, subject=path, what="it is not audio ffmpeg reads", binary_output=True)
    except InputError as e:
        if "matches no streams" in str(e):
            raise InputError(f"{name}: it holds no audio stream") from e
        raise e.naming(path, name) from e
    if not done.stdout:
        raise InputError(f"{name}: it is not audio ffmpeg reads (no samples decoded)")
    audio = np.frombuffer(done.stdout, np.float32).reshape(-1, 2).T.copy()
    peak = float(np.abs(audio).max(initial=0.0))
    if peak < 10 ** (SILENT_BELOW_DBFS / 20):
        level = "digital silence" if peak == 0 else f"its peak is {20 * np.log10(peak):.0f} dBFS"
        raise InputError(f"{name}: the sound is silent ({level}); give a sketch with something in it")
    if peak > 1.0:
        audio /= peak  # a float file over full scale: kept in shape, brought to full scale
    return audio


def cue_request(
    cue: Cue,
    frames: np.ndarray,
    seconds: float,
    given: np.ndarray | None,
    cue_rate: int,
    model_rate: int,
    hop_s: float,
    name: str,
) -> SceneRequest:
    """The scene request for ``cue``: with ``given`` (its previous version for inpainting, or its sketch
    for completion; (2, N) at ``cue_rate``), the model is steered to it; without, a plain request."""
    if given is None:
        return SceneRequest(frames, cue.prompt, cue.seed, seconds)
    at_model = resample(torch.from_numpy(given), cue_rate, model_rate)
    if cue.regenerate:
        checked_spans(cue.regenerate, seconds, hop_s, f"{name}: regenerate")
        if given.shape[-1] < round(seconds * cue_rate):
            raise InputError(
                f"{name}: its previous version is {given.shape[-1] / cue_rate:.3f} s long, the cue now"
                f" {seconds:.3f} s; regenerate the whole cue (drop `regenerate`) after changing its span"
            )
        return SceneRequest(frames, cue.prompt, cue.seed, seconds, _fit(at_model, seconds, model_rate), cue.regenerate)
    sketch_s = given.shape[-1] / cue_rate
    if not cue.prompt_audio_kept:
        return SceneRequest(frames, cue.prompt, cue.seed, seconds, audio_prompt=at_model)
    if sketch_s > seconds - hop_s:
        raise InputError(
            f"{name}: its prompt audio is {sketch_s:.3f} s long, the cue {seconds:.3f} s: nothing is left to"
            " complete (shorten the sketch, lengthen the cue, or set prompt_audio_kept: false)"
        )
    previous = _fit(at_model, seconds, model_rate)
    return SceneRequest(frames, cue.prompt, cue.seed, seconds, previous, (Span(sketch_s, seconds),))


def finished_cue(
    cue: Cue, made: np.ndarray, given: np.ndarray | None, rate: int, peak_dbfs: float
) -> tuple[np.ndarray, tuple[Span, ...]]:
    """The cue's samples (2, N) at ``rate`` from what the model ``made`` (already at ``rate``, N long),
    and the spans of it that are new. Inpainting: the previous version outside the spans, bit for bit;
    completion with the sketch kept: the sketch, then the continuation after a short crossfade at the
    sketch's end; otherwise the new sound levelled to ``peak_dbfs``."""
    n = made.shape[-1]
    if given is None or not (cue.regenerate or cue.prompt_audio_kept):
        return level_cue(made, peak_dbfs), (Span(0.0, n / rate),)
    if cue.regenerate:
        previous, spans, joins = given[:, :n], cue.regenerate, cue.regenerate
    else:  # completion: the crossfade lies at the sketch's end, so the continuation starts at full level
        sketch_s = given.shape[-1] / rate
        previous = _fit(given, n / rate, rate)
        spans, joins = (Span(sketch_s, n / rate),), (Span(max(0.0, sketch_s - EDGE_FADE_S), n / rate),)
    matched = _matched(made, previous, spans, rate)
    return splice(previous, matched, joins, rate), tuple(spans)


def span_list(spans: tuple[Span, ...]) -> list[list[float]]:
    """Spans as recorded (generation records, content keys): [[start_s, end_s], …] to the microsecond."""
    return [[round(s.start_s, 6), round(s.end_s, 6)] for s in spans]


def _matched(made: np.ndarray, previous: np.ndarray, spans: tuple[Span, ...], rate: int) -> np.ndarray:
    """``made`` at the previous sound's level: the least-squares gain over the kept part (where the
    model was steered to the previous sound), turned down where the new part would peak above −1 dBFS."""
    kept = np.ones(made.shape[-1], dtype=bool)
    for s in spans:
        kept[int(round(s.start_s * rate)) : int(round(s.end_s * rate))] = False
    a, b = made[:, kept].astype(np.float64), previous[:, kept].astype(np.float64)
    energy = float((a * a).sum())
    gain = float((a * b).sum()) / energy if energy > 0 else 1.0
    gain = float(np.clip(gain, 0.1, 10.0))
    new_peak = float(np.abs(made[:, ~kept]).max(initial=0.0)) * gain
    if new_peak > SPLICE_HEADROOM:
        gain *= SPLICE_HEADROOM / new_peak
    return (made * gain).astype(np.float32)


def _fit(audio: np.ndarray, seconds: float, rate: int) -> np.ndarray:
    """(C, round(seconds · rate)): trimmed, or padded with silence."""
    n = int(round(seconds * rate))
    out = np.zeros((audio.shape[0], n), np.float32)
    out[:, : min(n, audio.shape[-1])] = audio[:, :n]
    return out


def read_previous_cue(path: Path, rate: int, name: str) -> np.ndarray:
    """The previous version's cue WAV as (2, N) float32 at ``rate`` (the pipeline writes cues at the mix rate)."""
    audio, file_rate = read_wav(path)
    if file_rate != rate:
        raise InputError(f"{name}: its previous version is at {file_rate} Hz, this run mixes at {rate} Hz")
    return audio
