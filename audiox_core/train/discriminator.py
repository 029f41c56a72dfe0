"""The autoencoder's adversary, as DAC and stable-audio-tools train theirs: multi-resolution STFT discriminators
on band-pooled log magnitudes, least-squares GAN losses and feature matching (HiFi-GAN)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from audiox_core.train.spectral import log_bands


class SpectrogramDiscriminator(nn.Module):
    """One resolution: log band magnitudes (B, 1, bands, frames) → patch logits and features; pooled into bands
    to fit a CPU, it judges the envelope over time and frequency, where onsets live, not each bin."""

    def __init__(self, n_fft: int, bands: int, channels: int) -> None:
        super().__init__()
        self.n_fft = n_fft
        self.register_buffer("bands", log_bands(n_fft, bands), persistent=False)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        c = channels
        self.convs = nn.ModuleList(
            [
                nn.Conv2d(1, c, (3, 9), padding=(1, 4)),
                nn.Conv2d(c, c, (3, 9), stride=(2, 1), dilation=(1, 1), padding=(1, 4)),
                nn.Conv2d(c, c, (3, 9), stride=(2, 1), dilation=(1, 2), padding=(1, 8)),
                nn.Conv2d(c, c, (3, 9), stride=(2, 1), dilation=(1, 4), padding=(1, 16)),
                nn.Conv2d(c, c, (3, 3), padding=(1, 1)),
            ]
        )
        self.out = nn.Conv2d(c, 1, (3, 3), padding=(1, 1))

    def spectrogram(self, audio: torch.Tensor) -> torch.Tensor:  # (B, C, L) -> (B, 1, bands, frames)
        x = audio.float().mean(dim=1)  # the channels' mix: onsets and beds are what it judges, not the image
        spec = torch.stft(x, self.n_fft, self.n_fft // 4, window=self.window, return_complex=True).abs()
        return torch.log1p(100.0 * (self.bands @ spec))[:, None]

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = self.spectrogram(audio)
        features = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.1)
            features.append(x)
        return self.out(x), features


class MultiResolutionDiscriminator(nn.Module):
    def __init__(self, fft_sizes: tuple[int, ...] = (256, 512, 1024), bands: int = 32, channels: int = 12) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList(SpectrogramDiscriminator(n, bands, channels) for n in fft_sizes)

    def forward(self, audio: torch.Tensor) -> list[tuple[torch.Tensor, list[torch.Tensor]]]:
        return [d(audio) for d in self.discriminators]


def discriminator_loss(real: list, fake: list) -> torch.Tensor:
    """Least-squares GAN: real patches towards 1, reconstructions towards 0 (fake computed on detached audio)."""
    return sum(((r - 1) ** 2).mean() + (f**2).mean() for (r, _), (f, _) in zip(real, fake)) / len(real)


def generator_losses(real: list, fake: list) -> tuple[torch.Tensor, torch.Tensor]:
    """(adversarial, feature matching): reconstructions towards 1, and the L1 distance of every
    discriminator layer's features to the real sound's, relative to their size."""
    adversarial = sum(((f - 1) ** 2).mean() for f, _ in fake) / len(fake)
    matching = fake[0][0].new_zeros(())
    count = 0
    for (_, real_feats), (_, fake_feats) in zip(real, fake):
        for r, f in zip(real_feats, fake_feats):
            r = r.detach()
            matching = matching + (f - r).abs().mean() / r.abs().mean().clamp_min(1e-5)
            count += 1
    return adversarial, matching / count
