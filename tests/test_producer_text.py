"""Producer text on its way out: no cell of a CSV file we write is a formula, and what a command
prints shows control characters and bidi overrides escaped instead of obeying them."""

from __future__ import annotations

import csv
import io
import logging
import re
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import pytest
from readers import read_scenes_csv
from test_records import sample_document

from audiox_core.reel.cuesheet import CueSheet, SheetCue, music_cue_csv, resolve
from audiox_core.video.edl import scenes_csv
from audiox_core.video.scenes import DetectorSettings, Scene, SceneList
from audiox_core.video.timecode import timecode
from cli.lineage import CueLineage, RunLineage, describe

FPS = Fraction(25)
FORMULAS = ['=HYPERLINK("http://evil.example","open")', "+1+1", "-2+3", "@SUM(A1:A9)", "\t=1", "\r=1"]
HOSTILE = "\x1b[31mred\x1b[0m \x07bell\rover \u202eevil\u2066x\u2069 \x9b2J \x7f"
# What a terminal obeys: C0 (newline and tab included), DEL, C1, the bidi embeddings, overrides and isolates.
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _scenes(n: int) -> list[Scene]:
    return [
        Scene(i, 50 * i, 50 * (i + 1), 2.0 * i, 2.0 * (i + 1), timecode(50 * i, FPS), timecode(50 * (i + 1), FPS))
        for i in range(n)
    ]


def test_no_title_in_the_music_cue_sheet_is_a_formula() -> None:
    """Expected: each title that a spreadsheet would run gets a leading single quote (OWASP CSV
    injection); a quote inside a title survives as itself, a CR inside one starts no row of its own;
    the cue numbers stay numbers."""
    titles = [*FORMULAS, 'the "big" one', "night\r=1+1", "Opening"]
    scenes = _scenes(len(titles))
    cues = tuple(SheetCue(f"M{i:02d}", "music", "score", i, (i, i), title=t) for i, t in enumerate(titles))
    text = music_cue_csv(resolve(CueSheet("r", FPS, cues), scenes, FPS, "x"), FPS, scenes)
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert [r["title"] for r in rows] == [*("'" + t for t in FORMULAS), *titles[len(FORMULAS) :]]
    assert [r["cue"] for r in rows] == [str(n) for n in range(1, len(titles) + 1)]


def test_text_cells_are_neutralised_and_our_numeric_columns_kept() -> None:
    """Expected: -1 in a numeric column of ours stays -1; the same text in a text column is quoted."""
    from audiox_core.producer_text import csv_table

    text = csv_table(("n", "name"), [(-1, "-1"), (2.5, "=2+3"), (3, "plain")], numeric={"n"})
    assert text == "n,name\n-1,'-1\n2.5,'=2+3\n3,plain\n"


def test_scene_list_csv_keeps_a_negative_start_as_a_number() -> None:
    """A stream whose first frame has a negative timestamp (an edit list) starts before zero: its
    scene list's numbers are ours and stay numbers."""
    scene = Scene(0, 0, 50, -0.04, 1.96, "00:00:00:00", "00:00:02:00")
    text = scenes_csv(SceneList(FPS, 50, (scene,), DetectorSettings()))
    [row] = read_scenes_csv(text)
    assert row["start_s"] == "-0.040000" and row["end_s"] == "1.960000"


def test_provenance_prints_control_characters_escaped() -> None:
    """Expected: the prompt, the source and the file name print with ESC, BEL, CR, C1 and the bidi
    override escaped (``\\x1b``, ``\\u202e``): one line per fact, nothing a terminal would obey."""
    document = sample_document()
    first = document.generations[0]
    hostile = replace(first, generation=replace(first.generation, prompt=HOSTILE))
    document = replace(
        document,
        generations=(hostile, *document.generations[1:]),
        source=replace(document.source, uri="/footage/\x1b]0;owned\x07reel.mp4"),
    )
    text = describe(RunLineage("/out/mix\u202ewav.4pm", "a" * 64, "output", "succeeded", document))
    assert not CONTROL.search(text.replace("\n", "")), text
    assert len(text.splitlines()) == 5 + len(document.generations)
    assert "\\x1b[31mred\\x1b[0m \\x07bell\\rover \\u202eevil\\u2066x\\u2069 \\x9b2J \\x7f" in text
    assert "/footage/\\x1b]0;owned\\x07reel.mp4" in text and "/out/mix\\u202ewav.4pm" in text
    cue = describe(CueLineage("/out/cues/\x1b[2Jscene1.wav", "b" * 64, hostile.generation))
    assert not CONTROL.search(cue.replace("\n", "")) and "/out/cues/\\x1b[2Jscene1.wav" in cue


def test_terminal_text_escapes_exactly_what_a_terminal_obeys() -> None:
    from audiox_core.producer_text import terminal_text

    obeyed = [*range(0x20), 0x7F, *range(0x80, 0xA0), *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
    for code in obeyed:
        shown = terminal_text(f"a{chr(code)}b")
        assert not CONTROL.search(shown) and shown.startswith("a\\") and shown.endswith("b"), hex(code)
    kept = "Grüße, 東京, שלום, مرحبا, 🎬, \u200d, C:\\reels\\a.mov"
    assert terminal_text(kept) == kept


@pytest.mark.parametrize("command", ["provenance", "scenes"])
def test_an_error_line_shows_control_characters_in_a_name_escaped(
    command: str, home: Path, tmp_path: Path, capsys
) -> None:
    from cli.main import main

    missing = tmp_path / "reel\x1b[2J\u202ename.mp4"
    assert main([command, str(missing)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and not CONTROL.search(err.rstrip("\n")), err
    assert "reel\\x1b[2J\\u202ename.mp4" in err


def test_a_run_summary_shows_control_characters_escaped(tmp_path: Path, capsys) -> None:
    from cli.main import _print_outputs

    out = tmp_path / "out\x1b[2J"
    (out).mkdir()
    (out / "mix.wav").write_bytes(b"RIFF")
    result = {
        "reel": "r",
        "model": "AudioX from /models/\u202eevil",
        "out_dir": str(out),
        "review_artifact": "review-r",
        "flow_run_id": "1",
    }
    _print_outputs(result)
    printed = capsys.readouterr().out
    assert not CONTROL.search(printed.replace("\n", "")), printed
    assert "/models/\\u202eevil" in printed and "out\\x1b[2J/mix.wav" in printed


def test_console_log_lines_show_control_characters_escaped() -> None:
    from audiox_core.producer_text import TerminalFormatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(TerminalFormatter("%(levelname)s %(name)s: %(message)s"))
    log = logging.getLogger("audiox_core.test_producer_text")
    log.addHandler(handler)
    try:
        log.warning("stored cue sheet: cue %s: scene 9 is not in the reel", "F\x1b[2J001")
    finally:
        log.removeHandler(handler)
    assert (
        stream.getvalue()
        == "WARNING audiox_core.test_producer_text: stored cue sheet: cue F\\x1b[2J001: scene 9 is not in the reel\n"
    )
