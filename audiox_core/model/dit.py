"""The AudioX diffusion transformer (shared/audiox/SPEC.md): norm → attention → feed-forward → block → model."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from audiox_core.model.autograd import tracked
from audiox_core.model.config import DiTConfig

KeysValues = tuple[torch.Tensor, torch.Tensor]
Rotation = tuple[torch.Tensor, torch.Tensor]  # cos and sin of the rotary angles


@dataclass(frozen=True)
class Conditions:
    """What every pass of one request's sampling reads besides x and t, encoded once (MMAudio's
    ``preprocess_conditions``): per-layer cross-attention keys and values, the time-aligned video
    features, the pooled caption and the inpainting input (see ``DiffusionTransformer.forward_once``)."""

    kvs: list[KeysValues]
    sync: torch.Tensor | None = None
    pooled: torch.Tensor | None = None
    known: torch.Tensor | None = None


class LayerNorm(nn.Module):
    """LayerNorm with a learnable ``gamma`` and a fixed zero ``beta`` that the checkpoint stores."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))
        self.register_buffer("beta", torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:], self.gamma, self.beta, eps=1e-5)


class RotaryEmbedding(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("inv_freq", 1.0 / torch.pow(10000.0, torch.arange(0, dim, 2).float() / dim))

    def forward(self, seq_len: int) -> Rotation:
        """(cos, sin) of the angles, (T, rotary_dim) fp32: computed once per pass, read by every layer."""
        positions = torch.arange(seq_len, device=self.inv_freq.device, dtype=torch.float32)
        freqs = torch.outer(positions, self.inv_freq.float())
        angles = torch.cat((freqs, freqs), dim=-1)
        return angles.cos(), angles.sin()


def _rotate_half(x: torch.Tensor) -> torch.Tensor:  # NeoX rotate-half
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary(t: torch.Tensor, rotation: Rotation) -> torch.Tensor:
    """Rotate the first ``rotary_dim`` features of each head, in fp32; the rest pass through."""
    cos, sin = rotation
    rot = cos.shape[-1]
    head, rest = t[..., :rot].float(), t[..., rot:]
    head = head * cos + _rotate_half(head) * sin
    return torch.cat((head.to(t.dtype), rest), dim=-1)


def _split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:  # (B, T, H·D) -> (B, H, T, D)
    b, t, _ = x.shape
    return x.view(b, t, heads, -1).transpose(1, 2)


def _merge_heads(x: torch.Tensor) -> torch.Tensor:  # (B, H, T, D) -> (B, T, H·D)
    b, h, t, d = x.shape
    return x.transpose(1, 2).reshape(b, t, h * d)


class SelfAttention(nn.Module):
    """Self-attention, the only one with rotary embedding; no masks (SPEC.md)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.to_qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.to_out = nn.Linear(dim, dim, bias=False)

    def forward(self, x: torch.Tensor, rotation: Rotation) -> torch.Tensor:
        q, k, v = (_split_heads(t, self.heads) for t in self.to_qkv(x).chunk(3, dim=-1))  # (B, H, T, D)
        q, k = apply_rotary(q, rotation), apply_rotary(k, rotation)
        return self.to_out(_merge_heads(F.scaled_dot_product_attention(q, k, v)))


class CrossAttention(nn.Module):
    """Grouped-query cross-attention: query head i reads key/value head i // (heads / kv_heads)."""

    def __init__(self, dim: int, context_dim: int, heads: int, kv_heads: int) -> None:
        super().__init__()
        self.heads, self.kv_heads = heads, kv_heads
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_kv = nn.Linear(context_dim, 2 * context_dim, bias=False)
        self.to_out = nn.Linear(dim, dim, bias=False)

    def keys_values(self, context: torch.Tensor) -> KeysValues:
        """(B, Hkv, S, D) keys and values; they depend on the condition only, so once per request."""
        k, v = (_split_heads(t, self.kv_heads) for t in self.to_kv(context).chunk(2, dim=-1))
        return k, v

    def forward(self, x: torch.Tensor, kv: KeysValues) -> torch.Tensor:
        q = _split_heads(self.to_q(x), self.heads)  # (B, H, T, D)
        out = F.scaled_dot_product_attention(q, *kv, enable_gqa=self.heads != self.kv_heads)
        return self.to_out(_merge_heads(out))


class SwiGLU(nn.Module):
    def __init__(self, dim: int, inner: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, 2 * inner)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, gate = self.proj(x).chunk(2, dim=-1)
        return x * F.silu(gate) if tracked(x) else F.silu(gate).mul_(x)  # the same product


class FeedForward(nn.Module):
    def __init__(self, dim: int, mult: int) -> None:
        super().__init__()
        self.ff = nn.Sequential(SwiGLU(dim, dim * mult), nn.Identity(), nn.Linear(dim * mult, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ff(x)


class TransformerBlock(nn.Module):
    def __init__(self, cfg: DiTConfig) -> None:
        super().__init__()
        dim = cfg.embed_dim
        self.pre_norm = LayerNorm(dim)
        self.self_attn = SelfAttention(dim, cfg.num_heads)
        self.cross_attend_norm = LayerNorm(dim)
        self.cross_attn = CrossAttention(dim, cfg.cond_token_dim, cfg.num_heads, cfg.kv_heads)
        self.ff_norm = LayerNorm(dim)
        self.ff = FeedForward(dim, cfg.ff_mult)

    def forward(self, x: torch.Tensor, kv: KeysValues, rotation: Rotation) -> torch.Tensor:
        # Rows past the keys' batch carry the all-zero CFG null condition: their keys and values are
        # exactly zero (no biases on the way), so cross-attention adds exactly zero and is skipped.
        n = kv[0].shape[0]
        if tracked(x):
            x = x + self.self_attn(self.pre_norm(x), rotation)
            cross = self.cross_attn(self.cross_attend_norm(x[:n]), kv)
            x = x + cross if n == x.shape[0] else torch.cat((x[:n] + cross, x[n:]))
            return x + self.ff(self.ff_norm(x))
        # Inference: the same sums, added in place (x is this pass's own tensor, read by nothing else).
        x = x.add_(self.self_attn(self.pre_norm(x), rotation))
        x[:n].add_(self.cross_attn(self.cross_attend_norm(x[:n]), kv))
        return x.add_(self.ff(self.ff_norm(x)))


class ContinuousTransformer(nn.Module):
    def __init__(self, cfg: DiTConfig) -> None:
        super().__init__()
        self.gradient_checkpointing = False  # training only: recompute each block in backward to save memory
        self.layers = nn.ModuleList(TransformerBlock(cfg) for _ in range(cfg.depth))
        self.project_in = nn.Linear(cfg.io_channels, cfg.embed_dim, bias=False)
        self.project_out = nn.Linear(cfg.embed_dim, cfg.io_channels, bias=False)
        self.rotary_pos_emb = RotaryEmbedding(cfg.rotary_dim)

    def forward(
        self,
        x: torch.Tensor,
        prepend: torch.Tensor,
        kvs: list[KeysValues],
        added: torch.Tensor | None = None,
        every: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``added`` (N, T, E): time-aligned tokens added to the first N rows' inputs (the rest are the
        unconditional CFG rows, which get none); ``every`` (B, T, E): added to every row's input."""
        h = self.project_in(x)  # (B, T, E)
        if every is not None:
            h = h + every
        if added is not None:
            n = added.shape[0]
            h = h + added if n == h.shape[0] else torch.cat((h[:n] + added, h[n:]))
        x = torch.cat((prepend, h), dim=1)  # (B, 1 + T, E)
        rotation = self.rotary_pos_emb(x.shape[1])
        recompute = self.gradient_checkpointing and self.training and torch.is_grad_enabled()
        for layer, kv in zip(self.layers, kvs):
            x = checkpoint(layer, x, kv, rotation, use_reentrant=False) if recompute else layer(x, kv, rotation)
        return self.project_out(x)  # (B, 1 + T, io)


class FourierFeatures(nn.Module):
    def __init__(self, out_features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features // 2, 1))

    def forward(self, t: torch.Tensor) -> torch.Tensor:  # (B, 1) -> (B, out)
        f = 2 * math.pi * t @ self.weight.T
        return torch.cat((f.cos(), f.sin()), dim=-1)


def _mlp(d_in: int, d_out: int, bias: bool) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d_out, bias=bias), nn.SiLU(), nn.Linear(d_out, d_out, bias=bias))


class DiffusionTransformer(nn.Module):
    def __init__(self, cfg: DiTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.timestep_features = FourierFeatures(cfg.timestep_features_dim)
        self.to_timestep_embed = _mlp(cfg.timestep_features_dim, cfg.embed_dim, bias=True)
        self.to_cond_embed = _mlp(cfg.cond_token_dim, cfg.cond_token_dim, bias=False)
        # In the checkpoint but unused by AudioX (no global conditioning); kept for strict loading.
        self.to_global_embed = _mlp(cfg.global_cond_dim, cfg.embed_dim, bias=False)
        self.transformer = ContinuousTransformer(cfg)
        self.preprocess_conv = nn.Conv1d(cfg.io_channels, cfg.io_channels, 1, bias=False)
        self.postprocess_conv = nn.Conv1d(cfg.io_channels, cfg.io_channels, 1, bias=False)
        if cfg.sync_dim:  # ours (model/sync.py): zero, so the model starts as the one without it
            self.sync_proj = nn.Parameter(torch.zeros(cfg.embed_dim, cfg.sync_dim))
        if cfg.inpaint_channels:  # ours: project_in's extra input columns for [keep-mask | masked latents]
            self.inpaint_proj = nn.Parameter(torch.zeros(cfg.embed_dim, 1 + cfg.io_channels))
        # The inpainting input (B, 1 + io, T) of the pass being made, where a caller of ``guided`` set it

    def condition(self, cond: torch.Tensor) -> list[KeysValues]:
        """Per-layer cross-attention keys and values of raw condition tokens (B, S, cond_dim)."""
        context = self.to_cond_embed(cond)
        return [layer.cross_attn.keys_values(context) for layer in self.transformer.layers]

    def forward_once(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        kvs: list[KeysValues],
        sync: torch.Tensor | None = None,
        pooled: torch.Tensor | None = None,
        known: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """One pass: x (B, io, T) noisy latent, t (B,) in [0, 1]; rows past the keys' batch are unconditional.
        ``sync`` (N, T, sync_dim): time-aligned video features of the first N rows (model/sync.py).
        ``pooled`` (N, global_cond_dim): the first N rows' global condition (the pooled caption of a
        ``global_text`` DiT), through ``to_global_embed`` onto the timestep token; the rest get none.
        ``known`` (B, 1 + io, T): every row's keep-mask and masked clean latents (an ``inpaint_channels``
        DiT); stable-audio-tools concatenates them to x before ``project_in``, which equals adding
        their own zero-initialised columns' product (no bias), so all-zero rows add exactly nothing."""
        # The timestep path may stay fp32 while the rest runs in bf16 (see AudioX.to_inference_dtype).
        t_dtype = self.timestep_features.weight.dtype
        t_embed = self.to_timestep_embed(self.timestep_features(t[:, None].to(t_dtype))).to(x.dtype)  # (B, E)
        if pooled is not None:
            assert self.cfg.global_text, "a global condition given to a DiT without global_cond_ids"
            g = self.to_global_embed(pooled.to(self.to_global_embed[0].weight.dtype)).to(x.dtype)  # (N, E)
            n = g.shape[0]
            t_embed = t_embed + g if n == t_embed.shape[0] else torch.cat((t_embed[:n] + g, t_embed[n:]))
        x = self.preprocess_conv(x) + x
        added = every = None
        if sync is not None:
            assert self.cfg.sync_dim, "time-aligned features given to a DiT without sync_proj"
            added = sync.to(x.dtype) @ self.sync_proj.T  # (N, T, E)
        if known is not None:
            assert self.cfg.inpaint_channels, "inpainting channels given to a DiT without inpaint_proj"
            assert known.shape[::2] == x.shape[::2], f"{known.shape=} {x.shape=}"
            every = known.transpose(1, 2).to(x.dtype) @ self.inpaint_proj.T  # (B, T, E)
        out = self.transformer(x.transpose(1, 2), t_embed[:, None], kvs, added, every)  # (B, 1 + T, io)
        out = out.transpose(1, 2)[:, :, 1:]
        return self.postprocess_conv(out) + out

    def guided(self, x: torch.Tensor, t: torch.Tensor, c: Conditions, cfg_scale: float) -> torch.Tensor:
        """Classifier-free guidance in one batched pass: [x | x], the second half unconditional; both
        halves read the inpainting input (as stable-audio-tools' CFG batch does)."""
        if cfg_scale == 1.0:
            return self.forward_once(x, t, c.kvs, c.sync, c.pooled, c.known)
        both = None if c.known is None else torch.cat((c.known, c.known))
        cond_out, uncond_out = self.forward_once(
            torch.cat((x, x)), torch.cat((t, t)), c.kvs, c.sync, c.pooled, both
        ).chunk(2)
        return uncond_out + (cond_out - uncond_out) * cfg_scale

    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        cond: torch.Tensor,
        cfg_scale: float = 1.0,
        sync: torch.Tensor | None = None,
        pooled: torch.Tensor | None = None,
        known: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x (B, io, T), t (B,), cond (B, S, cond_dim) raw tokens; the CFG null condition is all zeros
        (and no ``sync`` or ``pooled``); ``known`` (B, 1 + io, T) the inpainting input (training)."""
        if known is None:
            return self.guided(x, t, Conditions(self.condition(cond), sync, pooled), cfg_scale)
        assert cfg_scale == 1.0, "an explicit inpainting input is a training pass (no CFG batch)"
        return self.forward_once(x, t, self.condition(cond), sync, pooled, known)


class DiTWrapper(nn.Module):
    """Holds the DiT under ``model`` so keys read ``model.model.*`` as in the official checkpoint."""

    def __init__(self, cfg: DiTConfig) -> None:
        super().__init__()
        self.model = DiffusionTransformer(cfg)
