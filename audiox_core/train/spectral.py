"""Spectral losses for the autoencoder: multi-resolution STFT (Yamamoto et al. 2020), log bands, onset envelope."""

from __future__ import annotations

import math

import torch


def multi_resolution_stft_loss(
    pred: torch.Tensor, target: torch.Tensor, *, fft_sizes: tuple[int, ...] = (2048, 1024, 512, 256, 128)
) -> torch.Tensor:
    """pred, target (B, C, L) → scalar, zero when they are equal: spectral convergence plus L1 of log magnitudes
    over several FFT sizes, so transients (short windows) and tonal detail (long ones) are both kept."""
    x, y = pred.flatten(0, 1).float(), target.flatten(0, 1).float()  # (B·C, L)
    total = x.new_zeros(())
    for n in fft_sizes:
        window = torch.hann_window(n, device=x.device)
        spec_x = torch.stft(x, n, hop_length=n // 4, window=window, return_complex=True).abs()
        spec_y = torch.stft(y, n, hop_length=n // 4, window=window, return_complex=True).abs()
        convergence = torch.linalg.norm(spec_y - spec_x) / torch.linalg.norm(spec_y).clamp_min(1e-7)
        log_mag = (torch.log(spec_x.clamp_min(1e-5)) - torch.log(spec_y.clamp_min(1e-5))).abs().mean()
        total = total + convergence + log_mag
    return total


def compressed_spectrogram(mono: torch.Tensor, rate: int, hop_s: float = 0.01) -> torch.Tensor:
    """log1p(100·|STFT|) of (…, L) mono audio with ``hop_s`` hops and a 4-hop window: (…, freq, frames)."""
    hop = max(1, int(round(hop_s * rate)))
    n_fft = 4 * hop if 4 * hop % 2 == 0 else 4 * hop + 1
    window = torch.hann_window(n_fft, device=mono.device)
    flat = mono.reshape(-1, mono.shape[-1]).float()
    spec = torch.stft(flat, n_fft, hop, window=window, center=True, return_complex=True).abs()
    return torch.log1p(100.0 * spec).reshape(*mono.shape[:-1], *spec.shape[-2:])


def onset_envelope(mono: torch.Tensor, rate: int, hop_s: float = 0.01) -> torch.Tensor:
    """Half-wave rectified spectral flux, one value per hop (the first is 0): (…, frames)."""
    log = compressed_spectrogram(mono, rate, hop_s)
    flux = torch.relu(log[..., 1:] - log[..., :-1]).mean(dim=-2)
    return torch.cat((torch.zeros_like(flux[..., :1]), flux), dim=-1)


def onset_loss(pred: torch.Tensor, target: torch.Tensor, rate: int) -> torch.Tensor:
    """pred, target (B, C, L): L1 of the compressed spectrograms of the channels' mean plus L1 of their
    onset envelopes relative to the target's mean flux; zero when they are equal. What the sync measure
    counts as an onset is what the autoencoder is taught to keep (and a noisy bed it would count costs)."""
    p, t = pred.float().mean(dim=1), target.float().mean(dim=1)  # (B, L)
    spec_p, spec_t = compressed_spectrogram(p, rate), compressed_spectrogram(t, rate)
    flux_p = torch.relu(spec_p[..., 1:] - spec_p[..., :-1]).mean(dim=-2)
    flux_t = torch.relu(spec_t[..., 1:] - spec_t[..., :-1]).mean(dim=-2)
    spectrum = (spec_p - spec_t).abs().mean()
    envelope = (flux_p - flux_t).abs().mean() / flux_t.mean().clamp_min(1e-4)
    return spectrum + envelope


def log_bands(n_fft: int, bands: int) -> torch.Tensor:
    """(≤ bands, n_fft/2 + 1): averages over log-spaced bin ranges, each at least one bin wide."""
    bins = n_fft // 2 + 1
    edges = torch.unique(torch.round(torch.logspace(0, math.log10(bins), bands + 1)).long().clamp(1, bins))
    matrix = torch.zeros(len(edges), bins)
    matrix[0, : edges[0]] = 1.0
    for i in range(1, len(edges)):
        matrix[i, edges[i - 1] : edges[i]] = 1.0
    matrix = matrix[matrix.sum(dim=1) > 0]
    return matrix / matrix.sum(dim=1, keepdim=True)


def band_loss(
    pred: torch.Tensor, target: torch.Tensor, *, fft_sizes: tuple[int, ...] = (256, 1024), bands: int = 32
) -> torch.Tensor:
    """pred, target (B, C, L): mean L1 of log1p(100·band magnitude) of the channels' mean over
    log-spaced bands at each FFT size; zero when they are equal. Every octave counts alike: a door's
    thump below 200 Hz is 8 of 321 bins, which a plain bin average lets an autoencoder drop."""
    p, t = pred.float().mean(dim=1), target.float().mean(dim=1)
    total = p.new_zeros(())
    for n in fft_sizes:
        window = torch.hann_window(n, device=p.device)
        matrix = log_bands(n, bands).to(p.device)
        spec_p = torch.stft(p, n, n // 4, window=window, return_complex=True).abs()
        spec_t = torch.stft(t, n, n // 4, window=window, return_complex=True).abs()
        total = total + (torch.log1p(100.0 * (matrix @ spec_p)) - torch.log1p(100.0 * (matrix @ spec_t))).abs().mean()
    return total / len(fft_sizes)
