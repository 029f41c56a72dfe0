"""One ``generate()`` for a batch of requests, used by the CLI, the pipeline, the tests and the benchmarks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from audiox_core.errors import InputError
from audiox_core.model.compiled import padded_size
from audiox_core.model.config import AudioXConfig
from audiox_core.model.dit import Conditions
from audiox_core.model.inpaint import Span, channels_input, guided, keep_mask
from audiox_core.model.runtime import LoadedModel
from audiox_core.model.sampling import (
    SAMPLERS,
    Denoiser,
    NoiseSource,
    StepCallback,
    get_sampler,
    sigma_schedule,
)
from audiox_core.validation import above, at_least, check_fields, one_of


@dataclass(frozen=True)
class GenerationRequest:
    """One window of sound. ``frames``: (F, H, W, 3) uint8 at the model's video fps, F ≤ the window's
    frame count (the last is repeated to fill; F = 0 means no picture, and an all-black picture is
    a picture). ``audio_prompt``: (2, S) float at the model rate, or None."""

    frames: np.ndarray
    text: str
    seed: int
    seconds: float
    audio_prompt: np.ndarray | None = None
    frames_offset_s: float = 0.0  # how long before the window the first frame starts (time-aligned models)
    # Inpainting: the window's previous sound (2, S) at the model rate and the spans (seconds from the
    # window's start) to make again; outside them the sampler is steered to the previous latents
    # (model/inpaint.py). The caller splices the samples (``inpaint.splice``) at the cue's own rate.
    previous: np.ndarray | None = None
    spans: tuple[Span, ...] = ()


@dataclass(frozen=True)
class SamplingSettings:
    """Defaults follow the official Gradio app (DPM++ 3M SDE, cfg 7, σ 0.03–500) but with half its 100
    steps; these are the pipeline's defaults too (``RunSettings.sampling``)."""

    sampler: str = field(default="dpmpp-3m-sde", metadata=one_of(SAMPLERS))
    steps: int = field(default=50, metadata=at_least(1))
    cfg_scale: float = field(default=7.0, metadata=above(0))
    sigma_min: float = field(default=0.03, metadata=above(0))
    sigma_max: float = field(default=500.0, metadata=above(0))

    def __post_init__(self) -> None:
        check_fields(self)


def video_tensor(config: AudioXConfig, frames: np.ndarray) -> torch.Tensor:
    """(n_frames, 3, S, S) float 0…255: resized to the CLIP input, padded by repeating the last frame.
    Training builds its inputs with this too, so the model learns on exactly what it is given here."""
    vcfg = config.video
    size, n = vcfg.clip.image_size, vcfg.n_frames
    if len(frames) == 0:
        return torch.zeros(n, 3, size, size)
    video = torch.from_numpy(np.array(frames[:n])).permute(0, 3, 1, 2).float()  # (F, 3, H, W)
    if video.shape[-2:] != (size, size):
        # The official pipeline squashes the aspect ratio to a square.
        video = F.interpolate(video, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    if len(video) < n:
        video = torch.cat((video, video[-1:].expand(n - len(video), -1, -1, -1)))
    return video


def stack_video(config: AudioXConfig, frames: Sequence[np.ndarray]) -> torch.Tensor:
    """(B, n_frames, 3, S, S): ``video_tensor`` of each request's frames, on the CPU."""
    return torch.stack([video_tensor(config, f) for f in frames])


def _inpainting(
    model: LoadedModel, requests: Sequence[GenerationRequest], x: torch.Tensor
) -> tuple[Callable[[Denoiser], Denoiser] | None, torch.Tensor | None]:
    """For a batch with inpainting requests: a function that steers a denoiser to their previous latents
    outside their spans (the others untouched), and, with ``studio.inpaint.channels``, the DiT's own
    inpainting input; (None, None) when there is none."""
    if not any(r.previous is not None and r.spans for r in requests):
        return None, None
    cfg, net = model.config, model.network
    hop_s = cfg.autoencoder.hop / cfg.sample_rate
    known = torch.zeros_like(x)
    keep = torch.zeros(x.shape[0], 1, x.shape[-1], dtype=torch.bool, device=x.device)
    fixed = torch.zeros_like(x)
    for i, r in enumerate(requests):
        if r.previous is None or not r.spans:
            continue
        audio = torch.zeros(cfg.audio_channels, cfg.window_samples)
        given = torch.from_numpy(np.ascontiguousarray(r.previous[:, : cfg.window_samples], dtype=np.float32))
        audio[:, : given.shape[1]] = given
        mean, _ = net.pretransform.encode_posterior(audio[None].to(x.device))
        known[i] = (mean[0] / cfg.latent_scale).to(x.dtype)
        keep[i, 0] = keep_mask(r.spans, x.shape[-1], hop_s).to(x.device)
        keep[i, 0, int(np.ceil(r.seconds / hop_s)) :] = False  # past the request's end: nothing to keep
        g = torch.Generator().manual_seed(int(r.seed) + 1)  # its own: requests without inpainting draw as alone
        fixed[i] = torch.randn(tuple(x.shape[1:]), generator=g).to(x.device, x.dtype)
    steered = lambda denoise: guided(denoise, known, keep, fixed)  # noqa: E731
    if not cfg.inpaint.channels:
        return steered, None
    return (steered if cfg.inpaint.guidance else None), channels_input(known, keep)


def audio_prompt_tensor(config: AudioXConfig, prompt: np.ndarray | None) -> torch.Tensor:
    """(2, prompt_samples): left-padded with silence, keeping the last samples if longer."""
    n = config.audio_prompt_samples
    out = torch.zeros(config.audio_channels, n)
    if prompt is not None and prompt.size:
        tail = torch.from_numpy(np.ascontiguousarray(prompt[:, -n:], dtype=np.float32))
        out[:, n - tail.shape[1] :] = tail
    return out


@torch.inference_mode()
def generate(
    model: LoadedModel,
    requests: Sequence[GenerationRequest],
    sampling: SamplingSettings,
    *,
    callback: StepCallback | None = None,
    video: torch.Tensor | None = None,
) -> list[torch.Tensor]:
    """Stereo audio at the model rate for each request: a list of (2, round(seconds · rate)) CPU tensors.
    ``video``: the requests' frames already made into the model's input (``stack_video``, on the
    model's device), as ``generate_scenes`` prepares them while the pass before samples."""
    cfg, net, dev = model.config, model.network, model.device
    window = cfg.window_samples
    for r in requests:
        if not 0 < r.seconds * cfg.sample_rate <= window:
            raise InputError(
                f"generation request: {r.seconds:.3f} s is outside (0, {window / cfg.sample_rate:.2f}] s, one window"
            )
    wanted = len(requests)
    if model.compiled is not None and model.compiled.active:  # a few fixed batch shapes: one compile each
        requests = [*requests, *[requests[-1]] * (padded_size(wanted) - wanted)]
    generators = [torch.Generator().manual_seed(int(r.seed)) for r in requests]
    noise = NoiseSource(generators)
    if video is None:
        video = stack_video(cfg, [r.frames for r in requests]).to(dev)
    elif len(video) < len(requests):  # padded to a compiled batch size: the last request repeated
        video = torch.cat((video, video[-1:].expand(len(requests) - len(video), *video.shape[1:])))
    prompts = torch.stack([audio_prompt_tensor(cfg, r.audio_prompt) for r in requests]).to(dev)
    text = model.text_encoder([r.text for r in requests])
    present = torch.tensor([len(r.frames) > 0 for r in requests], device=dev)
    # Draw order per request: the audio prompt's VAE noise, the initial latent, then sampler noise.
    prompt_noise = noise.draw((cfg.audio.autoencoder.latent_dim, cfg.audio.n_tokens), dev)
    kvs = net.cross_attention_kv(net.condition(video, text, prompts, prompt_noise, present))
    sync = net.sync_features(video, present, torch.tensor([r.frames_offset_s for r in requests], dtype=torch.float64))
    sigmas = sigma_schedule(sampling.steps, sampling.sigma_min, sampling.sigma_max).to(dev)
    x = noise.draw((cfg.dit.io_channels, cfg.latent_frames), dev) * sigmas[0]
    sampler = get_sampler(sampling.sampler)

    steer, known = _inpainting(model, requests, x)
    conditions = Conditions(kvs, sync, net.pooled_text(text), known)

    def denoise(x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return net.denoise(x, s, conditions, sampling.cfg_scale)

    latents = sampler(steer(denoise) if steer else denoise, x, sigmas, noise=noise, callback=callback)
    audio = net.pretransform.decode(latents.to(torch.float32) * cfg.latent_scale).float().cpu()  # (B, 2, window)
    return [audio[i, :, : int(round(r.seconds * cfg.sample_rate))].clone() for i, r in enumerate(requests[:wanted])]
