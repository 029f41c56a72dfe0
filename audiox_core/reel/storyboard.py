"""Stills, storyboards and text briefs as reels: an animatic, one scene per card with its cuts known, not detected."""

from __future__ import annotations

import csv
import hashlib
import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2

from audiox_core.errors import InputError
from audiox_core.model.prompt_length import MAX_PROMPT_CHARS
from audiox_core.reel.cues import cue_seed
from audiox_core.reel.cuesheet import CueSheet, SheetCue
from audiox_core.sound.timeline import CueKind
from audiox_core.video.ffmpeg import run

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
BOARD_FPS = Fraction(24)
MAX_WIDTH = 1280  # an animatic is a review picture: larger stills are scaled down to this width
BLANK_SIZE = (640, 360)  # a text brief's blank card


@dataclass(frozen=True)
class Card:
    image: Path | None  # None: a blank card (a text brief: no picture)
    seconds: float


@dataclass(frozen=True)
class Board:
    cards: tuple[Card, ...]
    picture: bool  # False for a text brief: the model hears the prompt alone
    text: str = ""  # a text brief's prompt


@dataclass(frozen=True)
class Animatic:
    path: Path
    cuts: tuple[int, ...]  # the frames where a card starts, after the first
    picture: bool
    text: str


def board_kind(path: Path) -> str | None:
    """``still``, ``storyboard`` or ``brief`` for a source that is a board; None for footage."""
    if path.is_dir() or path.suffix.lower() == ".csv":
        return "storyboard"
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return "still"
    if path.suffix.lower() == ".txt":
        return "brief"
    return None


def read_board(path: Path, shown: str, seconds: float) -> Board:
    """The board at ``path`` (named ``shown`` in errors), each still or brief ``seconds`` long unless
    its CSV row says otherwise; one line naming the entry for a still that is not an image, a row
    with a duration that is not a positive number, an empty folder or an empty brief."""
    kind = board_kind(path)
    if kind == "brief":
        text = " ".join(path.read_text(encoding="utf-8", errors="replace").split())
        if not text:
            raise InputError(f"{shown}: the text brief is empty (its text is the prompt)")
        if len(text) > MAX_PROMPT_CHARS:
            raise InputError(
                f"{shown}: the brief is {len(text)} characters long; a prompt's limit is {MAX_PROMPT_CHARS}"
            )
        return Board((Card(None, _positive(seconds, f"{shown}: seconds")),), picture=False, text=text)
    if kind == "still":
        return Board((Card(_image(path, shown), _positive(seconds, f"{shown}: seconds")),), picture=True)
    if path.is_dir():
        stills = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not stills:
            raise InputError(f"{shown}: no stills in the folder ({', '.join(IMAGE_SUFFIXES)})")
        length = _positive(seconds, f"{shown}: seconds")
        return Board(tuple(Card(_image(p, f"{shown}/{p.name}"), length) for p in stills), picture=True)
    return Board(_csv_cards(path, shown), picture=True)


def _csv_cards(path: Path, shown: str) -> tuple[Card, ...]:
    with path.open(newline="", encoding="utf-8") as f:
        rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
    first = 1  # the file's row number of rows[0], for the errors
    if rows and rows[0][0].strip().lower() in ("still", "image", "file"):  # a header row
        rows, first = rows[1:], 2
    if not rows:
        raise InputError(f"{shown}: the storyboard has no rows (still,seconds)")
    cards = []
    for n, row in enumerate(rows, start=first):
        label = f"{shown}: row {n}"
        if len(row) < 2:
            raise InputError(f"{label}: {','.join(row)!r} is not still,seconds")
        try:
            seconds = float(row[1])
        except ValueError:
            raise InputError(f"{label}: duration {row[1].strip()!r} is not a number of seconds") from None
        image = (path.parent / row[0].strip()).resolve()
        cards.append(Card(_image(image, f"{label}: {row[0].strip()}"), _positive(seconds, f"{label}: duration")))
    return tuple(cards)


def _positive(seconds: float, label: str) -> float:
    if not (math.isfinite(seconds) and seconds > 0):
        raise InputError(f"{label} {seconds:g} is not a positive number of seconds")
    if seconds * BOARD_FPS < 1:
        raise InputError(f"{label} {seconds:g} is shorter than one frame at {BOARD_FPS} fps")
    return seconds


def _image(path: Path, shown: str) -> Path:
    if not path.is_file():
        raise InputError(f"{shown}: no such still")
    if cv2.imread(str(path), cv2.IMREAD_REDUCED_COLOR_8) is None:
        raise InputError(f"{shown}: not an image (OpenCV cannot read it as a still)")
    return path


def board_sha256(board: Board) -> str:
    """The board's identity, as a source's sha256: each card's image bytes (or the brief's text) and length."""
    h = hashlib.sha256(f"board v1 picture={board.picture} text={board.text}\n".encode())
    for card in board.cards:
        image = hashlib.sha256(card.image.read_bytes()).hexdigest() if card.image else "blank"
        h.update(f"{image} {card.seconds!r}\n".encode())
    return h.hexdigest()


def card_frames(board: Board) -> list[int]:
    """Each card's frame count at ``BOARD_FPS``: rounded on the running total, so lengths never drift."""
    ends = [round(Fraction(sum(c.seconds for c in board.cards[: k + 1])) * BOARD_FPS) for k in range(len(board.cards))]
    return [b - a for a, b in zip([0, *ends], ends)]


def _size(board: Board) -> tuple[int, int]:
    if board.cards[0].image is None:
        return BLANK_SIZE
    h, w = cv2.imread(str(board.cards[0].image), cv2.IMREAD_COLOR).shape[:2]
    if w > MAX_WIDTH:
        w, h = MAX_WIDTH, round(h * MAX_WIDTH / w)
    return w + w % 2, h + h % 2  # H.264 in 4:2:0 wants even sides


def render_animatic(board: Board, out: Path) -> Animatic:
    """The board as an H.264 video at ``BOARD_FPS``: each card held for its frames, stills fitted
    into the first still's frame (letterboxed), a blank card black."""
    w, h = _size(board)
    frames = card_frames(board)
    inputs, chains = [], []
    for k, (card, n) in enumerate(zip(board.cards, frames)):
        if card.image is None:
            inputs += ["-f", "lavfi", "-i", f"color=c=black:s={w}x{h}:r={BOARD_FPS}"]
        else:
            inputs += ["-loop", "1", "-framerate", str(BOARD_FPS), "-i", str(card.image)]
        fit = f"scale={w}:{h}:force_original_aspect_ratio=decrease,pad={w}:{h}:(ow-iw)/2:(oh-ih)/2,setsar=1"
        chains.append(f"[{k}:v]{fit},format=yuv420p,trim=end_frame={n},setpts=PTS-STARTPTS[v{k}]")
    joined = "".join(f"[v{k}]" for k in range(len(frames)))
    graph = ";".join(chains) + f";{joined}concat=n={len(frames)}:v=1:a=0[out]"
    encode = ["-map", "[out]", "-c:v", "libx264", "-preset", "veryfast", "-tune", "stillimage", "-threads", "1"]
    args = ["-v", "error", "-y", *inputs, "-filter_complex", graph, *encode, "-r", str(BOARD_FPS), str(out)]
    run("ffmpeg", args, subject=out, what="the animatic could not be rendered")
    starts = [sum(frames[:k]) for k in range(1, len(frames))]
    return Animatic(out, tuple(starts), board.picture, board.text)


def brief_sheet(reel: str, fps: Fraction, text: str, kind: CueKind, run_seed: int) -> CueSheet:
    """A text brief's cue sheet: one cue of ``kind`` over the whole (blank) card, the brief its prompt."""
    cue_id = {"foley": "F001", "music": "M01"}[kind]
    return CueSheet(reel, fps, (SheetCue(cue_id, kind, text, cue_seed(run_seed, 0, kind), scenes=(0, 0)),))
