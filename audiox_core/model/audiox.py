"""The assembled AudioX network: DiT (``model``), conditioners (``conditioner``), VAE (``pretransform``).

Registration order gives the official state-dict key order. The v objective with a cosine
schedule is wrapped as a σ-parameterised denoiser (σ_data = 1), as the official sampler does.
"""

from __future__ import annotations

import torch
from torch import nn

from audiox_core.model.autoencoder import Pretransform
from audiox_core.model.conditioners import AudioPromptConditioner, VideoConditioner
from audiox_core.model.config import AudioXConfig
from audiox_core.model.dit import DiTWrapper, KeysValues


class MultiConditioner(nn.Module):
    def __init__(self, cfg: AudioXConfig) -> None:
        super().__init__()
        self.conditioners = nn.ModuleDict(
            {
                "video_prompt": VideoConditioner(cfg.video),
                "audio_prompt": AudioPromptConditioner(cfg.audio, cfg.cond_dim),
            }
        )


class AudioX(nn.Module):
    def __init__(self, cfg: AudioXConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.model = DiTWrapper(cfg.dit)
        self.conditioner = MultiConditioner(cfg)
        self.pretransform = Pretransform(cfg.autoencoder)

    def condition(
        self, video: torch.Tensor, text: torch.Tensor, audio: torch.Tensor, audio_noise: torch.Tensor
    ) -> torch.Tensor:
        """Cross-attention tokens [video | text | audio]: (B, 128 + 128 + 215, cond_dim) for the official sizes."""
        conditioners = self.conditioner.conditioners
        video_tokens = conditioners["video_prompt"](video)
        audio_tokens = conditioners["audio_prompt"](audio, audio_noise)
        return torch.cat((video_tokens, text.to(video_tokens.dtype), audio_tokens), dim=1)

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

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor, kvs: list[KeysValues], cfg_scale: float) -> torch.Tensor:
        """Estimate the clean latent from x at noise level σ (v objective, σ_data = 1)."""
        sigma = sigma.to(torch.float32)
        c_skip = 1 / (sigma**2 + 1)
        c_out = -sigma / torch.sqrt(sigma**2 + 1)
        c_in = 1 / torch.sqrt(sigma**2 + 1)
        t = torch.atan(sigma) * 2 / torch.pi
        v = self.model.model.guided((x * c_in).to(self.dit_dtype), t.expand(x.shape[0]).to(x.device), kvs, cfg_scale)
        return x * c_skip + v.to(x.dtype) * c_out
