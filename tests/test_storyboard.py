"""Stills, storyboards and text briefs as reels: the board read and checked, its animatic with the
cards' cuts, the still's pixels as the model sees them, and whole runs (tiny model) of a storyboard
and of a text brief with no picture at all."""

import json
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

from audiox_core.errors import InputError
from audiox_core.reel.naming import reel_folder
from audiox_core.reel.stages import analyse
from audiox_core.reel.storyboard import BOARD_FPS, Board, Card, board_sha256, card_frames, read_board, render_animatic
from audiox_core.video.probe import probe
from audiox_core.video.scenes import DetectorSettings

COLOURS = [(200, 40, 40), (40, 200, 40), (40, 40, 200)]


def still(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (320, 180)) -> Path:
    img = np.zeros((size[1], size[0], 3), np.uint8)
    img[:] = colour
    cv2.circle(img, (size[0] // 3, size[1] // 2), size[1] // 4, (255, 255, 255), -1)
    cv2.imwrite(str(path), img)
    return path


@pytest.fixture
def board_dir(tmp_path: Path) -> Path:
    for k, c in enumerate(COLOURS):
        still(tmp_path / f"card{k}.png", c)
    (tmp_path / "board.csv").write_text("still,seconds\ncard0.png,1.5\ncard1.png,2.04\ncard2.png,1\n")
    return tmp_path


def test_a_board_is_read_from_a_still_a_folder_a_csv_or_a_brief(board_dir: Path) -> None:
    assert read_board(board_dir / "card0.png", "card0.png", 8.0).cards == (Card(board_dir / "card0.png", 8.0),)
    folder = read_board(board_dir, "board", 2.0)
    assert [c.image.name for c in folder.cards] == ["card0.png", "card1.png", "card2.png"] and folder.picture
    csv = read_board(board_dir / "board.csv", "board.csv", 8.0)
    assert [(c.image.name, c.seconds) for c in csv.cards] == [
        ("card0.png", 1.5),
        ("card1.png", 2.04),
        ("card2.png", 1.0),
    ]
    (board_dir / "brief.txt").write_text("rain on a tin\n roof at night\n")
    brief = read_board(board_dir / "brief.txt", "brief.txt", 20.0)
    assert brief == Board((Card(None, 20.0),), picture=False, text="rain on a tin roof at night")
    changed = Board((Card(board_dir / "card0.png", 1.5),), picture=True)
    assert board_sha256(changed) != board_sha256(Board((Card(board_dir / "card0.png", 1.6),), picture=True))


@pytest.mark.parametrize(
    ("rows", "words"),
    [
        ("card0.png,2\ncard1.png,-1\n", "board.csv: row 3: duration -1 is not a positive number of seconds"),
        ("card0.png,2\ncard1.png,soon\n", "board.csv: row 3: duration 'soon' is not a number of seconds"),
        ("card0.png,2\nnotes.png,2\n", "board.csv: row 3: notes.png: not an image (OpenCV cannot read it as a still)"),
        ("card0.png,2\ngone.png,2\n", "board.csv: row 3: gone.png: no such still"),
        ("card0.png\n", "board.csv: row 2: 'card0.png' is not still,seconds"),
        ("", "board.csv: the storyboard has no rows (still,seconds)"),
    ],
    ids=["negative", "not-a-number", "not-an-image", "missing", "no-duration", "empty"],
)
def test_a_bad_storyboard_row_is_one_line_naming_the_row(board_dir: Path, rows: str, words: str) -> None:
    (board_dir / "notes.png").write_text("not a picture\n")
    (board_dir / "board.csv").write_text("still,seconds\n" + rows)
    with pytest.raises(InputError) as raised:
        read_board(board_dir / "board.csv", "board.csv", 8.0)
    assert str(raised.value) == words


def test_bad_stills_folders_and_briefs_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "notes.png").write_text("not a picture\n")
    (tmp_path / "empty").mkdir()
    (tmp_path / "blank.txt").write_text("  \n")
    still(tmp_path / "ok.png", COLOURS[0])
    for path, seconds, words in [
        (tmp_path / "notes.png", 8.0, "notes.png: not an image (OpenCV cannot read it as a still)"),
        (tmp_path / "empty", 8.0, "empty: no stills in the folder"),
        (tmp_path / "blank.txt", 8.0, "blank.txt: the text brief is empty (its text is the prompt)"),
        (tmp_path / "ok.png", -2.0, "ok.png: seconds -2 is not a positive number of seconds"),
        (tmp_path / "ok.png", 0.01, "ok.png: seconds 0.01 is shorter than one frame at 24 fps"),
    ]:
        with pytest.raises(InputError) as raised:
            read_board(path, path.name, seconds)
        assert str(raised.value).startswith(words)


def test_card_lengths_are_rounded_on_the_running_total_so_nothing_drifts() -> None:
    """Expected: 3 000 cards of 1/3 s hold exactly 24 000 frames (1 000 s at 24 fps), no card more than
    one frame off its own length."""
    board = Board(tuple(Card(None, 1 / 3) for _ in range(3000)), picture=False)
    frames = card_frames(board)
    assert sum(frames) == 24_000 and set(frames) == {8}
    uneven = Board(tuple(Card(None, 0.3) for _ in range(1000)), picture=False)
    assert sum(card_frames(uneven)) == round(Fraction(300) * BOARD_FPS) and set(card_frames(uneven)) <= {7, 8}


def test_the_animatic_holds_each_card_and_its_scenes_are_the_cards(board_dir: Path, tmp_path: Path) -> None:
    """Expected: 36 + 49 + 24 frames at 24 fps, three scenes cut exactly where the cards change (the
    detector is not asked: flat stills are not what it is tuned for), and the model's frames of the
    first card are the still itself, squashed to the model's size, on the 0–255 scale (CLIP's input
    is divided by 255 once, in the conditioner, not twice as in the official image path)."""
    from audiox_core.model.generate import video_tensor
    from audiox_core.model.spec import load_config

    board = read_board(board_dir / "board.csv", "board.csv", 8.0)
    animatic = render_animatic(board, tmp_path / "animatic.mp4")
    assert animatic.cuts == (36, 85)
    assert probe(animatic.path).video.frames == 109
    config = load_config("tiny")
    size, fps = config.video.clip.image_size, config.video.video_fps
    analysis = analyse(
        animatic.path, tmp_path, DetectorSettings(), frame_fps=fps, frame_size=size, known_cuts=animatic.cuts
    )
    assert [(s.start_frame, s.end_frame) for s in analysis.scenes.scenes] == [(0, 36), (36, 85), (85, 109)]
    seen = analysis.frames.between(0.0, 1.0)
    img = cv2.cvtColor(cv2.imread(str(board_dir / "card0.png")), cv2.COLOR_BGR2RGB)
    expected = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32)
    assert np.abs(seen.astype(np.float32) - expected).mean(axis=(1, 2, 3)).max() < 6.0
    assert video_tensor(config, seen).max() > 250  # 0–255 into the conditioner, which divides once


@pytest.mark.integration
def test_a_storyboard_run_has_one_scene_per_card_and_the_usual_outputs(prefect_api, home, board_dir, tmp_path) -> None:
    from flows.soundtrack import soundtrack

    result = soundtrack(str(board_dir / "board.csv"), str(tmp_path / "out"), {"steps": 2})
    folder = tmp_path / "out" / reel_folder(str(board_dir / "board.csv"))
    scenes = json.loads((folder / "scenes.json").read_text())["scenes"]
    assert [(s["start_frame"], s["end_frame"]) for s in scenes] == [(0, 36), (36, 85), (85, 109)]
    assert result["scenes"] == 3 and (folder / "soundtrack.mp4").is_file() and (folder / "mix.wav").is_file()
    assert len(list((folder / "cues").glob("scene000[0-2]_foley.wav"))) == 3
    document = json.loads((folder / "provenance.json").read_text())
    assert document["source"]["sha256"] == board_sha256(read_board(board_dir / "board.csv", "b", 8.0))


@pytest.mark.integration
def test_a_text_brief_writes_one_cue_with_no_picture_and_its_provenance(prefect_api, home, tmp_path) -> None:
    """Expected: one music cue of 6 s whose prompt is the brief, made from no frames at all (the
    conditioning hash is that of nothing), recorded in the database and provenance.json."""
    import hashlib

    from db import repository
    from db.session import database_url
    from flows.soundtrack import soundtrack

    brief = tmp_path / "rain_at_night.txt"
    brief.write_text("rain on a tin roof at night\n")
    result = soundtrack(str(brief), str(tmp_path / "out"), {"steps": 2, "seconds": 6.0, "kind": "music"})
    folder = tmp_path / "out" / reel_folder(str(brief))
    assert sorted(p.name for p in (folder / "cues").iterdir()) == ["scene0000_music.wav"]
    from audiox_core.sound.audio import read_wav

    audio, rate = read_wav(folder / "cues" / "scene0000_music.wav")
    assert audio.shape[1] == 6 * rate and np.abs(audio).max() > 0
    (generation,) = json.loads((folder / "provenance.json").read_text())["generations"]
    assert generation["prompt"] == "rain on a tin roof at night" and generation["kind"] == "music"
    assert generation["conditioning_sha256"] == hashlib.sha256(b"").hexdigest()
    run = repository.get_run(database_url(home), result["run_id"])
    assert run.status == "succeeded" and [g.prompt for s in run.scenes for g in s.generations] == [generation["prompt"]]


@pytest.mark.integration
def test_the_cli_scores_a_still_and_a_text_brief(prefect_api, home, tmp_path, capsys) -> None:
    """`run still.png --seconds 3` and `run --text … --seconds 4 --kind music` as a user types them.
    Expected: the still is one scene of 72 frames with its Foley and music cues; the brief one
    music cue of 4 s; a still that is not an image and a brief with a bad kind are one line each,
    exit 1, the run recorded as failed."""
    from audiox_core.sound.audio import read_wav
    from cli.main import main

    out = tmp_path / "out"
    picture = still(tmp_path / "still.png", COLOURS[1])
    assert main(["run", str(picture), "--seconds", "3", "--steps", "2", "--out", str(out)]) == 0
    scenes = json.loads((out / reel_folder(str(picture)) / "scenes.json").read_text())["scenes"]
    assert [(s["start_frame"], s["end_frame"]) for s in scenes] == [(0, 72)]
    cues = sorted(p.name for p in (out / reel_folder(str(picture)) / "cues").iterdir())
    assert cues == ["scene0000_foley.wav", "scene0000_music.wav"]
    text = ["--text", "a slow string drone", "--seconds", "4", "--kind", "music"]
    assert main(["run", *text, "--steps", "2", "--out", str(out)]) == 0
    (made,) = [
        p for p in out.iterdir() if p.name.startswith("a_slow_string_drone") and p.is_symlink()
    ]  # the current version
    audio, rate = read_wav(made / "cues" / "scene0000_music.wav")
    assert audio.shape[1] == 4 * rate
    capsys.readouterr()
    (tmp_path / "notes.png").write_text("not a picture\n")
    assert main(["run", str(tmp_path / "notes.png"), "--steps", "2", "--out", str(tmp_path / "out2")]) == 1
    assert main(["run", "--text", "rain", "--kind", "drums", "--out", str(tmp_path / "out2")]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: {tmp_path / 'notes.png'}: not an image (OpenCV cannot read it as a still)",
        "error: settings: kind 'drums' is not one of foley, music",
    ]
    assert not (tmp_path / "out2").exists()
