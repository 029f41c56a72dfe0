"""From examples to training batches: clips decoded once, the VAE's latents cached, DiT samples drawn."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from audiox_core.model.audiox import AudioX
from audiox_core.model.conditioners import TextEncoder
from audiox_core.model.config import AudioXConfig
from audiox_core.model.generate import audio_prompt_tensor, video_tensor
from audiox_core.train.examples import Example, decode_example
from audiox_core.train.masking import drop_words, inpaint_keep, mask_patches, silence_segments
from audiox_core.train.objective import Dropped, draw_dropout, sample_generator
from audiox_core.train.recipe import DitStage

log = logging.getLogger(__name__)


@dataclass
class Clip:
    id: str
    audio: torch.Tensor  # (2, N) at the model rate, N ≥ one window
    frames: np.ndarray  # (F, S, S, 3) uint8 at the model fps and CLIP size
    caption: str
    cue_prompt: str  # what the pipeline's cue planner prompts this model with for this kind of cue
    onsets: tuple[int, ...] = ()  # the sound's onsets in samples (``evaluation.audio_onsets``)


def fingerprint(examples: list[Example]) -> str:
    """sha256 over every example's id, caption and the bytes of its files: the data a run trained on."""
    h = hashlib.sha256()
    for ex in examples:
        h.update(f"{ex.id}\0{ex.caption}\0".encode())
        for path in (ex.audio, ex.video):
            if path is not None:
                h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def decode_clips(
    examples: list[Example], cfg: AudioXConfig, progress: Callable[[int, int], None] | None = None
) -> list[Clip]:
    """Each example at the model's rate, fps and frame size; sound shorter than a window is padded.
    The cue prompt is the model's own task prompt for the clip's kind (what drafted cue sheets say)."""
    from audiox_core.train.evaluation import audio_onsets

    clips = []
    for i, ex in enumerate(examples):
        d = decode_example(ex, sample_rate=cfg.sample_rate, fps=cfg.video.video_fps, size=cfg.video.clip.image_size)
        audio = torch.from_numpy(d.audio)
        if audio.shape[1] < cfg.window_samples:
            audio = torch.nn.functional.pad(audio, (0, cfg.window_samples - audio.shape[1]))
        cue_prompt = cfg.prompts.music if ex.sound_class == "music" else cfg.prompts.foley
        onsets = tuple(int(round(t * cfg.sample_rate)) for t in audio_onsets(d.audio, cfg.sample_rate))
        clips.append(Clip(ex.id, audio, d.frames, d.caption, cue_prompt, onsets))
        if progress:
            progress(i + 1, len(examples))
    return clips


@torch.no_grad()
def encode_latents(
    net: AudioX, clips: list[Clip], cache: Path, device: torch.device
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The frozen VAE's posterior (mean, std), (latent, L) per clip, computed once and kept in ``cache``."""
    if cache.is_file():
        from safetensors.torch import load_file

        stored = load_file(str(cache))
        return [(stored[f"{c.id}.mean"], stored[f"{c.id}.std"]) for c in clips]
    vae = net.pretransform
    out = []
    for c in clips:
        mean, std = vae.encode_posterior(c.audio[None].to(device))
        out.append((mean[0].cpu(), std[0].cpu()))
    from safetensors.torch import save_file

    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(f".{cache.name}.partial")
    save_file(
        {f"{c.id}.{k}": t.contiguous() for c, (m, s) in zip(clips, out) for k, t in (("mean", m), ("std", s))}, str(tmp)
    )
    tmp.replace(cache)
    return out


@dataclass
class DitBatch:
    x0: torch.Tensor  # (B, latent, T)
    video: torch.Tensor  # (B, F, 3, S, S)
    text: torch.Tensor  # (B, max_length, cond_dim) tokens, or (B, max_length) ids for a words encoder
    prompt: torch.Tensor  # (B, 2, prompt_samples)
    prompt_noise: torch.Tensor  # (B, latent, n_tokens)
    t: torch.Tensor  # (B,)
    noise: torch.Tensor  # (B, latent, T)
    keep: torch.Tensor  # (B,) 0 where the whole condition is dropped (the CFG null condition)
    video_present: torch.Tensor  # (B,) bool: the window has its picture
    frames_offset: torch.Tensor  # (B,) float64 s: how long before the window its first frame starts
    onsets: torch.Tensor  # (B, T) 1 in the latent frames where the real sound has an onset
    inpaint_keep: torch.Tensor  # (B, 1, T) bool: latent frames known to an inpainting DiT (all False: none)


class DitSampler:
    """Draws DiT samples for global batch positions from the clips and their cached latents: a window at a
    latent-aligned start with ``generate()``'s inputs (its frames, the caption, the clip's audio just before it
    as continuation prompt), every draw from the sample's own generators (``objective``, ``masking``)."""

    def __init__(
        self,
        cfg: AudioXConfig,
        stage: DitStage,
        clips: list[Clip],
        latents: list[tuple[torch.Tensor, torch.Tensor]],
        text_encoder: TextEncoder,
        seed: int,
    ) -> None:
        """``latents``: the VAE's posterior per clip; the DiT's x₀ is a draw from it over ``cfg.latent_scale``."""
        self.cfg, self.stage, self.clips, self.latents, self.seed = cfg, stage, clips, latents, seed
        self.text_encoder = text_encoder
        self._text: dict[str, torch.Tensor] = {}
        self.hop_samples = int(round((cfg.video.window_s - stage.overlap_s) * cfg.sample_rate))

    def text(self, caption: str) -> torch.Tensor:
        """The caption's tokens, or its word ids when the encoder learns with the model."""
        if caption not in self._text:
            if self.text_encoder.trainable:
                self._text[caption] = self.text_encoder.tokenize([caption])[0][0].clone()
            else:
                self._text[caption] = self.text_encoder([caption])[0].clone()
        return self._text[caption]

    def onset_frames(self, clip: Clip, start: int) -> torch.Tensor:
        """(T,) 1 in each latent frame of the window from latent frame ``start`` holding an onset."""
        hop, frames_t = self.cfg.autoencoder.hop, self.cfg.latent_frames
        out = torch.zeros(frames_t)
        for at in clip.onsets:
            k = at // hop - start
            if 0 <= k < frames_t:
                out[k] = 1.0
        return out

    def sample(self, step: int, position: int, clip_index: int) -> tuple[DitBatch, Dropped]:
        cfg, st = self.cfg, self.stage
        g = sample_generator(self.seed, "dit", step, position)
        clip = self.clips[clip_index]
        mean, std = self.latents[clip_index]
        frames_t = cfg.latent_frames
        last = mean.shape[1] - frames_t
        start = int(torch.randint(0, last + 1, (1,), generator=g))
        continuation = float(torch.rand(1, generator=g)) < st.continuation_prob
        if continuation and start == 0 and last > 0:
            start = int(torch.randint(1, last + 1, (1,), generator=g))
        dropped = draw_dropout(
            g, cfg=st.cfg_dropout, video=st.video_dropout, text=st.text_dropout, audio=st.audio_dropout
        )
        use_cue_prompt = float(torch.rand(1, generator=g)) < st.pipeline_prompt_prob
        t = torch.rand(1, generator=g)
        noise = torch.randn(mean.shape[0], frames_t, generator=g)
        posterior = torch.randn(mean.shape[0], frames_t, generator=g)
        prompt_noise = torch.randn(cfg.audio.autoencoder.latent_dim, cfg.audio.n_tokens, generator=g)
        x0 = (mean[:, start : start + frames_t] + std[:, start : start + frames_t] * posterior) / cfg.latent_scale
        sample = start * cfg.autoencoder.hop
        first = int(sample * cfg.video.video_fps // cfg.sample_rate)
        offset = sample / cfg.sample_rate - first / cfg.video.video_fps  # the window starts between frames
        frames = clip.frames[first : first + cfg.video.n_frames]
        if dropped.video or len(frames) == 0:
            frames = clip.frames[:0]
        video = video_tensor(cfg, frames)
        caption = "" if dropped.text else clip.cue_prompt if use_cue_prompt else clip.caption
        prompt = None
        if continuation and sample > 0 and not dropped.audio:
            prompt = clip.audio[:, max(0, sample - self.hop_samples) : sample].numpy()
        prompt_audio = audio_prompt_tensor(cfg, prompt)
        # masks draw from generators of their own: a recipe whose rates are all 0 draws the batches it drew before
        m = sample_generator(self.seed, "dit/mask", step, position)
        if st.video_patch_mask > 0 and len(frames) > 0:
            video = mask_patches(m, video, st.video_patch_mask, cfg.video.clip.patch_size)
        if st.text_token_mask > 0 and caption:
            caption = drop_words(m, caption, st.text_token_mask)
        if st.audio_segment_mask > 0 and prompt is not None:
            segment = max(1, round(st.audio_segment_s * cfg.sample_rate))
            prompt_audio = silence_segments(m, prompt_audio, st.audio_segment_mask, segment)
        keep = inpaint_keep(
            sample_generator(self.seed, "dit/inpaint", step, position),
            frames_t,
            segments=st.inpaint_segments_prob,
            causal=st.inpaint_causal_prob,
        )
        return (
            DitBatch(
                x0[None],
                video[None],
                self.text(caption)[None],
                prompt_audio[None],
                prompt_noise[None],
                t,
                noise[None],
                torch.tensor([0.0 if dropped.everything else 1.0]),
                torch.tensor([len(frames) > 0]),
                torch.tensor([offset], dtype=torch.float64),
                self.onset_frames(clip, start)[None],
                keep[None, None],
            ),
            dropped,
        )

    def batch(self, step: int, positions: list[int], clip_indices: list[int]) -> DitBatch:
        parts = [self.sample(step, p, c)[0] for p, c in zip(positions, clip_indices)]
        return DitBatch(*(torch.cat([getattr(b, f) for b in parts]) for f in DitBatch.__dataclass_fields__))


def vae_crops(
    clips: list[Clip],
    seed: int,
    step: int,
    positions: list[int],
    clip_indices: list[int],
    crop: int,
    cfg: AudioXConfig,
    *,
    onsets: list[list[int]] | None = None,
    onset_prob: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 2, crop) random crops of the clips' audio at a random gain (−6…0 dB), for the autoencoder
    stage, and (B, latent, crop / hop) noise for sampling its posterior. With ``onsets`` (per clip,
    in samples), a crop is placed with probability ``onset_prob`` so that one of its clip's onsets
    falls in its middle 80 %; those draws come after the others, so ``onset_prob`` 0 crops as before."""
    audio, noise = [], []
    for p, c in zip(positions, clip_indices):
        g = sample_generator(seed, "vae", step, p)
        source = clips[c].audio
        start = int(torch.randint(0, source.shape[1] - crop + 1, (1,), generator=g))
        gain = 10 ** (float(torch.empty(1).uniform_(-6, 0, generator=g)) / 20)
        noise.append(torch.randn(cfg.autoencoder.latent_dim, crop // cfg.autoencoder.hop, generator=g))
        if onsets is not None and onset_prob > 0 and onsets[c]:
            placed = float(torch.rand(1, generator=g)) < onset_prob
            at = onsets[c][int(torch.randint(0, len(onsets[c]), (1,), generator=g))]
            offset = int(torch.randint(int(0.1 * crop), int(0.9 * crop) + 1, (1,), generator=g))
            if placed:
                start = min(max(0, at - offset), source.shape[1] - crop)
        audio.append(source[:, start : start + crop] * gain)
    return torch.stack(audio), torch.stack(noise)


def latent_spread(latents: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """The standard deviation of the posterior means over every clip, channel and frame."""
    return float(torch.cat([m.flatten() for m, _ in latents]).std())
