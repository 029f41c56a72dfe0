"""The soundtrack mix and master, streamed block by block so a two-hour reel fits in memory.

Stems: Foley and music from their placed cues (sample-exact, with fades and crossfades), ducked
under the dialogue; the dialogue is the reel's own audio. pydub sums the stems with their gains on
a 32-bit bus (24-bit full scale, 8 bits of headroom: its 16-bit overlay would clip). Mastering:
pass 1 measures the integrated loudness of the summed stems; pass 2 applies one gain to reach the
preset, writes the stems at that level (so they sum to the pre-limiter mix) plus music-and-effects,
and writes the mix through the true-peak limiter, measuring every output on the way.
"""

from __future__ import annotations

import itertools
import math
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from audiox_core.media.audio import Wav24Writer, from_segment, read_wav, to_segment
from audiox_core.media.ducking import (
    DuckingSettings,
    ducking_curve,
    frame_levels,
    gain_for_samples,
)
from audiox_core.media.limiter import LimiterSettings, limiter_gain
from audiox_core.media.loudness import LoudnessMeter, preset
from audiox_core.media.timeline import DIALOGUE, FOLEY, MUSIC, Placement, envelope

M_AND_E = "m_and_e"
Progress = Callable[[int, int], None]


class AudioSource(Protocol):
    """Stereo audio on the mix timeline, read by sample ranges (zeros outside the source)."""

    def read(self, start: int, n: int) -> np.ndarray: ...


class CueTrack:
    """The cues of one kind laid on the timeline; reads sum the cues overlapping a range."""

    def __init__(self, cues: Sequence[tuple[Placement, Path]], cache: int = 8) -> None:
        self.cues = sorted(cues, key=lambda c: c[0].start)
        self.cache: OrderedDict[tuple[Placement, Path], np.ndarray] = OrderedDict()
        self.cache_size = cache

    def _audio(self, placement: Placement, path: Path) -> np.ndarray:
        """The cue fitted to its placement with its fades and gain (a few recent ones cached)."""
        key = (placement, path)
        if key not in self.cache:
            audio, _ = read_wav(path)
            fitted = np.zeros((2, placement.length), np.float32)
            fitted[:, : min(audio.shape[1], placement.length)] = audio[:2, : placement.length]
            self.cache[key] = fitted * envelope(placement)
            if len(self.cache) > self.cache_size:
                self.cache.popitem(last=False)
        self.cache.move_to_end(key)
        return self.cache[key]

    def read(self, start: int, n: int) -> np.ndarray:
        out = np.zeros((2, n), np.float32)
        for placement, path in self.cues:
            if placement.start >= start + n:
                break
            a, b = max(start, placement.start), min(start + n, placement.start + placement.length)
            if b > a:
                out[:, a - start : b - start] += self._audio(placement, path)[:, a - placement.start : b - placement.start]
        return out


@dataclass(frozen=True)
class MixSettings:
    rate: int = 48_000
    stem_gain_db: dict[str, float] = field(default_factory=lambda: {DIALOGUE: 0.0, FOLEY: -6.0, MUSIC: -10.0})
    ducking: DuckingSettings = field(default_factory=DuckingSettings)
    preset: str = "ebu-r128"
    block_s: float = 30.0
    lookahead_ms: float = 5.0
    release_ms: float = 50.0

    @property
    def limiter(self) -> LimiterSettings:
        return LimiterSettings(preset(self.preset).true_peak_dbtp, self.lookahead_ms, self.release_ms, self.rate)


@dataclass
class MasterReport:
    preset: str
    target_lufs: float
    ceiling_dbtp: float
    normalization_gain_db: float
    stems_offset_db: float
    max_gain_reduction_db: float
    limited_seconds: float
    outputs: dict[str, dict[str, float]]
    samples: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def level_cue(audio: np.ndarray, peak_dbfs: float) -> np.ndarray:
    """Scale a generated cue so its peak sits at ``peak_dbfs`` (silence stays silence)."""
    peak = float(np.abs(audio).max(initial=0.0))
    return audio if peak == 0 else (audio * (10 ** (peak_dbfs / 20) / peak)).astype(np.float32)


class Mixer:
    """Stems and bus of one reel, by blocks: ``stems(start, n)`` gives every stem after its gain."""

    def __init__(self, cues: Sequence[tuple[Placement, Path]], dialogue: AudioSource | None, total: int, settings: MixSettings) -> None:
        self.settings, self.total, self.dialogue = settings, total, dialogue
        self.tracks = {kind: CueTrack([c for c in cues if c[0].kind == kind]) for kind in (FOLEY, MUSIC)}
        self.frame = round(0.01 * settings.rate)
        self.duck = self._ducking_curve() if dialogue is not None and settings.ducking.enabled else np.zeros(0)

    def _ducking_curve(self) -> np.ndarray:
        block = self.block
        levels = [frame_levels(self.dialogue.read(s, min(block, self.total - s)), self.frame) for s in range(0, self.total, block)]
        return ducking_curve(np.concatenate(levels), self.settings.ducking)

    @property
    def block(self) -> int:
        return round(self.settings.block_s * self.settings.rate) // self.frame * self.frame

    def stems(self, start: int, n: int) -> dict[str, np.ndarray]:
        """Every stem for samples [start, start + n): cues placed, ducked, at their stem gain."""
        gains = self.settings.stem_gain_db
        duck = gain_for_samples(self.duck, start, n, self.frame) if self.dialogue is not None else None
        stems = {}
        for kind, track in self.tracks.items():
            scale = np.float32(10 ** (gains.get(kind, 0.0) / 20))
            stems[kind] = track.read(start, n) * (duck * scale if duck is not None else scale)
        if self.dialogue is not None:
            stems[DIALOGUE] = self.dialogue.read(start, n) * np.float32(10 ** (gains.get(DIALOGUE, 0.0) / 20))
        return stems

    def bus(self, stems: dict[str, np.ndarray]) -> np.ndarray:
        """The stems summed by pydub on the 32-bit bus (its overlay saturates only 48 dB above full scale)."""
        segments = [to_segment(audio, self.settings.rate) for audio in stems.values()]
        total = segments[0]
        for segment in segments[1:]:
            total = total.overlay(segment)
        return from_segment(total)

    def blocks(self) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        for start in range(0, self.total, self.block):
            yield start, self.stems(start, min(self.block, self.total - start))


def _db(gain: float) -> float:
    return 20 * math.log10(gain) if gain > 0 else -math.inf


def master(
    cues: Sequence[tuple[Placement, Path]],
    dialogue: AudioSource | None,
    total: int,
    out_dir: Path,
    settings: MixSettings = MixSettings(),
    *,
    progress: Progress | None = None,
    on_mix_block: Callable[[int, np.ndarray], None] | None = None,
) -> MasterReport:
    """Write mix.wav and stems/{dialogue,foley,music,m_and_e}.wav (48 kHz, 24-bit) under ``out_dir``."""
    target = preset(settings.preset)
    mixer = Mixer(cues, dialogue, total, settings)
    pre = LoudnessMeter(2, settings.rate, true_peak=False)
    peaks: dict[str, float] = {}
    for start, stems in mixer.blocks():
        pre.add(sum(stems.values()))  # a measurement: the float sum equals the bus to 24-bit precision
        for kind, audio in {**stems, M_AND_E: stems[FOLEY] + stems[MUSIC]}.items():
            peaks[kind] = max(peaks.get(kind, 0.0), float(np.abs(audio).max(initial=0.0)))
        if progress:
            progress(start + stems[FOLEY].shape[1], 2 * total)
    measured = pre.integrated()
    gain_db = target.integrated_lufs - measured if math.isfinite(measured) else 0.0
    # The limiter pulls loudness down when it works hard: correct the gain and write again, the
    # correction scaled by the measured slope of loudness against gain (secant steps; at −23 LUFS
    # the first pass is almost always within tolerance).
    tried: list[tuple[float, float]] = []
    while True:
        report = _write(mixer, out_dir, settings, gain_db, peaks, progress, on_mix_block)
        loudness = report.outputs["mix"]["integrated_lufs"]
        error = target.integrated_lufs - loudness
        if not math.isfinite(error) or abs(error) <= 0.2 or len(tried) == 4:
            return report
        tried.append((gain_db, loudness))
        slope = 1.0
        if len(tried) > 1 and tried[-1][0] != tried[-2][0]:
            slope = min(1.0, max(0.1, (tried[-1][1] - tried[-2][1]) / (tried[-1][0] - tried[-2][0])))
        gain_db += error / slope


def _write(mixer: Mixer, out_dir: Path, settings: MixSettings, gain_db: float, peaks: dict[str, float], progress, on_mix_block) -> MasterReport:
    target, limiter = preset(settings.preset), settings.limiter
    g = 10 ** (gain_db / 20)
    # Stems at the normalised level sum to the pre-limiter mix; if that would clip one of them,
    # all stems sit lower by one common offset (reported) and still sum to it scaled by that.
    offset = min(1.0, 0.999 / (max(peaks.values(), default=0.0) * g)) if peaks and max(peaks.values()) > 0 else 1.0
    names = [k for k in (DIALOGUE, FOLEY, MUSIC) if k in peaks] + [M_AND_E]
    (out_dir / "stems").mkdir(parents=True, exist_ok=True)
    writers = {k: Wav24Writer(out_dir / "stems" / f"{k}.wav", 2, settings.rate) for k in names}
    writers["mix"] = Wav24Writer(out_dir / "mix.wav", 2, settings.rate)
    meters = {k: LoudnessMeter(2, settings.rate) for k in writers}
    min_gain, limited = 1.0, 0
    previous = np.zeros((2, 0), np.float32)
    pending: tuple[int, np.ndarray] | None = None
    # The loudness meters (K-weighting, true peak) release the GIL: they run beside the writing.
    with ThreadPoolExecutor(2) as pool:
        try:
            for start, stems in itertools.chain(mixer.blocks(), [(mixer.total, None)]):
                outputs: dict[str, np.ndarray] = {}
                bus = mixer.bus(stems) * np.float32(g) if stems is not None else np.zeros((2, 0), np.float32)
                if stems is not None:
                    scale = np.float32(g * offset)
                    outputs = {k: a * scale for k, a in {**stems, M_AND_E: stems[FOLEY] + stems[MUSIC]}.items()}
                if pending is not None:
                    p_start, p_bus = pending
                    gain = limiter_gain(p_bus, previous[:, -limiter.context :], bus[:, : limiter.context], limiter)
                    outputs["mix"] = p_bus * gain
                    min_gain, limited = min(min_gain, float(gain.min(initial=1.0))), limited + int((gain < 0.9999).sum())
                    if on_mix_block:
                        on_mix_block(p_start, outputs["mix"])
                    previous = p_bus
                measured = [pool.submit(meters[k].add, a) for k, a in outputs.items()]
                for k, a in outputs.items():
                    writers[k].write(a)
                for future in measured:
                    future.result()
                pending = (start, bus) if stems is not None else None
                if progress and stems is not None:
                    progress(mixer.total + start + bus.shape[1], 2 * mixer.total)
        except BaseException:
            for w in writers.values():
                w.abort()
            raise
    for w in writers.values():
        w.close()
    return MasterReport(
        preset=target.name, target_lufs=target.integrated_lufs, ceiling_dbtp=target.true_peak_dbtp,
        normalization_gain_db=round(gain_db, 2), stems_offset_db=round(_db(offset), 2),
        max_gain_reduction_db=round(max(0.0, -_db(min_gain)), 2), limited_seconds=round(limited / settings.rate, 3),
        outputs={k: m.report() for k, m in meters.items()}, samples=mixer.total,
    )
