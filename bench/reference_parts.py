"""Straightforward implementations of the conditioning and the VAE decode, for side-by-side timing.

The same weights and maths as audiox_core.model.conditioners and .autoencoder, run the way the
official AudioX code runs them (read in its conditioners.py, temptransformer.py, pretransforms.py
and autoencoders.py): every video and audio prompt is encoded and the absent ones then replaced by
the learned empty feature; the audio prompt's VAE encode and the VAE decode run one batch item at a
time (``iterate_batch``); the temporal transformer's attention is an explicit einsum and softmax;
weight norm is recomputed on every call and SnakeBeta is written out op by op. Used only by
bench/model_bench.py (and checked there to agree with ours).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from audiox_core.model.audiox import AudioX
from audiox_core.model.autoencoder import (
    DecoderBlock,
    EncoderBlock,
    Pretransform,
    ResidualUnit,
    SnakeBeta,
    WNConv1d,
    WNConvTranspose1d,
)
from audiox_core.model.conditioners import CLIP_MEAN, CLIP_STD, AudioPromptConditioner, VideoConditioner


def _layer(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """One Oobleck layer, the plain way."""
    if isinstance(module, SnakeBeta):
        alpha, beta = module.alpha.exp()[None, :, None], module.beta.exp()[None, :, None]
        return x + (1.0 / (beta + 1e-9)) * torch.pow(torch.sin(x * alpha), 2)
    if isinstance(module, WNConv1d | WNConvTranspose1d):
        v = module.weight_v
        weight = module.weight_g * v / v.norm(dim=(1, 2), keepdim=True)
        conv = F.conv1d if isinstance(module, WNConv1d) else F.conv_transpose1d
        extra = {"dilation": module.dilation} if isinstance(module, WNConv1d) else {}
        return conv(x, weight, module.bias, module.stride, module.padding, **extra)
    if isinstance(module, ResidualUnit):
        return x + _sequence(module.layers, x)
    if isinstance(module, EncoderBlock | DecoderBlock | nn.Sequential):
        return _sequence(module.layers if hasattr(module, "layers") else module, x)
    return module(x)  # Tanh / Identity


def _sequence(layers: nn.Module, x: torch.Tensor) -> torch.Tensor:
    for layer in layers:
        x = _layer(layer, x)
    return x


def reference_decode(pretransform: Pretransform, latent: torch.Tensor) -> torch.Tensor:
    """The VAE decode, one batch item at a time."""
    layers = pretransform.model.decoder.layers
    return torch.cat([_sequence(layers, latent[i : i + 1]) for i in range(latent.shape[0])])


def _temporal(conditioner: VideoConditioner, x: torch.Tensor) -> torch.Tensor:
    """The temporal transformer with explicit einsum attention."""
    tt = conditioner.Temp_transformer
    for attn, ff in tt.layers:
        a = attn.norm(x)
        heads = attn.fn.heads
        q, k, v = (t.reshape(*t.shape[:2], heads, -1).transpose(1, 2) for t in attn.fn.to_qkv(a).chunk(3, dim=-1))
        scores = torch.einsum("bhid,bhjd->bhij", q, k) * q.shape[-1] ** -0.5
        out = torch.einsum("bhij,bhjd->bhid", scores.softmax(dim=-1), v)
        x = attn.fn.to_out(out.transpose(1, 2).reshape(*x.shape[:2], -1)) + x
        x = ff.fn(ff.norm(x)) + x
    return tt.norm(x)


def reference_video(conditioner: VideoConditioner, video: torch.Tensor) -> torch.Tensor:
    """(B, F, 3, H, W) 0…255 → (B, n_tokens, dim): every video encoded, all-zero ones then replaced."""
    b, f = video.shape[:2]
    is_zero = torch.all(video == 0, dim=(1, 2, 3, 4))
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    pixels = (video.flatten(0, 1) / 255.0 - mean) / std
    hidden = conditioner.visual_encoder_model(pixel_values=pixels).last_hidden_state  # (B·F, P, dim)
    p, dim = hidden.shape[1:]
    x = hidden.reshape(b, f, p, dim).permute(0, 2, 1, 3).reshape(b * p, f, dim)
    x = _temporal(conditioner, x + conditioner.Temp_pos_embedding)
    x = x.reshape(b, p, f, dim).permute(0, 2, 1, 3).reshape(b, f * p, dim)
    x = conditioner.proj(x.reshape(-1, f * p)).reshape(b, conditioner.cfg.n_tokens, -1)
    return torch.where(is_zero[:, None, None], conditioner.empty_visual_feat.expand(b, -1, -1), x)


def reference_audio(conditioner: AudioPromptConditioner, audio: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """(B, 2, samples) → (B, n_tokens, dim): encoded one item at a time, silent ones then replaced."""
    b = audio.shape[0]
    is_zero = torch.all(audio == 0, dim=(1, 2))
    layers = conditioner.pretransform.model.encoder.layers
    raw = torch.cat([_sequence(layers, audio[i : i + 1]) for i in range(b)])
    mean, scale = raw.chunk(2, dim=1)
    latent = noise * (F.softplus(scale) + 1e-4) + mean
    tokens = conditioner.proj_out(latent.permute(0, 2, 1))
    return torch.where(is_zero[:, None, None], conditioner.empty_audio_feat.expand(b, -1, -1), tokens)


def reference_condition(
    net: AudioX, video: torch.Tensor, text: torch.Tensor, prompt: torch.Tensor, noise: torch.Tensor
) -> torch.Tensor:
    """The cross-attention tokens [video | text | audio] as the official conditioner assembles them."""
    conditioners = net.conditioner.conditioners
    video_tokens = reference_video(conditioners["video_prompt"], video)
    audio_tokens = reference_audio(conditioners["audio_prompt"], prompt, noise)
    return torch.cat((video_tokens, text, audio_tokens), dim=1)
