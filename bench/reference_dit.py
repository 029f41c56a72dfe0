"""A straightforward implementation of one guided DiT evaluation, for side-by-side timing.

Same weights and maths as audiox_core.model.dit, written the plain way the official code runs
it: classifier-free guidance as a doubled batch with an all-zero condition that goes through
every layer, the condition re-embedded and re-projected to keys/values on every call, attention
as explicit softmax(QKᵀ/√d)·V with the grouped key/value heads repeated, rotary tables rebuilt per
layer, every linear layer as nn.Linear computes it (ours may route them through oneDNN). Used only by bench/model_bench.py (and checked there to agree with ours).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from audiox_core.model.dit import DiffusionTransformer


def _linear(layer: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """A linear layer as nn.Linear computes it (BLAS), whatever path the module itself was given."""
    return F.linear(x, layer.weight, layer.bias)


def _attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), dim=-1)
    return weights @ v


def _heads(x: torch.Tensor, h: int) -> torch.Tensor:
    b, t, _ = x.shape
    return x.reshape(b, t, h, -1).permute(0, 2, 1, 3)


def _rotate(t: torch.Tensor, n: int, rot: int, inv_freq: torch.Tensor) -> torch.Tensor:
    freqs = torch.outer(torch.arange(n, device=t.device, dtype=torch.float32), inv_freq.float())
    freqs = torch.cat((freqs, freqs), dim=-1)
    head, rest = t[..., :rot].float(), t[..., rot:]
    x1, x2 = head.chunk(2, dim=-1)
    head = head * freqs.cos() + torch.cat((-x2, x1), dim=-1) * freqs.sin()
    return torch.cat((head.to(t.dtype), rest), dim=-1)


def reference_guided(
    dit: DiffusionTransformer, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor, cfg_scale: float
) -> torch.Tensor:
    cfg = dit.cfg
    x2, t2 = torch.cat((x, x)), torch.cat((t, t))
    context = dit.to_cond_embed(torch.cat((cond, torch.zeros_like(cond))))
    f = 2 * math.pi * t2[:, None].to(dit.timestep_features.weight.dtype) @ dit.timestep_features.weight.T
    t_embed = dit.to_timestep_embed(torch.cat((f.cos(), f.sin()), dim=-1)).to(x.dtype)
    h = (dit.preprocess_conv(x2) + x2).transpose(1, 2)
    h = torch.cat((t_embed[:, None], dit.transformer.project_in(h)), dim=1)
    n = h.shape[1]
    inv_freq = dit.transformer.rotary_pos_emb.inv_freq
    for layer in dit.transformer.layers:
        a = layer.pre_norm(h)
        q, k, v = (_heads(p, cfg.num_heads) for p in _linear(layer.self_attn.to_qkv, a).chunk(3, dim=-1))
        q, k = _rotate(q, n, cfg.rotary_dim, inv_freq), _rotate(k, n, cfg.rotary_dim, inv_freq)
        h = h + _linear(layer.self_attn.to_out, _attention(q, k, v).permute(0, 2, 1, 3).reshape(h.shape))
        c = layer.cross_attend_norm(h)
        q = _heads(_linear(layer.cross_attn.to_q, c), cfg.num_heads)
        k, v = (_heads(p, cfg.kv_heads) for p in _linear(layer.cross_attn.to_kv, context).chunk(2, dim=-1))
        group = cfg.num_heads // cfg.kv_heads
        k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
        h = h + _linear(layer.cross_attn.to_out, _attention(q, k, v).permute(0, 2, 1, 3).reshape(h.shape))
        g, gate = _linear(layer.ff.ff[0].proj, layer.ff_norm(h)).chunk(2, dim=-1)
        h = h + _linear(layer.ff.ff[2], g * F.silu(gate))
    out = dit.transformer.project_out(h).transpose(1, 2)[:, :, 1:]
    out = dit.postprocess_conv(out) + out
    cond_out, uncond_out = out.chunk(2)
    return uncond_out + (cond_out - uncond_out) * cfg_scale
