"""Sound for scenes of any length: overlapping windows, each continuing the one before through the audio prompt,
joined by equal-power crossfades and packed into full model passes."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from audiox_core.errors import InputError
from audiox_core.model.generate import GenerationRequest, SamplingSettings, generate, stack_video
from audiox_core.model.inpaint import Span
from audiox_core.model.runtime import LoadedModel

WINDOW_OVERLAP_S = 2.0  # consecutive windows of a long cue share this much sound, crossfaded at equal power


@dataclass(frozen=True)
class SceneRequest:
    """Sound for one whole scene: ``frames`` (F, H, W, 3) uint8 at the model's video fps from the scene start."""

    frames: np.ndarray
    text: str
    seed: int
    seconds: float
    # Inpainting: the scene's previous sound (2, N) at the model rate and the spans (seconds from the
    # scene's start) to make again; a window no span touches is the previous sound as it was.
    previous: np.ndarray | None = None
    spans: tuple[Span, ...] = ()
    # Completion: a given sound (2, N) at the model rate heard before the first window (its audio
    # prompt), as each later window hears the one before it.
    audio_prompt: np.ndarray | None = None


@dataclass(frozen=True)
class Window:
    index: int
    start: int  # samples from the scene start
    length: int  # samples


def plan_windows(total: int, window: int, overlap: int) -> list[Window]:
    """Windows of at most ``window`` samples covering ``total``, consecutive ones overlapping by ``overlap``."""
    if total <= window:
        return [Window(0, 0, total)]
    hop = window - overlap
    count = 1 + math.ceil((total - window) / hop)
    return [Window(k, k * hop, min(window, total - k * hop)) for k in range(count)]


def join_windows(parts: Sequence[torch.Tensor], windows: Sequence[Window], total: int) -> torch.Tensor:
    """Overlap-add with equal-power (sin/cos) crossfades over each overlap; (C, total)."""
    out = torch.zeros(parts[0].shape[0], total)
    for k, (part, w) in enumerate(zip(parts, windows)):
        gain = torch.ones(w.length)
        if k > 0:
            fade = windows[k - 1].start + windows[k - 1].length - w.start
            gain[:fade] = torch.sin(torch.linspace(0, 1, fade) * math.pi / 2)
        if k + 1 < len(windows):
            fade = w.start + w.length - windows[k + 1].start
            gain[w.length - fade :] *= torch.cos(torch.linspace(0, 1, fade) * math.pi / 2)
        out[:, w.start : w.start + w.length] += part[:, : w.length] * gain
    return out


def pack_passes(depths: Sequence[int], batch_size: int | None = None) -> list[list[tuple[int, int]]]:
    """The model passes for scenes of ``depths`` windows each: per pass, (scene, window) pairs, at
    most ``batch_size`` (None: no limit), a window only after the pass that made the one before it."""
    limit = batch_size or max(1, sum(depths))
    done = [0] * len(depths)  # windows of each scene finished
    started: list[int] = []  # scenes in progress, in the order they started
    waiting = list(range(len(depths)))
    passes = []
    while started or waiting:
        ready = [i for i in started if done[i] < depths[i]]
        ready = ready[:limit]
        while len(ready) < limit and waiting:
            i = waiting.pop(0)
            started.append(i)
            ready.append(i)
        passes.append([(i, done[i]) for i in ready])
        for i in ready:
            done[i] += 1
        started = [i for i in started if done[i] < depths[i]]
    return passes


class VideoPrefetch:
    """The model's video input for a pass, made in one background thread: the CPU work (frames to
    floats, stacking) and, on CUDA, the copy on a side stream from pinned memory, so both overlap
    the pass that samples meanwhile. ``take`` returns it ready for the current stream."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="video-prefetch")
        self.stream = torch.cuda.Stream(device) if device.type == "cuda" else None

    def start(self, make: Callable[[], torch.Tensor]) -> Future:
        return self.pool.submit(self._made, make)

    def _made(self, make: Callable[[], torch.Tensor]) -> tuple[torch.Tensor, object]:
        cpu = make()
        if self.stream is None:
            return cpu.to(self.device), None
        with torch.cuda.stream(self.stream):
            video = cpu.pin_memory().to(self.device, non_blocking=True)
            done = torch.cuda.Event()
            done.record(self.stream)
        return video, done

    def take(self, future: Future) -> torch.Tensor:
        video, done = future.result()
        if done is not None:
            current = torch.cuda.current_stream(self.device)
            current.wait_event(done)
            video.record_stream(current)
        return video

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def _window_inpainting(scene: SceneRequest, w: Window, rate: int) -> tuple[np.ndarray | None, tuple[Span, ...]]:
    """The window's slice of the scene's previous sound and the spans that touch it, in window time."""
    if scene.previous is None:
        return None, ()
    start_s, end_s = w.start / rate, (w.start + w.length) / rate
    spans = tuple(
        Span(max(s.start_s, start_s) - start_s, min(s.end_s, end_s) - start_s)
        for s in scene.spans
        if s.start_s < end_s and s.end_s > start_s
    )
    return scene.previous[:, w.start : w.start + w.length], spans


def generate_scenes(
    model: LoadedModel,
    scenes: Sequence[SceneRequest],
    sampling: SamplingSettings,
    *,
    overlap_s: float = WINDOW_OVERLAP_S,
    batch_size: int | None = None,
    on_step: Callable[[float], None] | None = None,
    prefetch: bool | None = None,
) -> list[torch.Tensor]:
    """(2, round(seconds · rate)) for each scene, its windows packed with other scenes' into passes
    of at most ``batch_size`` windows (None: every ready window in one pass);
    ``on_step(fraction)`` after every sampling step of every pass (progress within a batch).
    ``prefetch`` (default: on CUDA) prepares each pass's video input while the one before samples."""
    cfg = model.config
    rate, fps = cfg.sample_rate, cfg.video.video_fps
    window = cfg.video.window_s * rate
    overlap = int(round(overlap_s * rate))
    totals = [int(round(s.seconds * rate)) for s in scenes]
    for s, total in zip(scenes, totals):
        if s.previous is not None and s.previous.shape[-1] < total:
            raise InputError(
                f"inpainting: the previous sound is {s.previous.shape[-1] / rate:.3f} s, shorter than the"
                f" {total / rate:.3f} s to make"
            )
    plans = [plan_windows(t, window, overlap) for t in totals]
    parts: list[list[torch.Tensor]] = [[] for _ in scenes]
    passes = pack_passes([len(p) for p in plans], batch_size)

    def first_frame(i: int, k: int) -> int:
        return int(plans[i][k].start * fps // rate)

    def frames_of(i: int, k: int) -> np.ndarray:
        return scenes[i].frames[first_frame(i, k) : first_frame(i, k) + cfg.video.n_frames]

    def offset_of(i: int, k: int) -> float:  # the window may start between two frames
        return plans[i][k].start / rate - first_frame(i, k) / fps

    def video_of(batch: list[tuple[int, int]]) -> Callable[[], torch.Tensor]:
        return lambda: stack_video(cfg, [frames_of(i, k) for i, k in batch])

    ahead = VideoPrefetch(model.device) if (model.device.type == "cuda" if prefetch is None else prefetch) else None
    try:
        coming = ahead.start(video_of(passes[0])) if ahead and passes else None
        for n_pass, batch in enumerate(passes):
            video = ahead.take(coming) if ahead and coming else None
            if ahead and n_pass + 1 < len(passes):
                coming = ahead.start(video_of(passes[n_pass + 1]))
            requests, made = [], []
            for i, k in batch:
                w, scene = plans[i][k], scenes[i]
                previous, spans = _window_inpainting(scene, w, rate)
                if scene.previous is not None and not spans:
                    parts[i].append(torch.from_numpy(np.ascontiguousarray(previous, dtype=np.float32)))
                    continue
                prompt = parts[i][-1][:, : w.start - plans[i][k - 1].start].numpy() if k else scene.audio_prompt
                requests.append(
                    GenerationRequest(
                        frames_of(i, k),
                        scene.text,
                        scene.seed + k,
                        w.length / rate,
                        prompt,
                        offset_of(i, k),
                        previous,
                        spans,
                    )
                )
                made.append((i, k))
            if not requests:
                continue
            callback = None
            if on_step is not None:
                callback = lambda step, n, p=n_pass: on_step((p * n + step) / (len(passes) * n))  # noqa: E731
            if len(made) < len(batch):
                video = None  # the prepared input holds every window of the pass; some reuse their sound
            for (i, _), audio in zip(made, generate(model, requests, sampling, callback=callback, video=video)):
                parts[i].append(audio)
    finally:
        if ahead:
            ahead.close()
    return [join_windows(parts[i], plans[i], totals[i]) for i in range(len(scenes))]
