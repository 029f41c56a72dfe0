from fractions import Fraction

import pytest

from audiox_core.video.timecode import timecode

NTSC = Fraction(30000, 1001)


@pytest.mark.parametrize(
    ("frame", "fps", "expected"),
    [
        (0, NTSC, "00:00:00;00"),
        (1799, NTSC, "00:00:59;29"),
        (1800, NTSC, "00:01:00;02"),
        (17982, NTSC, "00:10:00;00"),
        (107892, NTSC, "01:00:00;00"),
        (3599, Fraction(60000, 1001), "00:00:59;59"),
        (3600, Fraction(60000, 1001), "00:01:00;04"),
        (24 * 3600, Fraction(24000, 1001), "01:00:00:00"),
        (25 * 61 + 3, Fraction(25), "00:01:01:03"),
        (24 * 10, Fraction(24), "00:00:10:00"),
    ],
)
def test_timecode_is_drop_frame_at_29_97_and_59_94_and_non_drop_otherwise(
    frame: int, fps: Fraction, expected: str
) -> None:
    assert timecode(frame, fps) == expected
