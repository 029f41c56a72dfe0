"""Synthetic weights for parity tests and benches: recipe ``audiox-synth-v1`` (shared/audiox/parity/WEIGHTS.md)."""

from __future__ import annotations

import zlib
from collections.abc import Iterator

import torch

from audiox_core.model.audiox import AudioX
from audiox_core.model.config import AudioXConfig
from audiox_core.model.dit import RotaryEmbedding


def key_seed(seed: int, key: str) -> int:
    """The seed of the CPU generator that draws parameter ``key``: (seed · 1000003 + CRC32(key)) mod 2^63."""
    return (seed * 1_000_003 + zlib.crc32(key.encode("utf-8"))) % 2**63


def synthetic_parameter(key: str, shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """One parameter by the recipe's rules R1–R6 (plain float32 torch expressions, bit-exact)."""
    g = torch.Generator(device="cpu")
    g.manual_seed(key_seed(seed, key))
    r = torch.randn(shape, generator=g, dtype=torch.float32)
    leaf, n = key.rsplit(".", 1)[-1], len(shape)
    if leaf == "weight_g":
        return 0.5 + 0.5 * r.abs()
    if n >= 2 and leaf in ("weight", "weight_v", "in_proj_weight"):
        fan = 1
        for d in shape[1:]:
            fan *= d
        return r / (max(1, fan) ** 0.5)
    if leaf in ("alpha", "beta"):
        return 0.1 * r
    if leaf == "bias":
        return 0.02 * r
    if leaf == "gamma" or (leaf == "weight" and n == 1):
        return 1.0 + 0.1 * r
    return r if "timestep_features" in key else 0.5 * r


def _buffer_value(key: str, shape: tuple[int, ...], cfg: AudioXConfig) -> torch.Tensor:
    """A buffer keeps its constructor value."""
    if key.endswith("rotary_pos_emb.inv_freq"):
        return RotaryEmbedding(cfg.dit.rotary_dim).inv_freq
    assert key.endswith(".beta"), f"unknown buffer {key}"
    return torch.zeros(shape)


def synthetic_tensors(cfg: AudioXConfig, seed: int) -> Iterator[tuple[str, torch.Tensor]]:
    """(key, tensor) in state-dict order, one at a time (the full model is 6 GB in float32)."""
    with torch.device("meta"):
        network = AudioX(cfg)
    buffers = {name for name, _ in network.named_buffers()}
    for key, meta in network.state_dict().items():
        shape = tuple(meta.shape)
        yield key, _buffer_value(key, shape, cfg) if key in buffers else synthetic_parameter(key, shape, seed)


def synthetic_state_dict(cfg: AudioXConfig, seed: int) -> dict[str, torch.Tensor]:
    return dict(synthetic_tensors(cfg, seed))
