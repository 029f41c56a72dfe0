"""Oobleck VAE (the AudioX pretransform): 44.1 kHz stereo ⇄ latent frames at hop 2048, in the official checkpoint's
layout (legacy weight norm ``weight_g``/``weight_v``, SnakeBeta with log-scale ``alpha``/``beta``)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from audiox_core.model.autograd import tracked
from audiox_core.model.config import AutoencoderConfig


class WNConv1d(nn.Module):
    """Conv1d with legacy weight norm: weight = g · v / ‖v‖ (norm over all but dim 0)."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel_size: int,
        *,
        stride: int = 1,
        dilation: int = 1,
        padding: int = 0,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.stride, self.dilation, self.padding = stride, dilation, padding
        # Registration order bias, g, v matches the checkpoint's key order (legacy weight_norm).
        self.bias = nn.Parameter(torch.zeros(c_out)) if bias else None
        self.weight_g = nn.Parameter(torch.ones(c_out, 1, 1))
        self.weight_v = nn.Parameter(torch.randn(c_out, c_in, kernel_size) / math.sqrt(c_in * kernel_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = torch._weight_norm(self.weight_v, self.weight_g, 0)
        return F.conv1d(x, weight, self.bias, self.stride, self.padding, self.dilation)


class WNConvTranspose1d(nn.Module):
    """ConvTranspose1d with legacy weight norm; weight is (C_in, C_out, k), so ``weight_g`` is (C_in, 1, 1)."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, *, stride: int, padding: int) -> None:
        super().__init__()
        self.stride, self.padding = stride, padding
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.weight_g = nn.Parameter(torch.ones(c_in, 1, 1))
        self.weight_v = nn.Parameter(torch.randn(c_in, c_out, kernel_size) / math.sqrt(c_in * kernel_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = torch._weight_norm(self.weight_v, self.weight_g, 0)
        return F.conv_transpose1d(x, weight, self.bias, self.stride, self.padding)


class SnakeBeta(nn.Module):
    """x + 1/(β + 1e-9) · sin²(α·x), α and β per channel, stored as logarithms."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.zeros(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T)
        alpha = self.alpha.exp()[None, :, None]
        beta = self.beta.exp()[None, :, None]
        if tracked(x, self.alpha):
            return x + (1.0 / (beta + 1e-9)) * torch.sin(x * alpha).pow(2)
        # Inference: the same operations in the same order, in place in one new tensor (bit-identical,
        # a third of the time on the CPU: these activations are large and the ops memory-bound).
        y = x * alpha
        y.sin_().square_().mul_(1.0 / (beta + 1e-9))
        return y.add_(x)


class ResidualUnit(nn.Module):
    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            SnakeBeta(channels),
            WNConv1d(channels, channels, 7, dilation=dilation, padding=3 * dilation),
            SnakeBeta(channels),
            WNConv1d(channels, channels, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.layers(x)
        return x + y if tracked(x, y) else y.add_(x)  # the sum is the same either way round


def _one_by_one(layers: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``layers`` over each batch item in turn outside training (as the official ``iterate_batch``
    does): on the CPU a batch of these long sequences runs slower than its items one after another."""
    if x.shape[0] == 1 or tracked(x, *layers.parameters()):
        return layers(x)
    return torch.cat([layers(x[i : i + 1]) for i in range(x.shape[0])])


class EncoderBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            ResidualUnit(c_in, 1),
            ResidualUnit(c_in, 3),
            ResidualUnit(c_in, 9),
            SnakeBeta(c_in),
            WNConv1d(c_in, c_out, 2 * stride, stride=stride, padding=math.ceil(stride / 2)),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class DecoderBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            SnakeBeta(c_in),
            WNConvTranspose1d(c_in, c_out, 2 * stride, stride=stride, padding=math.ceil(stride / 2)),
            ResidualUnit(c_out, 1),
            ResidualUnit(c_out, 3),
            ResidualUnit(c_out, 9),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class OobleckEncoder(nn.Module):
    def __init__(self, cfg: AutoencoderConfig) -> None:
        super().__init__()
        widths = [cfg.channels * m for m in (1, *cfg.c_mults)]
        layers: list[nn.Module] = [WNConv1d(cfg.io_channels, widths[0], 7, padding=3)]
        layers += [EncoderBlock(widths[i], widths[i + 1], s) for i, s in enumerate(cfg.strides)]
        layers += [SnakeBeta(widths[-1]), WNConv1d(widths[-1], 2 * cfg.latent_dim, 3, padding=1)]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, io, L) -> (B, 2·latent, L/hop)
        return _one_by_one(self.layers, x)


class OobleckDecoder(nn.Module):
    def __init__(self, cfg: AutoencoderConfig) -> None:
        super().__init__()
        widths = [cfg.channels * m for m in (1, *cfg.c_mults)]
        layers: list[nn.Module] = [WNConv1d(cfg.latent_dim, widths[-1], 7, padding=3)]
        layers += [DecoderBlock(widths[i + 1], widths[i], s) for i, s in reversed(list(enumerate(cfg.strides)))]
        layers += [SnakeBeta(widths[0]), WNConv1d(widths[0], cfg.io_channels, 7, padding=3, bias=False)]
        layers += [nn.Tanh() if cfg.final_tanh else nn.Identity()]
        self.layers = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # (B, latent, N) -> (B, io, N·hop)
        return _one_by_one(self.layers, z)


class OobleckAutoencoder(nn.Module):
    def __init__(self, cfg: AutoencoderConfig) -> None:
        super().__init__()
        self.encoder = OobleckEncoder(cfg)
        self.decoder = OobleckDecoder(cfg)


class Pretransform(nn.Module):
    """The VAE as the diffusion model sees it: ``encode`` samples the posterior, ``decode`` is plain."""

    def __init__(self, cfg: AutoencoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.model = OobleckAutoencoder(cfg)

    def encode_posterior(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and std of the VAE bottleneck: std = softplus(scale) + 1e-4."""
        raw = self.model.encoder(audio)  # (B, 2·latent, N)
        mean, scale = raw.chunk(2, dim=1)
        return mean, F.softplus(scale) + 1e-4

    def encode(self, audio: torch.Tensor, *, noise: torch.Tensor) -> torch.Tensor:
        """Sample a latent: noise · std + mean (the noise is drawn by the caller for reproducibility)."""
        mean, std = self.encode_posterior(audio)
        assert noise.shape == mean.shape, f"{noise.shape=} {mean.shape=}"
        return noise * std + mean

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        return self.model.decoder(latent)
