"""Measures of generated sound against its picture: onsets, events matched within ±80 ms, splices, text control."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torchaudio

from audiox_core.train.examples import Example, decode_audio
from audiox_core.train.spectral import compressed_spectrogram, onset_envelope

SHARP_KINDS = frozenset({"impact", "door", "footstep"})  # events whose sound starts at the visual event
TOLERANCE_S = 0.08
# Unmatched onsets this soon after a matched one belong to the matched sound (a door's latch after its slam,
# a toe after its heel: 90–260 ms later on the real held-out sounds).
TAIL_S = 0.3


def _mono(audio: np.ndarray | torch.Tensor) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(audio, dtype=np.float32))
    return x.mean(dim=0) if x.ndim == 2 else x


def onset_strength(audio: np.ndarray | torch.Tensor, rate: int, hop_s: float = 0.01) -> tuple[np.ndarray, float]:
    """Half-wave rectified spectral flux of the log-magnitude STFT (``spectral.onset_envelope``), one
    value per hop; the hop in s."""
    hop = max(1, int(round(hop_s * rate)))
    with torch.no_grad():
        flux = onset_envelope(_mono(audio), rate, hop_s).numpy().copy()
    flux[:3] = 0.0  # the first frames compare against the reflected padding, not earlier sound
    return flux, hop / rate


def edge_flux_ratio(
    audio: np.ndarray | torch.Tensor, reference: np.ndarray | torch.Tensor, edges_s: Sequence[float], rate: int
) -> list[float]:
    """Per edge time: the largest full spectral flux (mean |Δ log1p magnitude| per 10 ms hop) of
    ``audio`` within ±20 ms of it, over the median flux of ``reference`` (the original sound)."""

    def flux(x: np.ndarray | torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            log = compressed_spectrogram(_mono(x), rate)
        return (log[..., 1:] - log[..., :-1]).abs().mean(dim=-2).numpy()

    ours, median = flux(audio), float(np.median(flux(reference)[3:]))
    out = []
    for t in edges_s:
        i = int(round(t / 0.01))
        near = ours[max(0, i - 3) : i + 3]
        out.append(float(near.max()) / max(median, 1e-9) if near.size else float("nan"))
    return out


def audio_onsets(
    audio: np.ndarray | torch.Tensor, rate: int, *, min_gap_s: float = 0.1, sensitivity: float = 1.5
) -> list[float]:
    """Onset times in seconds: local maxima of the onset strength above median + ``sensitivity`` ×
    the median absolute deviation of a 1 s neighbourhood, and above a floor tied to the loudest onset
    (so the quiet bed's texture gives none), at least ``min_gap_s`` apart (the stronger wins)."""
    flux, hop_s = onset_strength(audio, rate)
    if flux.size < 3 or flux.max() <= 0:
        return []
    half = max(1, int(round(0.5 / hop_s)))
    floor = 0.1 * flux.max()
    peaks: list[tuple[float, int]] = []
    for i in range(1, flux.size - 1):
        if flux[i] < flux[i - 1] or flux[i] < flux[i + 1] or flux[i] < floor:
            continue
        local = flux[max(0, i - half) : i + half + 1]
        median = float(np.median(local))
        mad = float(np.median(np.abs(local - median)))
        if flux[i] > median + sensitivity * max(mad, 1e-6) * 3:
            peaks.append((float(flux[i]), i))
    gap = int(round(min_gap_s / hop_s))
    chosen: list[int] = []
    for _, i in sorted(peaks, reverse=True):
        if all(abs(i - j) >= gap for j in chosen):
            chosen.append(i)
    return sorted(i * hop_s for i in chosen)


@dataclass(frozen=True)
class Match:
    events: int
    onsets: int  # the onsets that count: every onset but the tails of matched sounds
    hits: int  # events with an onset within the tolerance (each onset serves one event)

    @property
    def hit_rate(self) -> float:
        return self.hits / self.events if self.events else 0.0

    @property
    def precision(self) -> float:
        return self.hits / self.onsets if self.onsets else 0.0


def match_events(
    events: Sequence[float], onsets: Sequence[float], tolerance_s: float = TOLERANCE_S, tail_s: float = TAIL_S
) -> Match:
    """Greedy one-to-one matching, closest pairs first; an unmatched onset within ``tail_s`` after a
    matched one is that sound's tail and is not counted (precision is per sound, not per transient)."""
    pairs = sorted(
        (abs(e - o), i, j) for i, e in enumerate(events) for j, o in enumerate(onsets) if abs(e - o) <= tolerance_s
    )
    used_e: set[int] = set()
    used_o: set[int] = set()
    for _, i, j in pairs:
        if i not in used_e and j not in used_o:
            used_e.add(i)
            used_o.add(j)
    matched = [onsets[j] for j in used_o]
    tails = sum(1 for j, o in enumerate(onsets) if j not in used_o and any(0 < o - m <= tail_s for m in matched))
    return Match(len(events), len(onsets) - tails, len(used_e))


def combine(matches: Sequence[Match]) -> Match:
    return Match(sum(m.events for m in matches), sum(m.onsets for m in matches), sum(m.hits for m in matches))


class LogMelCentroids:
    """Nearest centroid (standardised features) on the per-band mean and std of a log-mel spectrogram."""

    def __init__(self, rate: int, n_mels: int = 40) -> None:
        self.rate = rate
        self.mel = torchaudio.transforms.MelSpectrogram(rate, n_fft=1024, hop_length=256, n_mels=n_mels)
        self.centroids: dict[str, np.ndarray] = {}
        self.scale = np.ones(2 * n_mels)
        self.offset = np.zeros(2 * n_mels)

    def features(self, audio: np.ndarray | torch.Tensor) -> np.ndarray:
        log = torch.log(self.mel(_mono(audio)) + 1e-6)  # (mels, frames)
        return torch.cat([log.mean(dim=1), log.std(dim=1)]).numpy()

    def fit(self, examples: Mapping[str, Sequence[np.ndarray | torch.Tensor]]) -> LogMelCentroids:
        feats = {c: np.stack([self.features(a) for a in sounds]) for c, sounds in examples.items() if sounds}
        everything = np.concatenate(list(feats.values()))
        self.offset, self.scale = everything.mean(axis=0), everything.std(axis=0) + 1e-6
        self.centroids = {c: ((f - self.offset) / self.scale).mean(axis=0) for c, f in feats.items()}
        return self

    def predict(self, audio: np.ndarray | torch.Tensor) -> str:
        f = (self.features(audio) - self.offset) / self.scale
        return min(self.centroids, key=lambda c: float(np.sum((f - self.centroids[c]) ** 2)))


# The autoencoder's ceiling: what the sync measures can reach at most through it (issue targets).
CEILING_HIT, CEILING_PRECISION, CEILING_CLASS_HIT = 0.95, 0.85, 0.85


@dataclass(frozen=True)
class Ceiling:
    """The sync measures on real sounds encoded and decoded again by an autoencoder (no DiT)."""

    overall: Match
    by_class: dict[str, Match]

    @property
    def short_of(self) -> list[str]:
        """The targets it misses, in words (empty when it meets them all)."""
        misses = []
        if self.overall.hit_rate < CEILING_HIT:
            misses.append(f"hit rate {self.overall.hit_rate:.3f} < {CEILING_HIT}")
        if self.overall.precision < CEILING_PRECISION:
            misses.append(f"precision {self.overall.precision:.3f} < {CEILING_PRECISION}")
        misses += [
            f"{c} hit rate {m.hit_rate:.3f} < {CEILING_CLASS_HIT}"
            for c, m in sorted(self.by_class.items())
            if m.hit_rate < CEILING_CLASS_HIT
        ]
        return misses

    def line(self) -> str:
        classes = " ".join(f"{c}={m.hit_rate:.3f}" for c, m in sorted(self.by_class.items()))
        return (
            f"vae_ceiling hit_rate={self.overall.hit_rate:.3f} precision={self.overall.precision:.3f} "
            f"({self.overall.events} events, {self.overall.onsets} onsets) per class: {classes}"
        )


@torch.no_grad()
def vae_round_trip(
    pretransform: torch.nn.Module, sounds: Sequence[tuple[str, Sequence[float], np.ndarray]], rate: int
) -> Ceiling:
    """``sounds``: (class, sharp event times, (2, N) audio at ``rate``); each is encoded to its
    posterior mean and decoded, then its onsets matched to the events."""
    by_class: dict[str, list[Match]] = {}
    for cls, events, audio in sounds:
        x = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None]
        device = next(pretransform.parameters()).device
        mean, _ = pretransform.encode_posterior(x.to(device))
        decoded = pretransform.decode(mean)[0, :, : x.shape[-1]].float().cpu()
        by_class.setdefault(cls, []).append(match_events(events, audio_onsets(decoded, rate)))
    every = [m for v in by_class.values() for m in v]
    return Ceiling(combine(every), {c: combine(v) for c, v in by_class.items()})


def sharp_sounds(examples: Sequence[Example], rate: int) -> list[tuple[str, list[float], np.ndarray]]:
    """(class, sharp event times, audio at ``rate``) of the examples that have sharp events."""
    out = []
    for e in examples:
        events = [ev.t for ev in e.events if ev.kind in SHARP_KINDS]
        if events:
            out.append((e.sound_class or "unknown", events, decode_audio(e.audio, rate)))
    return out
