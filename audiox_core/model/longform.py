"""Sound for scenes of any length: overlapping windows joined by equal-power crossfades.

Each window after the first is conditioned on the previous window's tail through the audio prompt,
so window k of every scene depends on window k − 1 of the same scene only: window k of all scenes
goes into one batch (wavefront batching).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from audiox_core.model.generate import GenerationRequest, SamplingSettings, generate
from audiox_core.model.runtime import LoadedModel


@dataclass(frozen=True)
class SceneRequest:
    """Sound for one whole scene: ``frames`` (F, H, W, 3) uint8 at the model's video fps from the scene start."""

    frames: np.ndarray
    text: str
    seed: int
    seconds: float


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


def generate_scenes(
    model: LoadedModel,
    scenes: Sequence[SceneRequest],
    sampling: SamplingSettings,
    *,
    overlap_s: float = 2.0,
    on_step: Callable[[float], None] | None = None,
) -> list[torch.Tensor]:
    """(2, round(seconds · rate)) for each scene, windows batched across scenes (wavefront);
    ``on_step(fraction)`` after every sampling step of every window pass (progress within a batch)."""
    cfg = model.config
    rate, fps = cfg.sample_rate, cfg.video.video_fps
    window = cfg.video.window_s * rate
    overlap = int(round(overlap_s * rate))
    totals = [int(round(s.seconds * rate)) for s in scenes]
    plans = [plan_windows(t, window, overlap) for t in totals]
    parts: list[list[torch.Tensor]] = [[] for _ in scenes]
    depth = max(len(p) for p in plans)
    for k in range(depth):
        batch = [i for i, p in enumerate(plans) if k < len(p)]
        requests = []
        for i in batch:
            w, scene = plans[i][k], scenes[i]
            first = int(w.start * fps // rate)
            frames = scene.frames[first : first + cfg.video.n_frames]
            prompt = parts[i][-1][:, : w.start - plans[i][k - 1].start].numpy() if k else None
            requests.append(GenerationRequest(frames, scene.text, scene.seed + k, w.length / rate, prompt))
        callback = None
        if on_step is not None:
            callback = lambda i, n, k=k: on_step((k * n + i) / (depth * n))  # noqa: E731
        for i, audio in zip(batch, generate(model, requests, sampling, callback=callback)):
            parts[i].append(audio)
    return [join_windows(parts[i], plans[i], totals[i]) for i in range(len(scenes))]
