"""Mixing and mastering: loudness presets, true peak, stems, ducking, sample-exact placement."""

from __future__ import annotations

import dataclasses
import itertools
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pyloudnorm
import pytest
from drafted import alternating, drafted_placements
from scipy.signal import resample_poly

from audiox_core.sound.audio import Wav24File, extract_audio, read_wav, write_wav24
from audiox_core.sound.ducking import DuckingSettings
from audiox_core.sound.loudness import PRESETS, LoudnessMeter
from audiox_core.sound.mix import CueTrack, MixSettings, master
from audiox_core.sound.parallel import RangePool
from audiox_core.sound.timeline import FOLEY, MUSIC, Placement
from audiox_core.video.scenes import Scene

RATE = 48_000


class ArraySource:
    def __init__(self, audio: np.ndarray) -> None:
        self.audio = audio

    def read(self, start: int, n: int) -> np.ndarray:
        out = np.zeros((2, n), np.float32)
        a, b = max(start, 0), min(start + n, self.audio.shape[1])
        if b > a:
            out[:, a - start : b - start] = self.audio[:, a:b]
        return out


def true_peak(audio: np.ndarray) -> float:
    """An independent 4× oversampled true peak (scipy's polyphase resampler)."""
    return 20 * math.log10(np.abs(resample_poly(audio.astype(np.float64), 4, 1, axis=1)).max())


def tone(seconds: float, freq: float, level: float, seed: int = 0) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    rng = np.random.default_rng(seed)
    left = level * np.sin(2 * np.pi * freq * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.3 * t))
    return np.stack([left, left * 0.8 + level * 0.1 * rng.standard_normal(len(t))]).astype(np.float32)


def scenes_for(cuts_s: list[float], end_s: float) -> list[Scene]:
    bounds = [0.0, *cuts_s, end_s]
    return [Scene(i, 0, 0, a, b, "", "") for i, (a, b) in enumerate(itertools.pairwise(bounds))]


@pytest.fixture
def cue_files(tmp_path: Path) -> list[tuple[Placement, Path]]:
    placements = drafted_placements(scenes_for([4.0, 7.5], 12.0), Fraction(25), alternating(3))  # crossfading music
    cues = []
    for p in placements:
        path = tmp_path / f"{p.kind}{p.scene_index}.wav"
        audio = tone(p.length / RATE, 220 * (p.scene_index + 1) if p.kind == MUSIC else 1500, 0.5, p.scene_index)
        write_wav24(path, audio, RATE)
        cues.append((p, path))
    return cues


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_reach_loudness_and_true_peak(cue_files, tmp_path: Path, name: str) -> None:
    out = tmp_path / name
    dialogue = ArraySource(tone(12.0, 140, 0.4, 9))
    report = master(cue_files, dialogue, 12 * RATE, out, MixSettings(preset=name))
    mix, rate = read_wav(out / "mix.wav")
    target = PRESETS[name]
    assert rate == RATE and mix.shape == (2, 12 * RATE)
    measured = pyloudnorm.Meter(RATE).integrated_loudness(mix.T.astype(np.float64))
    assert abs(measured - target.integrated_lufs) <= 0.5, (measured, report.to_dict())
    assert true_peak(mix) <= target.true_peak_dbtp
    assert np.abs(mix).max() < 1.0  # no sample at full scale
    for stem in ("dialogue", "foley", "music", "m_and_e"):
        assert (out / "stems" / f"{stem}.wav").is_file()


def test_stems_sum_to_the_pre_limiter_mix(cue_files, tmp_path: Path) -> None:
    report = master(
        cue_files, ArraySource(tone(12.0, 140, 0.2, 3)), 12 * RATE, tmp_path, MixSettings(preset="ebu-r128")
    )
    assert report.max_gain_reduction_db == 0.0  # at −23 LUFS nothing reaches −1 dBTP: the mix is the sum
    mix = read_wav(tmp_path / "mix.wav")[0]
    stems = sum(read_wav(tmp_path / "stems" / f"{k}.wav")[0] for k in ("dialogue", "foley", "music"))
    residual = 20 * math.log10(np.abs(mix - stems * 10 ** (-report.stems_offset_db / 20)).max() / np.abs(mix).max())
    assert residual < -60
    m_and_e = read_wav(tmp_path / "stems" / "m_and_e.wav")[0]
    music_foley = read_wav(tmp_path / "stems" / "music.wav")[0] + read_wav(tmp_path / "stems" / "foley.wav")[0]
    assert np.abs(m_and_e - music_foley).max() < 1e-5


def test_limiter_holds_the_ceiling_on_loud_material(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    loud = (0.06 * rng.standard_normal((2, 6 * RATE))).astype(np.float32)  # a steady body …
    hit = (0.9 * np.exp(-np.arange(960) / 150) * np.sign(np.sin(np.arange(960) / 3.0))).astype(np.float32)
    for start in range(0, 6 * RATE - 960, RATE // 2):  # … with drum-like hits well above the ceiling
        loud[:, start : start + 960] += hit
    loud = np.clip(loud, -0.99, 0.99)
    path = tmp_path / "cue.wav"
    write_wav24(path, loud, RATE)
    cue = [(Placement(0, FOLEY, 0, 6 * RATE, 0, 0, False), path)]
    report = master(
        cue, None, 6 * RATE, tmp_path / "out", MixSettings(preset="streaming-14", stem_gain_db={FOLEY: 0.0})
    )
    mix = read_wav(tmp_path / "out" / "mix.wav")[0]
    assert report.max_gain_reduction_db > 1.0
    assert true_peak(mix) <= -1.0
    assert abs(pyloudnorm.Meter(RATE).integrated_loudness(mix.T.astype(np.float64)) + 14) <= 0.5


def test_ducking_lowers_music_by_the_depth_only_under_dialogue(tmp_path: Path) -> None:
    t = np.arange(12 * RATE) / RATE
    music = np.stack([0.3 * np.sin(2 * np.pi * 440 * t)] * 2).astype(np.float32)  # steady level
    path = tmp_path / "music.wav"
    write_wav24(path, music, RATE)
    dialogue = np.zeros((2, 12 * RATE), np.float32)
    dialogue[:, 4 * RATE : 8 * RATE] = tone(4.0, 150, 0.3, 2)
    settings = MixSettings(ducking=DuckingSettings(depth_db=10.0), stem_gain_db={MUSIC: 0.0})
    master(
        [(Placement(0, MUSIC, 0, 12 * RATE, 0, 0, True), path)],
        ArraySource(dialogue),
        12 * RATE,
        tmp_path / "o",
        settings,
    )
    ducked = read_wav(tmp_path / "o" / "stems" / "music.wav")[0][0]

    def rms_db(a: float, b: float) -> float:
        x = ducked[round(a * RATE) : round(b * RATE)]
        return 10 * math.log10(np.mean(x**2))

    quiet, under, after = rms_db(1.0, 3.5), rms_db(5.5, 7.5), rms_db(10.0, 11.5)
    assert under - quiet == pytest.approx(-10.0, abs=0.3)
    assert after - quiet == pytest.approx(0.0, abs=0.2)


@pytest.mark.parametrize("fps", [Fraction(24000, 1001), Fraction(25), Fraction(30000, 1001)])
def test_cue_starts_are_sample_exact_over_two_hours(fps: Fraction) -> None:
    frames = [round(k * fps * 7200 / 1000) for k in range(1, 1000)]  # 999 cuts spread over two hours
    scenes = [
        Scene(i, a, b, float(a / fps), float(b / fps), "", "")
        for i, (a, b) in enumerate(zip([0, *frames], [*frames, round(fps * 7200)]))
    ]
    starts = [p.start for p in drafted_placements(scenes, fps) if p.kind == FOLEY]
    assert starts == [round(Fraction(a) / fps * RATE) for a in [0, *frames]]


def test_cue_track_places_audio_at_its_sample() -> None:
    clicks = []
    for i, start in enumerate((1_234, 98_765)):
        clicks.append(Placement(i, FOLEY, start, 100, 0, 0, False))
    track = CueTrack([])
    impulse = np.zeros((2, 100), np.float32)
    impulse[:, 0] = 1.0
    track.cues = [(p, Path(f"/nonexistent/{p.scene_index}")) for p in clicks]
    track._audio = lambda placement, path: impulse  # the placement logic only
    out = np.concatenate([track.read(s, 50_000) for s in range(0, 150_000, 50_000)], axis=1)
    assert list(np.flatnonzero(out[0])) == [1_234, 98_765]


def test_meter_matches_pyloudnorm() -> None:
    audio = np.concatenate((tone(8.0, 997, 0.3), tone(8.0, 300, 0.05, 4)), axis=1)
    meter = LoudnessMeter(2)
    for s in range(0, audio.shape[1], 10_000):
        meter.add(audio[:, s : s + 10_000])
    reference = pyloudnorm.Meter(RATE)
    assert meter.integrated() == pytest.approx(reference.integrated_loudness(audio.T.astype(np.float64)), abs=0.1)
    assert meter.loudness_range() == pytest.approx(reference.loudness_range(audio.T.astype(np.float64)), abs=1.0)


@pytest.mark.parametrize("layout", ["mono", "5.1"])
def test_mono_and_surround_dialogue_become_stereo(tmp_path: Path, layout: str) -> None:
    import subprocess

    clip = tmp_path / f"{layout}.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=160x90:rate=25:duration=2",
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency=300:duration=2,aformat=channel_layouts={layout}",
            "-c:v",
            "libx264",
            "-c:a",
            "aac",
            "-shortest",
            str(clip),
        ],
        check=True,
    )
    raw = extract_audio(clip, 1, tmp_path / "d.f32")
    audio = raw.read(0, raw.samples)
    assert audio.shape[0] == 2 and abs(raw.samples - 2 * RATE) < RATE * 0.1
    assert np.abs(audio).max() > 0.05


def test_writer_leaves_nothing_behind_on_abort(tmp_path: Path) -> None:
    w = Wav24File(tmp_path / "x.wav", 2, RATE, 10)
    w.write_at(0, np.zeros((10, 2), np.int32))
    w.abort()
    assert list(tmp_path.iterdir()) == []


def loud_material(seconds: float, seed: int = 1) -> np.ndarray:
    """A steady body with drum-like hits well above the ceiling (the limiter has work to do)."""
    rng = np.random.default_rng(seed)
    n = round(seconds * RATE)
    audio = (0.06 * rng.standard_normal((2, n))).astype(np.float32)
    hit = (0.9 * np.exp(-np.arange(960) / 150) * np.sign(np.sin(np.arange(960) / 3.0))).astype(np.float32)
    for start in range(0, n - 960, RATE // 2):
        audio[:, start : start + 960] += hit
    return np.clip(audio, -0.99, 0.99)


def test_worker_processes_and_ranges_do_not_change_the_outputs(tmp_path: Path) -> None:
    """One block in-process against 1 s blocks in 2 s ranges on two forked workers: the limiter's
    context, the filters' warm-up and the joined measurements make the split invisible."""
    path = tmp_path / "cue.wav"
    write_wav24(path, loud_material(12.0), RATE)
    cues = [
        (Placement(0, FOLEY, 0, 12 * RATE, 0, 0, False), path),
        (Placement(0, MUSIC, 0, 12 * RATE, 4800, 4800, True), path),
    ]
    dialogue = ArraySource(tone(12.0, 140, 0.3, 5))
    reports = {}
    for name, extra in (
        ("whole", {"workers": 1, "block_s": 30.0}),
        ("split", {"workers": 2, "block_s": 1.0, "range_s": 2.0}),
    ):
        settings = MixSettings(preset="streaming-14", stem_gain_db={FOLEY: 0.0, MUSIC: -3.0}, **extra)
        reports[name] = master(cues, dialogue, 12 * RATE, tmp_path / name, settings)
    assert reports["whole"].max_gain_reduction_db > 1.0  # the limiter worked across range edges
    # Equal to float rounding (sums taken in another order reach the normalisation gain and the
    # limiter's): a few 24-bit steps at most, −125 dBFS.
    for output in ("mix.wav", "stems/dialogue.wav", "stems/foley.wav", "stems/music.wav", "stems/m_and_e.wav"):
        whole, split = read_wav(tmp_path / "whole" / output)[0], read_wav(tmp_path / "split" / output)[0]
        assert whole.shape == split.shape and np.abs(whole - split).max() <= 4.01 / (2**23 - 1), output
    for output, figures in reports["whole"].outputs.items():
        for key, value in dataclasses.asdict(figures).items():
            assert getattr(reports["split"].outputs[output], key) == pytest.approx(value, abs=0.011), (output, key)


@dataclasses.dataclass(frozen=True)
class NamedJob:
    name: str

    def label(self, span: tuple[int, int], suffix: str) -> str:
        return f"{self.name}{span}{suffix}"


def test_range_pools_open_at_once_each_run_their_own_job_in_workers() -> None:
    """Each pool's workers get their job when they are forked, not from a global of the parent."""
    spans = [(0, 1), (1, 2)]
    with (
        RangePool(NamedJob("a"), spans, 2, lambda n: None) as a,
        RangePool(NamedJob("b"), spans, 2, lambda n: None) as b,
    ):
        assert a.pool is not None and b.pool is not None
        assert b.map(NamedJob.label, "!") == ["b(0, 1)!", "b(1, 2)!"]
        assert a.map(NamedJob.label, "?") == ["a(0, 1)?", "a(1, 2)?"]


def test_a_failing_range_stops_the_mix_and_leaves_no_files(tmp_path: Path) -> None:
    good = tmp_path / "good.wav"
    write_wav24(good, tone(6.0, 440, 0.3), RATE)
    cues = [
        (Placement(0, MUSIC, 0, 6 * RATE, 0, 0, True), good),
        (Placement(1, FOLEY, 9 * RATE, 3 * RATE, 0, 0, False), tmp_path / "missing.wav"),
    ]
    with pytest.raises(FileNotFoundError, match="missing.wav"):
        master(cues, None, 12 * RATE, tmp_path / "out", MixSettings(workers=2, block_s=1.0, range_s=2.0))
    assert not [p for p in (tmp_path / "out").rglob("*") if p.is_file()]


def test_true_peak_is_the_same_in_any_blocks_and_matches_an_independent_oversampler() -> None:
    from audiox_core.sound.truepeak import TruePeak

    audio = loud_material(3.0, seed=7) * np.float32(0.9)
    reference = true_peak(audio)
    for sizes in ((audio.shape[1],), (1000, 7, 33_333, 50_000), (4097,)):
        meter, start, i = TruePeak(2), 0, 0
        while start < audio.shape[1]:
            n = sizes[i % len(sizes)]
            meter.add(audio[:, start : start + n])
            start, i = start + n, i + 1
        assert 20 * math.log10(meter.final) == pytest.approx(reference, abs=0.05), sizes


def test_oversampled_envelope_is_the_interpolator_applied_directly() -> None:
    from audiox_core.sound.truepeak import PHASES, SEGMENT, envelope_where

    rng = np.random.default_rng(3)
    audio = (0.5 * rng.standard_normal((2, 3 * SEGMENT + 100))).astype(np.float32)
    padded = np.pad(audio.astype(np.float64), ((0, 0), (15, 17)))
    direct = np.abs(audio).max(axis=0).astype(np.float64)
    for p in range(1, 4):  # y(n + p/4) = Σ_m h_p[m] x[n − m], m = −16 … 15
        for c in range(2):
            y = np.convolve(padded[c], PHASES[p], mode="valid")[: audio.shape[1]]  # y[n] = Σ_m h_p[m] x[n − m]
            direct = np.maximum(direct, np.abs(y))
    assert np.abs(envelope_where(audio, 0.0) - direct).max() < 1e-5
