"""Multi-resolution STFT loss for the autoencoder (Yamamoto et al. 2020, as used for Oobleck VAEs):
spectral convergence plus L1 of log magnitudes, summed over several FFT sizes, so both the
transients (short windows) and the tonal detail (long windows) are reconstructed."""

from __future__ import annotations

import torch


def multi_resolution_stft_loss(
    pred: torch.Tensor, target: torch.Tensor, *, fft_sizes: tuple[int, ...] = (2048, 1024, 512, 256, 128)
) -> torch.Tensor:
    """pred, target (B, C, L) → scalar; zero when they are equal."""
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
