"""The review pictures: every spectrogram column drawn whatever the mix's block size; the time axis
and the scene numbers are there."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from audiox_core.sound.pictures import AXIS, BANDS, TITLE, ReviewPictures

RATE = 48_000


def _noise(seconds: float) -> np.ndarray:
    return np.random.default_rng(0).normal(0, 0.1, (2, int(seconds * RATE))).astype(np.float32)


@pytest.mark.parametrize("block_s", [4.0, 0.5, 0.03])
def test_every_spectrogram_column_is_drawn_whatever_the_block_size(block_s: float) -> None:
    """Expected: no column left at the −120 dB floor (a window straddling a block edge once left a black
    stripe every 4 s block), even with blocks shorter than one FFT window."""
    audio = _noise(30.0)
    pictures = ReviewPictures(audio.shape[1], RATE)
    step = int(block_s * RATE)
    for start in range(0, audio.shape[1], step):
        pictures.add(start, audio[:, start : start + step])
    floor_columns = np.flatnonzero((pictures.spectrum <= -119.0).all(axis=0))
    assert floor_columns.size == 0, floor_columns[:10]
    assert pictures.spectrum.shape == (BANDS, pictures.width)


def test_the_pictures_have_a_time_axis_and_scene_numbers(tmp_path: Path) -> None:
    audio = _noise(20.0)
    pictures = ReviewPictures(audio.shape[1], RATE)
    pictures.add(0, audio)
    cuts = [5 * RATE, 12 * RATE]
    pictures.write(tmp_path / "w.png", tmp_path / "s.png", cuts, "title", [1, 2, 3])
    wave = cv2.imread(str(tmp_path / "w.png"))
    assert wave.shape[0] == TITLE + 300 + AXIS
    axis = wave[-AXIS:]
    assert (axis > 100).any(axis=2).sum() > 50  # tick marks and labels drawn
    x_cut = 5 * pictures.width // 20
    assert (wave[TITLE:-AXIS, x_cut] == 255).all()  # the cut line
    label_box = wave[TITLE : TITLE + 16, x_cut + 2 : x_cut + 14]
    assert (label_box > 200).all(axis=2).any()  # the next scene's number beside it
