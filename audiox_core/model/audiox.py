"""The assembled AudioX network, as the official checkpoint has it: DiT (``model``), conditioners, VAE."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from audiox_core.model.autoencoder import Pretransform
from audiox_core.model.conditioners import AudioPromptConditioner, VideoConditioner, WordEmbedding
from audiox_core.model.config import AudioXConfig
from audiox_core.model.dit import Conditions, DiTWrapper, KeysValues
from audiox_core.model.sync import SyncEncoder

# Seeds of our optional parts (made outside the global random stream, so a model with them has
# every official part initialised exactly as the model without them).
_SYNC_SEED, _WORDS_SEED = 7_000_001, 7_000_002


def _own_init(seed: int, make: Callable[[], nn.Module]) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return make()


class MultiConditioner(nn.Module):
    def __init__(self, cfg: AudioXConfig) -> None:
        super().__init__()
        self.conditioners = nn.ModuleDict(
            {
                "video_prompt": VideoConditioner(cfg.video),
                "audio_prompt": AudioPromptConditioner(cfg.audio, cfg.cond_dim),
            }
        )
        if cfg.text.kind == "words":  # ours; the official text conditioner (T5) contributes no keys
            self.conditioners["text_prompt"] = _own_init(_WORDS_SEED, lambda: WordEmbedding(cfg.text, cfg.cond_dim))
        if cfg.sync.dim:
            self.conditioners["video_sync"] = _own_init(_SYNC_SEED, lambda: SyncEncoder(cfg.sync))


class AudioX(nn.Module):
    def __init__(self, cfg: AudioXConfig) -> None:
        super().__init__()
        self.cfg = cfg
        # registration order gives the official state-dict key order
        self.model = DiTWrapper(cfg.dit)
        self.conditioner = MultiConditioner(cfg)
        self.pretransform = Pretransform(cfg.autoencoder)

    @property
    def text_words(self) -> WordEmbedding | None:
        """The network's own text encoder (a ``words`` config), else None (T5 lives outside)."""
        found = self.conditioner.conditioners["text_prompt"] if "text_prompt" in self.conditioner.conditioners else None
        return found if isinstance(found, WordEmbedding) else None

    def condition(
        self,
        video: torch.Tensor,
        text: torch.Tensor,
        audio: torch.Tensor,
        audio_noise: torch.Tensor,
        video_present: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Cross-attention tokens [video | text | audio]: (B, 128 + 128 + 215, cond_dim) for the official sizes.
        ``text``: (B, L, cond_dim) encoder tokens, or (B, L) word ids for a model with its own words
        encoder (training passes ids so the embedding learns). ``video_present`` (B,) bool: which
        videos are there (None: the all-zero ones are absent)."""
        conditioners = self.conditioner.conditioners
        video_tokens = conditioners["video_prompt"](video, video_present)
        audio_tokens = conditioners["audio_prompt"](audio, audio_noise)
        return torch.cat((video_tokens, self.text_tokens(text).to(video_tokens.dtype), audio_tokens), dim=1)

    def text_tokens(self, text: torch.Tensor) -> torch.Tensor:
        """(B, L, cond_dim) text tokens, zero at padding, from tokens or from a words encoder's ids."""
        if text.is_floating_point():
            return text
        assert self.text_words is not None, "word ids given to a model without a words text encoder"
        return self.text_words(text) * (text != 0)[..., None]

    def pooled_text(self, text: torch.Tensor) -> torch.Tensor | None:
        """(B, cond_dim): the mean of each caption's tokens (zero for an empty one), the DiT's global
        condition where the config asks for it (``global_cond_ids: [text_prompt]``); else None."""
        if not self.cfg.dit.global_text:
            return None
        tokens = self.text_tokens(text)
        present = (tokens != 0).any(dim=-1, keepdim=True).to(tokens.dtype)  # (B, L, 1)
        return (tokens * present).sum(1) / present.sum(1).clamp_min(1.0)

    def sync_features(
        self, video: torch.Tensor, video_present: torch.Tensor, offset_s: torch.Tensor | None = None
    ) -> torch.Tensor | None:
        """(B, latent_frames, sync_dim) time-aligned video features (model/sync.py), zero for absent
        videos; None for a model without them. ``offset_s`` (B,): how long before the window its first
        frame starts (None: 0)."""
        if not self.cfg.sync.dim:
            return None
        encoder = self.conditioner.conditioners["video_sync"]
        hop_s = self.cfg.autoencoder.hop / self.cfg.sample_rate
        offset = torch.zeros(len(video)) if offset_s is None else offset_s
        features = encoder(video, self.cfg.video.video_fps, offset, self.cfg.latent_frames, hop_s)
        return features * video_present.to(features.device, features.dtype)[:, None, None]

    @property
    def dit_dtype(self) -> torch.dtype:
        return self.model.model.transformer.project_in.weight.dtype

    def to_inference_dtype(self, dtype: torch.dtype) -> AudioX:
        """Run the DiT in ``dtype`` (bf16 on CUDA), keeping its timestep path, the VAE and the
        conditioners in fp32; the sampler's own arithmetic stays fp32."""
        dit = self.model.model.to(dtype)
        dit.timestep_features.float()
        dit.to_timestep_embed.float()
        return self

    def cross_attention_kv(self, cond: torch.Tensor) -> list[KeysValues]:
        """Per-layer keys and values of the condition tokens: once per request, reused every step."""
        return self.model.model.condition(cond.to(self.dit_dtype))

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor, c: Conditions, cfg_scale: float) -> torch.Tensor:
        """Estimate the clean latent from x at noise level σ: the v objective on the cosine schedule as a
        σ-parameterised denoiser (σ_data = 1), as the official sampler wraps it."""
        sigma = sigma.to(torch.float32)
        c_skip = 1 / (sigma**2 + 1)
        c_out = -sigma / torch.sqrt(sigma**2 + 1)
        c_in = 1 / torch.sqrt(sigma**2 + 1)
        t = torch.atan(sigma) * 2 / torch.pi
        v = self.model.model.guided((x * c_in).to(self.dit_dtype), t.expand(x.shape[0]).to(x.device), c, cfg_scale)
        return x * c_skip + v.to(x.dtype) * c_out
