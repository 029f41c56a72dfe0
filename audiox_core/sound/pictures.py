"""Review pictures of a mix: a waveform and a spectrogram PNG with the scene boundaries marked and
the loudness figures in the title. Built while the mix streams past (one column per slice of the
timeline), drawn with OpenCV, so a two-hour reel costs a few megabytes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

WIDTH, WAVE_HEIGHT, SPEC_HEIGHT, TITLE, AXIS = 1600, 300, 300, 34, 22
TICK_STEPS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800)  # the first giving at most 16 ticks
FFT = 2048
BANDS = 160


class ReviewPictures:
    def __init__(self, total: int, rate: int, width: int = WIDTH) -> None:
        self.total, self.rate, self.width = total, rate, width
        self.low = np.zeros(width, np.float32)
        self.high = np.zeros(width, np.float32)
        self.spectrum = np.full((BANDS, width), -120.0, np.float32)
        self.edges = np.geomspace(30, rate / 2, BANDS + 1)  # log-spaced bands, 30 Hz to Nyquist
        self.band_of_bin = np.clip(np.searchsorted(self.edges, np.fft.rfftfreq(FFT, 1 / rate)) - 1, 0, BANDS - 1)

    def add(self, start: int, audio: np.ndarray) -> None:
        """Feed the mix block that starts at sample ``start``."""
        mono = audio.mean(axis=0)
        columns = (np.arange(start, start + len(mono)) * self.width // max(self.total, 1)).clip(0, self.width - 1)
        for col in np.unique(columns):
            part = mono[columns == col]
            self.low[col] = min(self.low[col], float(part.min()))
            self.high[col] = max(self.high[col], float(part.max()))
            centre = (int(col) * self.total) // self.width + self.total // (2 * self.width) - start
            if 0 <= centre < len(mono):  # the block holding a column's centre draws its spectrum
                self.spectrum[:, col] = self._bands(mono, centre)

    def _bands(self, mono: np.ndarray, centre: int) -> np.ndarray:
        """Band powers (dB) of the FFT window around ``centre``, moved inside the block where the
        centre is near its edge (by at most half a window, 21 ms at 48 kHz): a window cut off at a
        block boundary would leave the column blank, a dark stripe every block."""
        lo = min(max(centre - FFT // 2, 0), max(len(mono) - FFT, 0))
        part = mono[lo : lo + FFT]
        if len(part) < FFT:  # a block shorter than one window (the reel's very end)
            part = np.pad(part, (0, FFT - len(part)))
        power = np.abs(np.fft.rfft(part * np.hanning(FFT))) ** 2
        return 10 * np.log10(np.bincount(self.band_of_bin, weights=power, minlength=BANDS) + 1e-12)

    def merge(self, part: ReviewPictures) -> None:
        """Take in the columns drawn from another stretch of the same mix (a column's spectrum is
        drawn by the stretch that holds its centre; elsewhere it stays at the −120 dB floor)."""
        np.minimum(self.low, part.low, out=self.low)
        np.maximum(self.high, part.high, out=self.high)
        np.maximum(self.spectrum, part.spectrum, out=self.spectrum)

    def write(
        self,
        waveform: Path,
        spectrogram: Path,
        boundaries: Sequence[int],
        title: str,
        scene_numbers: Sequence[int] = (),
    ) -> None:
        """Both PNGs: the title, the picture with a line at every cut (``boundaries``, in samples) and
        the scene numbers between them, and a time axis (M:SS) below."""
        marks = [b * self.width // max(self.total, 1) for b in boundaries]
        wave = self._framed(self._waveform(), marks, title, scene_numbers)
        spectrum = self._framed(self._spectrogram(), marks, title, scene_numbers)
        self._frequency_axis(spectrum[TITLE : TITLE + SPEC_HEIGHT])
        self._colour_scale(spectrum[:TITLE])
        cv2.imwrite(str(waveform), wave)
        cv2.imwrite(str(spectrogram), spectrum)

    def _waveform(self) -> np.ndarray:
        img = np.full((WAVE_HEIGHT, self.width, 3), 24, np.uint8)
        mid = WAVE_HEIGHT // 2
        top = (mid - self.high * (mid - 4)).astype(int)
        bottom = (mid - self.low * (mid - 4)).astype(int)
        for x in range(self.width):
            img[top[x] : bottom[x] + 1, x] = (90, 200, 240)
        img[mid, :] = (80, 80, 80)
        return img

    def _spectrogram(self) -> np.ndarray:
        # Only bands that hold an FFT bin (the lowest log-spaced bands are narrower than a bin).
        db = self.spectrum[np.unique(self.band_of_bin)][::-1]  # low frequencies at the bottom
        top = float(db.max()) if np.isfinite(db.max()) else 0.0
        scaled = np.clip((db - (top - 90)) / 90, 0, 1)
        img = cv2.resize((scaled * 255).astype(np.uint8), (self.width, SPEC_HEIGHT), interpolation=cv2.INTER_NEAREST)
        return cv2.applyColorMap(img, cv2.COLORMAP_MAGMA)

    def _frequency_axis(self, body: np.ndarray) -> None:
        """Frequency ticks and labels at the left edge, inside the picture (the time axis keeps the
        full width, so a playhead at t / duration of the width is on the sound)."""
        kept = np.unique(self.band_of_bin)
        for hz, label in ((100, "100 Hz"), (1000, "1 kHz"), (10_000, "10 kHz")):
            if not self.edges[0] <= hz < self.edges[-1]:
                continue
            band = int(np.searchsorted(self.edges, hz) - 1)
            row = len(kept) - 1 - int(np.searchsorted(kept, band))  # low frequencies at the bottom
            y = int((row + 0.5) * body.shape[0] / len(kept))
            cv2.line(body, (0, y), (8, y), (255, 255, 255), 1)
            cv2.putText(body, label, (11, y + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (255, 255, 255), 1, cv2.LINE_AA)

    def _colour_scale(self, header: np.ndarray) -> None:
        """The colours' scale at the header's right: band power from 90 dB below the loudest band to it."""
        x0, x1, y0, y1 = self.width - 360, self.width - 150, 10, 24
        ramp = np.linspace(0, 255, x1 - x0).astype(np.uint8)[None, :].repeat(y1 - y0, axis=0)
        header[y0:y1, x0:x1] = cv2.applyColorMap(ramp, cv2.COLORMAP_MAGMA)
        font, grey = cv2.FONT_HERSHEY_SIMPLEX, (220, 220, 220)
        cv2.putText(header, "-90 dB", (x0 - 52, 22), font, 0.38, grey, 1, cv2.LINE_AA)
        cv2.putText(header, "0 dB (loudest band)", (x1 + 6, 22), font, 0.38, grey, 1, cv2.LINE_AA)

    def _framed(self, body: np.ndarray, marks: Sequence[int], title: str, numbers: Sequence[int]) -> np.ndarray:
        for x in marks:
            cv2.line(body, (int(x), 0), (int(x), body.shape[0] - 1), (255, 255, 255), 1)
        edges = [0, *marks, self.width]
        for n, a, b in zip(numbers, edges, edges[1:]):
            if b - a >= 9 * len(str(n)) + 4:  # only where the number fits inside its scene
                cv2.putText(body, str(n), (a + 3, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
        header = np.full((TITLE, self.width, 3), 12, np.uint8)
        cv2.putText(header, title, (8, 23), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (235, 235, 235), 1, cv2.LINE_AA)
        return np.vstack((header, body, self._axis()))

    def _axis(self) -> np.ndarray:
        """The time axis: a tick and an M:SS label every few seconds (at most 16 ticks)."""
        axis = np.full((AXIS, self.width, 3), 12, np.uint8)
        seconds = self.total / self.rate
        step = next((t for t in TICK_STEPS_S if seconds / t <= 16), TICK_STEPS_S[-1])
        for t in range(0, int(seconds) + 1, step):
            x = min(int(t * self.rate * self.width // max(self.total, 1)), self.width - 1)
            cv2.line(axis, (x, 0), (x, 4), (200, 200, 200), 1)
            label = f"{t // 60}:{t % 60:02d}"
            cv2.putText(
                axis,
                label,
                (min(x + 2, self.width - 34), 16),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.38,
                (200, 200, 200),
                1,
                cv2.LINE_AA,
            )
        return axis
