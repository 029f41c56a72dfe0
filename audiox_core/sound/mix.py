"""The soundtrack mix and master in two passes, streamed block by block so a two-hour reel fits in memory."""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from audiox_core.sound.audio import (
    INT24_MAX,
    MIX_RATE,
    Wav24File,
    from_segment,
    read_wav,
    segment_ints,
    to_ints,
    to_segment,
)
from audiox_core.sound.bwf import Bext, Loudness
from audiox_core.sound.ducking import DuckingSettings, ducking_curve, frame_levels, gain_for_samples
from audiox_core.sound.limiter import LimiterSettings, limiter_gain
from audiox_core.sound.loudness import PRESETS, KWeighting, LoudnessMeter, LoudnessReport, Measurement, preset
from audiox_core.sound.parallel import RangePool, report
from audiox_core.sound.pictures import ReviewPictures
from audiox_core.sound.timeline import DIALOGUE, FOLEY, MUSIC, Placement, apply_envelope
from audiox_core.sound.truepeak import TruePeak
from audiox_core.validation import above, at_least, check_fields, one_of

M_AND_E = "m_and_e"
BUS = "bus"  # the stems summed: the pre-limiter mix
WARM_UP_S = 1.0  # K-weighting settles within milliseconds (its slowest pole: 0.99 per sample)
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
            if audio.shape[1] >= placement.length:
                fitted = audio[:2, : placement.length]
            else:
                fitted = np.zeros((2, placement.length), np.float32)
                fitted[:, : audio.shape[1]] = audio[:2]
            self.cache[key] = apply_envelope(fitted, placement)
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
                out[:, a - start : b - start] += self._audio(placement, path)[
                    :, a - placement.start : b - placement.start
                ]
        return out


@dataclass(frozen=True)
class MixSettings:
    rate: int = field(default=MIX_RATE, metadata=above(0))
    stem_gain_db: dict[str, float] = field(default_factory=lambda: {DIALOGUE: 0.0, FOLEY: -6.0, MUSIC: -10.0})
    ducking: DuckingSettings = field(default_factory=DuckingSettings)
    preset: str = field(default="ebu-r128", metadata=one_of(PRESETS))
    block_s: float = field(default=4.0, metadata=above(0))  # small enough that a block's arrays stay in the CPU caches
    range_s: float = field(default=600.0, metadata=above(0))  # the longest range a worker takes at once
    workers: int = field(default=2, metadata=at_least(1))
    lookahead_ms: float = 5.0
    release_ms: float = 50.0

    def __post_init__(self) -> None:
        check_fields(self)

    @property
    def limiter(self) -> LimiterSettings:
        return LimiterSettings(preset(self.preset).true_peak_dbtp, self.lookahead_ms, self.release_ms, self.rate)


def level_cue(audio: np.ndarray, peak_dbfs: float) -> np.ndarray:
    """Scale a generated cue so its peak sits at ``peak_dbfs`` (silence stays silence)."""
    peak = float(np.abs(audio).max(initial=0.0))
    return audio if peak == 0 else (audio * (10 ** (peak_dbfs / 20) / peak)).astype(np.float32)


@dataclass
class Rendered:
    """One block of pass 2: every output as 24-bit integers (N, C), the mix as float, the limiter's
    gain, and the stems and music-and-effects at unity gain (for their true peaks)."""

    ints: dict[str, np.ndarray]
    mix: np.ndarray
    gain: np.ndarray
    stems: dict[str, np.ndarray]
    before: np.ndarray  # the bus just before the block (the limiter's context)


@dataclass
class Written:
    """What pass 2 of one range reports back."""

    mix: LoudnessMeter
    peaks: dict[str, TruePeak]
    min_gain: float
    limited: int
    pictures: ReviewPictures | None


class Mixer:
    """Stems and bus of one reel, worked on range by range (``levels``, ``measure``, ``write``)."""

    def __init__(
        self, cues: Sequence[tuple[Placement, Path]], dialogue: AudioSource | None, total: int, settings: MixSettings
    ) -> None:
        self.settings, self.total, self.dialogue, self.rate = settings, total, dialogue, settings.rate
        self.cues = {kind: [c for c in cues if c[0].kind == kind] for kind in (FOLEY, MUSIC)}
        self.frame, self.step = settings.rate // 100, settings.rate // 10  # ducking frames; loudness sub-blocks
        self.block = max(self.step, round(settings.block_s * self.rate) // self.step * self.step)
        self.context = -(-settings.limiter.context // self.frame) * self.frame
        self.progress: Callable[[int], None] = lambda n: None

    def ranges(self) -> list[tuple[int, int]]:
        """The timeline in ranges of whole blocks (whole 100 ms sub-blocks, so measurements join):
        four per worker, so the workers finish together, at most ``range_s`` long."""
        blocks = -(-self.total // self.block)
        per_range = min(
            -(-blocks // (4 * self.settings.workers)), max(1, round(self.settings.range_s * self.rate / self.block))
        )
        length = per_range * self.block
        return [(a, min(a + length, self.total)) for a in range(0, self.total, length)]

    def blocks(self, a: int, b: int) -> list[tuple[int, int, bool]]:
        """(start, length, counts) for the range [a, b): a one-second warm-up before it (not counted), then its blocks."""
        warm = max(0, a - round(WARM_UP_S * self.rate) // self.step * self.step)
        head = [(warm, a - warm, False)] if a > warm else []
        return head + [(s, min(self.block, b - s), True) for s in range(a, b, self.block)]

    def advance(self, n: int) -> None:
        if not report(n):
            self.progress(n)

    def tracks(self) -> dict[str, CueTrack]:
        """Cue readers for one range (each keeps its own cache of recently used cues)."""
        return {kind: CueTrack(cues) for kind, cues in self.cues.items()}

    def levels(self, span: tuple[int, int]) -> np.ndarray:
        """The dialogue's level per 10 ms frame over [a, b) (for the ducking curve)."""
        a, b = span
        return np.concatenate(
            [frame_levels(self.dialogue.read(s, min(self.block, b - s)), self.frame) for s in range(a, b, self.block)]
        )

    def stems(self, tracks: dict[str, CueTrack], start: int, n: int, duck: np.ndarray | None) -> dict[str, np.ndarray]:
        """Every stem for samples [start, start + n): cues placed, ducked, at their stem gain."""
        gains = self.settings.stem_gain_db
        ducking = gain_for_samples(duck, start, n, self.frame) if duck is not None else None
        stems = {}
        for kind, track in tracks.items():
            scale = np.float32(10 ** (gains.get(kind, 0.0) / 20))
            stems[kind] = track.read(start, n) * (ducking * scale if ducking is not None else scale)
        if self.dialogue is not None:
            stems[DIALOGUE] = self.dialogue.read(start, n) * np.float32(10 ** (gains.get(DIALOGUE, 0.0) / 20))
        return stems

    def measure(self, span: tuple[int, int], duck: np.ndarray | None) -> dict[str, Measurement]:
        """Pass 1 over [a, b): each stem, music-and-effects and the bus, at unity gain."""
        tracks = self.tracks()
        weighting = {k: KWeighting(2, self.rate) for k in (DIALOGUE, FOLEY, MUSIC)}
        measures: dict[str, Measurement] = {}
        for start, n, counts in self.blocks(*span):
            stems = self.stems(tracks, start, n, duck)
            weighted = {k: weighting[k](a) for k, a in stems.items()}
            for signals in (stems, weighted):
                signals[M_AND_E] = signals[FOLEY] + signals[MUSIC]
                signals[BUS] = signals[M_AND_E] + signals[DIALOGUE] if DIALOGUE in signals else signals[M_AND_E]
            for k, audio in stems.items():  # true peaks come in pass 2, where the sample peaks are known
                measures.setdefault(k, Measurement(2, self.rate, true_peak=False)).add(
                    audio, weighted[k], record=counts
                )
            if counts:
                self.advance(n)
        return measures

    def render(
        self, tracks: dict[str, CueTrack], start: int, n: int, duck: np.ndarray | None, gain: float, offset: float
    ) -> Rendered:
        """Pass 2 for one block: the stems at ``gain`` summed by pydub on the 32-bit bus, the limiter
        run with ``context`` samples of bus on both sides, the stems written at ``gain · offset``."""
        lo, hi = max(0, start - self.context), min(self.total, start + n + self.context)
        stems = self.stems(tracks, lo, hi - lo, duck)
        segments = {k: to_segment(a, self.rate, INT24_MAX * gain) for k, a in stems.items()}
        m_and_e = segments[FOLEY].overlay(segments[MUSIC])
        bus = m_and_e.overlay(segments[DIALOGUE]) if DIALOGUE in segments else m_and_e
        i, j = start - lo, start - lo + n
        pre = from_segment(bus)
        limit = limiter_gain(pre[:, i:j], pre[:, :i], pre[:, j:], self.settings.limiter)
        mix = pre[:, i:j] * limit
        if offset == 1.0:  # the usual case: the bus's own integers are the stems and the mix
            ints = {k: segment_ints(seg)[i:j] for k, seg in segments.items()}
            ints[M_AND_E] = segment_ints(m_and_e)[i:j]
        else:
            ints = {k: to_ints(a[:, i:j], INT24_MAX * gain * offset) for k, a in stems.items()}
            ints[M_AND_E] = ints[FOLEY] + ints[MUSIC]
        ints["mix"] = segment_ints(bus)[i:j] if limit.min(initial=1.0) >= 1.0 else to_ints(mix)
        unity = {k: a[:, i:j] for k, a in stems.items()}
        unity[M_AND_E] = unity[FOLEY] + unity[MUSIC]
        return Rendered(ints, mix, limit, unity, pre[:, :i])

    def write(
        self,
        span: tuple[int, int],
        duck: np.ndarray | None,
        gain: float,
        offset: float,
        floors: dict[str, float],
        bus_powers: np.ndarray,
        files: dict[str, Wav24File],
        pictures: bool,
    ) -> Written:
        """Pass 2 over [a, b): the outputs written in place, the mix measured, the stems' true peaks
        (``floors``: each stem's sample peak, a lower bound that spares most oversampling).

        Where the limiter left a block alone, the mix is the bus at ``gain``: its K-weighted powers
        are pass 1's (``bus_powers``) times the gain squared, identical to 24-bit precision. Blocks
        the limiter touched, and the block after each (the filter's memory), are filtered afresh."""
        tracks, meter, min_gain, limited = self.tracks(), LoudnessMeter(2, self.rate), 1.0, 0
        peaks = {k: TruePeak(2, floor) for k, floor in floors.items()}
        picture = ReviewPictures(self.total, self.rate) if pictures else None
        filtering = False
        try:
            for start, n, counts in self.blocks(*span):
                block = self.render(tracks, start, n, duck, gain, offset)
                touched = bool(block.gain.min(initial=1.0) < 1.0)
                if touched and not filtering:  # start the filter on the unlimited mix just before
                    meter.weighting = KWeighting(2, self.rate)
                    if block.before.shape[1]:
                        meter.weighting(block.before)
                if touched or filtering:
                    meter.add(block.mix, record=counts)
                elif counts:
                    meter.add_known(block.mix, bus_powers[start // self.step : (start + n) // self.step] * gain**2)
                else:
                    meter.add(block.mix, block.mix[:, :0], record=False)
                filtering = touched
                for k, peak in peaks.items():
                    peak.add(block.stems[k])
                if not counts:
                    continue
                for k, f in files.items():
                    f.write_at(start, block.ints[k])
                min_gain, limited = (
                    min(min_gain, float(block.gain.min(initial=1.0))),
                    limited + int((block.gain < 0.9999).sum()),
                )
                if picture is not None:
                    picture.add(start, block.mix)
                self.advance(n)
        finally:
            for f in files.values():
                f.release()
        return Written(meter, peaks, min_gain, limited, picture)


def _db(gain: float) -> float:
    return 20 * math.log10(gain) if gain > 0 else -math.inf


def _joined(parts: Sequence[Any]) -> Any:
    """Measurements (or true peaks) of consecutive ranges joined into the first."""
    first = parts[0]
    for later in parts[1:]:
        first.extend(later)
    return first


def master(
    cues: Sequence[tuple[Placement, Path]],
    dialogue: AudioSource | None,
    total: int,
    out_dir: Path,
    settings: MixSettings = MixSettings(),
    *,
    progress: Progress | None = None,
    pictures: ReviewPictures | None = None,
    stamps: Callable[[str, Loudness], Bext] | None = None,
) -> LoudnessReport:
    """Write mix.wav and stems/{dialogue,foley,music,m_and_e}.wav (48 kHz, 24-bit) under ``out_dir``: the stems
    sum to the pre-limiter mix exactly, and the outputs do not depend on where the ranges fall; ``pictures``
    (if given) is fed the mix; ``stamps`` (if given) makes each file a broadcast WAV: its bext chunk
    for an output's name and its measured loudness."""
    target = preset(settings.preset)
    mixer = Mixer(cues, dialogue, total, settings)
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        if progress:
            progress(min(done, 2 * total), 2 * total)

    mixer.progress = advance
    with RangePool(mixer, mixer.ranges(), settings.workers, advance) as pool:
        duck = None
        if dialogue is not None and settings.ducking.enabled:
            duck = 10 ** (
                ducking_curve(np.concatenate(pool.map(Mixer.levels)), settings.ducking) / 20
            )  # linear, per 10 ms frame
        per_range = pool.map(Mixer.measure, duck)
        measured = {k: _joined([m[k] for m in per_range]) for k in per_range[0]}
        loudness = measured[BUS].integrated()
        gain_db = target.integrated_lufs - loudness if math.isfinite(loudness) else 0.0
        # The limiter pulls loudness down when it works hard: correct the gain and write again, the
        # correction scaled by the measured slope of loudness against gain (secant steps; at −23 LUFS
        # the first pass is almost always within tolerance).
        tried: list[tuple[float, float]] = []
        while True:
            done = total  # pass 2 is the second half of the progress (again on a corrected rewrite)
            report_, drawn = _write(pool, mixer, out_dir, duck, gain_db, measured, pictures is not None, stamps)
            loudness = report_.mix.integrated_lufs
            error = target.integrated_lufs - loudness
            if not math.isfinite(error) or abs(error) <= 0.2 or len(tried) == 4:
                break
            tried.append((gain_db, loudness))
            slope = 1.0
            if len(tried) > 1 and tried[-1][0] != tried[-2][0]:
                slope = min(1.0, max(0.1, (tried[-1][1] - tried[-2][1]) / (tried[-1][0] - tried[-2][0])))
            gain_db += error / slope
    if pictures is not None:
        for part in drawn:
            pictures.merge(part)
    return report_


def _write(
    pool: RangePool[Mixer],
    mixer: Mixer,
    out_dir: Path,
    duck: np.ndarray | None,
    gain_db: float,
    measured: dict[str, Measurement],
    pictures: bool,
    stamps: Callable[[str, Loudness], Bext] | None,
) -> tuple[LoudnessReport, list[ReviewPictures]]:
    settings, target = mixer.settings, preset(mixer.settings.preset)
    g = 10 ** (gain_db / 20)
    stems = [k for k in (DIALOGUE, FOLEY, MUSIC, M_AND_E) if k in measured]
    # Stems at the normalised level sum to the pre-limiter mix; if that would clip one of them,
    # all stems sit lower by one common offset (reported) and still sum to it scaled by that.
    loudest = max(measured[k].sample_peak for k in stems) * g
    offset = min(1.0, 0.999 / loudest) if loudest > 0 else 1.0
    (out_dir / "stems").mkdir(parents=True, exist_ok=True)
    paths = {**{k: out_dir / "stems" / f"{k}.wav" for k in stems}, "mix": out_dir / "mix.wav"}
    files: dict[str, Wav24File] = {}

    def chunk(k: str, loudness: Loudness = Loudness()) -> bytes:
        return stamps(k, loudness).chunk(settings.rate, 2) if stamps else b""

    try:
        for k, path in paths.items():
            files[k] = Wav24File(path, 2, settings.rate, mixer.total, chunk(k))
        floors = {k: measured[k].sample_peak for k in stems}
        written = pool.map(Mixer.write, duck, g, offset, floors, measured[BUS].powers(), files, pictures)
    except BaseException:
        for f in files.values():
            f.abort()
        raise
    mix = _joined([w.mix for w in written])
    min_gain = min(w.min_gain for w in written)
    for k in stems:
        measured[k].true_peak = _joined([w.peaks[k] for w in written])
    outputs = {k: measured[k].report(g * offset) for k in stems}
    report_ = LoudnessReport(
        preset=target.name,
        target_lufs=target.integrated_lufs,
        ceiling_dbtp=target.true_peak_dbtp,
        normalization_gain_db=round(gain_db, 2),
        stems_offset_db=round(_db(offset), 2),
        max_gain_reduction_db=round(max(0.0, -_db(min_gain)), 2),
        limited_seconds=round(sum(w.limited for w in written) / settings.rate, 3),
        outputs={**outputs, "mix": mix.report()},
        samples=mixer.total,
    )
    try:
        for k, f in files.items():
            o = report_.outputs[k]
            f.close(chunk(k, Loudness(o.integrated_lufs, o.loudness_range_lu, o.true_peak_dbtp)) if stamps else None)
    except BaseException:  # nothing half-written left behind (a file already closed is in place, as before)
        for f in files.values():
            f.abort()
        raise
    return report_, [w.pictures for w in written if w.pictures is not None]
