"""The cue sheet (``cues.yaml``): a reel's spotting document, what the producer edits; parsed, checked and drafted."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

import yaml

from audiox_core.errors import InputError
from audiox_core.model.config import TaskPrompts
from audiox_core.model.inpaint import Span, checked_spans
from audiox_core.model.prompt_length import MAX_PROMPT_CHARS
from audiox_core.producer_text import csv_table
from audiox_core.reel.cues import Cue, SceneLook, cue_seed, look_note, look_words, prompts
from audiox_core.sound.timeline import CUE_KINDS, CueKind, CueSpan
from audiox_core.video.scenes import Scene
from audiox_core.video.timecode import frame_from_timecode, timecode

SHEET_FORMAT = 1
MAX_MUSIC_S = 120.0  # a drafted music cue stops growing at two minutes, as a score's cues do
GAIN_RANGE_DB = (-60.0, 12.0)
MAX_TAKES = 4  # a producer compares a few takes of a cue, not a sweep
_FIELDS = {
    *("id", "kind", "scenes", "in", "out", "prompt", "seed", "gain_db", "mute", "title", "look"),
    *("regenerate", "prompt_audio", "prompt_audio_kept", "takes"),
}


def take_seed(seed: int, take: int) -> int:
    """The seed of take ``take`` (1 is the cue itself) of a cue with ``seed``: the next seeds in turn."""
    return (seed + take - 1) % 2**31


@dataclass(frozen=True)
class SheetCue:
    id: str
    kind: CueKind
    prompt: str
    seed: int
    scenes: tuple[int, int] | None = None  # first and last scene index, both included
    tc_in: str | None = None  # or a timecode span at the reel's rate, out exclusive
    tc_out: str | None = None
    gain_db: float = 0.0
    mute: bool = False
    title: str = ""  # music: the title on the distributor's cue sheet
    look: str = ""  # what the spotting measured of the cue's first scene (a note: never sent to the model)
    # spans of the previous version to make again, as (in, out) timecodes on the reel (out exclusive);
    # the rest of the cue is kept bit for bit (model/inpaint.py)
    regenerate: tuple[tuple[str, str], ...] = ()
    # a sound the cue continues (a path or URI: a composer's sketch, a temp track), kept at its start
    # or, with prompt_audio_kept false, only heard by the model (given_sound.py)
    prompt_audio: str | None = None
    prompt_audio_kept: bool = True
    # takes to choose from: the cue (take 1) and takes 2 … n with the next seeds, made beside it for
    # the review page; the mix uses the cue until the producer chooses a take (direction.py)
    takes: int = 1


@dataclass(frozen=True)
class SpannedCue:
    """A sheet cue resolved against the reel's scenes: its span in seconds and the scene it starts in."""

    cue: SheetCue
    scene_index: int
    start_s: float
    end_s: float
    regenerate: tuple[Span, ...] = ()  # the sheet's regenerate spans, in seconds from the cue's start

    def as_cue(self) -> Cue:
        c = self.cue
        return Cue(self.scene_index, c.kind, c.prompt, c.seed, self.regenerate, c.prompt_audio, c.prompt_audio_kept)

    def as_span(self) -> CueSpan:
        return CueSpan(self.scene_index, self.cue.kind, self.start_s, self.end_s, self.cue.gain_db)


@dataclass(frozen=True)
class CueSheet:
    reel: str
    fps: Fraction
    cues: tuple[SheetCue, ...]
    draft_seed: int | None = None  # the run seed the draft was made with (None: written by hand)

    def to_yaml(self) -> str:
        doc: dict[str, Any] = {
            "format": SHEET_FORMAT,
            "reel": self.reel,
            "fps": f"{self.fps.numerator}/{self.fps.denominator}",
        }
        if self.draft_seed is not None:
            doc["draft_seed"] = self.draft_seed
        doc["cues"] = [_cue_dict(c) for c in self.cues]
        return "# AudioX Studio cue sheet: edit prompts, seeds, gains, mutes and spans; edits win on reruns\n" + (
            yaml.dump(doc, Dumper=_SheetDumper, sort_keys=False, allow_unicode=True, width=120)
        )

    def cue(self, cue_id: str) -> SheetCue:
        for c in self.cues:
            if c.id == cue_id:
                return c
        raise InputError(
            f"cue sheet of {self.reel}: no cue {cue_id!r} (its cues: {', '.join(c.id for c in self.cues)})"
        )

    def with_cue(self, changed: SheetCue) -> CueSheet:
        """The sheet with one cue replaced (by id); an edited sheet is no longer a draft."""
        self.cue(changed.id)
        return replace(self, cues=tuple(changed if c.id == changed.id else c for c in self.cues))


class _FlowList(list):
    """A list written inline (``scenes: [3, 5]``), as a person writes a span."""


class _SheetDumper(yaml.SafeDumper):
    pass


_SheetDumper.add_representer(_FlowList, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True))


def _cue_dict(c: SheetCue) -> dict[str, Any]:
    d: dict[str, Any] = {"id": c.id, "kind": c.kind}
    if c.scenes is not None:
        d["scenes"] = _FlowList(c.scenes)
    else:
        d["in"], d["out"] = c.tc_in, c.tc_out
    d["prompt"], d["seed"] = c.prompt, c.seed
    if c.gain_db:
        d["gain_db"] = c.gain_db
    if c.mute:
        d["mute"] = True
    if c.title:
        d["title"] = c.title
    if c.look:
        d["look"] = c.look
    if c.regenerate:
        d["regenerate"] = [{"in": a, "out": b} for a, b in c.regenerate]
    if c.prompt_audio is not None:
        d["prompt_audio"] = c.prompt_audio
        if not c.prompt_audio_kept:
            d["prompt_audio_kept"] = False
    if c.takes > 1:
        d["takes"] = c.takes
    return d


def parse_sheet(text: str, name: str) -> CueSheet:
    """A cue sheet from its YAML; ``name`` (the file) opens every error line."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise InputError(f"{name}: not valid YAML{where}: {getattr(e, 'problem', None) or e}") from e
    if not isinstance(doc, dict) or not isinstance(doc.get("cues"), list):
        raise InputError(f"{name}: a cue sheet is a mapping with a list of cues under 'cues'")
    if doc.get("format", SHEET_FORMAT) != SHEET_FORMAT:
        raise InputError(f"{name}: cue sheet format {doc.get('format')!r}; this version reads format {SHEET_FORMAT}")
    try:
        fps = Fraction(str(doc.get("fps", "")))
    except (ValueError, ZeroDivisionError) as e:
        raise InputError(f"{name}: fps {doc.get('fps')!r} is not a frame rate such as 25 or 24000/1001") from e
    if fps <= 0:
        raise InputError(f"{name}: fps {doc.get('fps')!r} is not a frame rate such as 25 or 24000/1001")
    cues = tuple(_parse_cue(entry, i, name) for i, entry in enumerate(doc["cues"]))
    seen: set[str] = set()
    for c in cues:
        if c.id in seen:
            raise InputError(f"{name}: cue {c.id}: the id is used twice")
        seen.add(c.id)
    draft_seed = doc.get("draft_seed")
    return CueSheet(str(doc.get("reel", "")), fps, cues, draft_seed if isinstance(draft_seed, int) else None)


def _parse_cue(entry: Any, i: int, name: str) -> SheetCue:
    if not isinstance(entry, dict):
        raise InputError(f"{name}: cue #{i + 1}: a cue is a mapping (id, kind, scenes or in/out, prompt, seed)")
    label = f"{name}: cue {entry.get('id', f'#{i + 1}')}"
    unknown = sorted(set(entry) - _FIELDS)
    if unknown:
        raise InputError(f"{label}: unknown field {unknown[0]!r} (fields: {', '.join(sorted(_FIELDS))})")
    cue_id = entry.get("id")
    if not isinstance(cue_id, str) or not cue_id.strip():
        raise InputError(f"{label}: needs an id (a short name such as F001 or M01)")
    kind = entry.get("kind")
    if kind not in CUE_KINDS:
        raise InputError(f"{label}: kind {kind!r} is not one of {', '.join(CUE_KINDS)}")
    prompt = entry.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise InputError(f"{label}: needs a prompt (the text the model is given)")
    if len(prompt.strip()) > MAX_PROMPT_CHARS:
        raise InputError(
            f"{label}: its prompt is {len(prompt.strip())} characters long; the limit is {MAX_PROMPT_CHARS}"
        )
    seed = entry.get("seed")
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**31:
        raise InputError(f"{label}: seed {seed!r} is not a whole number from 0 to 2147483647")
    gain = entry.get("gain_db", 0.0)
    if isinstance(gain, bool) or not isinstance(gain, int | float) or not math.isfinite(gain):
        raise InputError(f"{label}: gain_db {gain!r} is not a number of dB")
    if not GAIN_RANGE_DB[0] <= gain <= GAIN_RANGE_DB[1]:
        raise InputError(f"{label}: gain_db {gain} is outside {GAIN_RANGE_DB[0]:g} … +{GAIN_RANGE_DB[1]:g} dB")
    mute = entry.get("mute", False)
    if not isinstance(mute, bool):
        raise InputError(f"{label}: mute {mute!r} is not true or false")
    scenes, tc_in, tc_out = _parse_span(entry, label)
    regenerate = _parse_regenerate(entry.get("regenerate", []), label)
    prompt_audio = entry.get("prompt_audio")
    if prompt_audio is not None and (not isinstance(prompt_audio, str) or not prompt_audio.strip()):
        raise InputError(f"{label}: prompt_audio {prompt_audio!r} is not a file path or URI")
    kept = entry.get("prompt_audio_kept", True)
    if not isinstance(kept, bool):
        raise InputError(f"{label}: prompt_audio_kept {kept!r} is not true or false")
    if "prompt_audio_kept" in entry and prompt_audio is None:
        raise InputError(f"{label}: prompt_audio_kept is set but the cue has no prompt_audio")
    takes = entry.get("takes", 1)
    if not isinstance(takes, int) or isinstance(takes, bool) or not 1 <= takes <= MAX_TAKES:
        raise InputError(f"{label}: takes {takes!r} is not a whole number from 1 to {MAX_TAKES}")
    return SheetCue(
        cue_id.strip(),
        kind,
        prompt.strip(),
        seed,
        scenes,
        tc_in,
        tc_out,
        float(gain),
        mute,
        str(entry.get("title", "")),
        str(entry.get("look", "")),
        regenerate,
        prompt_audio.strip() if prompt_audio else None,
        kept,
        takes,
    )


def _parse_regenerate(value: Any, label: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, list):
        raise InputError(f"{label}: regenerate {value!r} is not a list of {{in: TC, out: TC}} spans")
    spans = []
    for k, span in enumerate(value):
        if not isinstance(span, dict) or set(span) != {"in", "out"}:
            raise InputError(f"{label}: regenerate #{k + 1} {span!r} is not a span {{in: TC, out: TC}}")
        for what in ("in", "out"):
            if not isinstance(span[what], str) or not _looks_like_timecode(span[what]):
                raise InputError(f"{label}: regenerate #{k + 1}: {what} {span[what]!r} is not a timecode HH:MM:SS:FF")
        spans.append((span["in"], span["out"]))
    return tuple(spans)


def parse_span_text(text: str, label: str) -> tuple[tuple[str, str], ...]:
    """Spans as a producer types them, ``00:00:12:00–00:00:15:00`` (a dash of any kind), several
    separated by commas; one line naming ``label`` and the span that is not two timecodes."""
    spans = []
    for k, part in enumerate(p.strip() for p in text.replace(";", ",").split(",")):
        ends = [e.strip() for e in part.replace("–", "-").replace("—", "-").split("-")]
        if len(ends) != 2 or not all(_looks_like_timecode(e) for e in ends):
            raise InputError(f"{label}: regenerate span #{k + 1} {part!r} is not HH:MM:SS:FF-HH:MM:SS:FF")
        spans.append((ends[0], ends[1]))
    return tuple(spans)


def _parse_span(entry: dict[str, Any], label: str) -> tuple[tuple[int, int] | None, str | None, str | None]:
    has_scenes, has_tc = "scenes" in entry, "in" in entry or "out" in entry
    if has_scenes == has_tc:
        raise InputError(f"{label}: give its span as scenes: [first, last] or as in/out timecodes, one of the two")
    if has_scenes:
        s = entry["scenes"]
        if isinstance(s, int) and not isinstance(s, bool):
            s = [s, s]
        if not (isinstance(s, list) and len(s) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in s)):
            raise InputError(f"{label}: scenes {entry['scenes']!r} is not [first, last] (scene numbers)")
        if s[0] > s[1]:
            raise InputError(f"{label}: scenes {s}: the first scene comes after the last")
        return (s[0], s[1]), None, None
    tc_in, tc_out = entry.get("in"), entry.get("out")
    for what, tc in (("in", tc_in), ("out", tc_out)):
        if not isinstance(tc, str) or not _looks_like_timecode(tc):
            raise InputError(f"{label}: {what} {tc!r} is not a timecode HH:MM:SS:FF")
    return None, tc_in, tc_out


def _looks_like_timecode(tc: str) -> bool:
    parts = tc.replace(";", ":").split(":")
    return len(parts) == 4 and all(p.isdigit() and len(p) == 2 for p in parts)


def for_reel(sheet: CueSheet, reel: str, name: str) -> CueSheet:
    """``sheet`` when it was written for ``reel``; else one line naming both reels and how to apply it
    (name this reel in it), so another reel's sheet is never followed, nor stored as this reel's."""
    if sheet.reel == reel:
        return sheet
    apply = f"to apply it to {reel}, set reel: {json.dumps(reel, ensure_ascii=False)} in the sheet"
    if not sheet.reel:
        raise InputError(f"{name}: names no reel; {apply}")
    raise InputError(f"{name}: written for reel {sheet.reel!r}, not for {reel!r} (the reel this run makes); {apply}")


def resolve(sheet: CueSheet, scenes: Sequence[Scene], fps: Fraction, name: str) -> list[SpannedCue]:
    """The sheet's cues placed on the reel's scenes, checked: spans inside the reel, Foley within one
    scene, no overlapping music cues, no two cues of one kind starting in one scene."""
    if sheet.fps != fps:
        raise InputError(f"{name}: written for {sheet.fps} fps; the reel runs at {fps} fps")
    by_index = {s.index: s for s in scenes}
    first, last = scenes[0].index, scenes[-1].index
    spanned = []
    for c in sheet.cues:
        label = f"{name}: cue {c.id}"
        if c.scenes is not None:
            a, b = c.scenes
            if a not in by_index or b not in by_index:
                bad = a if a not in by_index else b
                raise InputError(f"{label}: scene {bad} is not in the reel (its scenes: {first}–{last})")
            start_s, end_s = by_index[a].start_s, by_index[b].end_s
        else:
            assert c.tc_in is not None and c.tc_out is not None
            start_s, end_s = _tc_seconds(c.tc_in, fps, scenes), _tc_seconds(c.tc_out, fps, scenes)
            reel_end = scenes[-1].end_tc
            if not start_s < end_s:
                raise InputError(f"{label}: in {c.tc_in} is not before out {c.tc_out}")
            if start_s < scenes[0].start_s or end_s > scenes[-1].end_s + 1e-9:
                raise InputError(f"{label}: {c.tc_in}–{c.tc_out} is outside the reel ({scenes[0].start_tc}–{reel_end})")
        starts_in = next(s for s in reversed(scenes) if s.start_s <= start_s + 1e-9)
        if c.kind == "foley" and end_s > starts_in.end_s + 1e-9:
            raise InputError(f"{label}: a Foley cue stays within one scene; it runs from scene {starts_in.index} on")
        spans = [
            Span(_tc_seconds(a, fps, scenes) - start_s, _tc_seconds(b, fps, scenes) - start_s) for a, b in c.regenerate
        ]
        spans = checked_spans(spans, end_s - start_s, 1 / float(fps), f"{label}: regenerate")
        spanned.append(SpannedCue(c, starts_in.index, start_s, end_s, tuple(spans)))
    _check_clashes(spanned, name)
    return sorted(spanned, key=lambda s: (s.start_s, CUE_KINDS.index(s.cue.kind)))


def _tc_seconds(tc: str, fps: Fraction, scenes: Sequence[Scene]) -> float:
    """A timecode's time on the reel: a scene's own start where it names one (exact PTS), else frames / fps
    counted from the first scene's start."""
    frame = frame_from_timecode(tc, fps)
    for s in scenes:
        if s.start_frame == frame:
            return s.start_s
    if frame == scenes[-1].end_frame:
        return scenes[-1].end_s
    return scenes[0].start_s + float(Fraction(frame - scenes[0].start_frame) / fps)


def _check_clashes(spanned: list[SpannedCue], name: str) -> None:
    music = sorted((s for s in spanned if s.cue.kind == "music"), key=lambda s: s.start_s)
    for a, b in zip(music, music[1:]):
        if b.start_s < a.end_s - 1e-9:
            raise InputError(f"{name}: music cues {a.cue.id} and {b.cue.id} overlap (one score plays at a time)")
    starts: dict[tuple[int, str], str] = {}  # the pipeline knows a cue by its first scene and kind (CueId)
    for s in spanned:
        key = (s.scene_index, s.cue.kind)
        if key in starts:
            raise InputError(
                f"{name}: cues {starts[key]} and {s.cue.id} are both {s.cue.kind} cues starting in scene {s.scene_index}"
            )
        starts[key] = s.cue.id


def draft_sheet(
    reel: str,
    scenes: Sequence[Scene],
    fps: Fraction,
    looks: Sequence[SceneLook],
    run_seed: int,
    task: TaskPrompts = TaskPrompts(),
) -> CueSheet:
    """The first run's sheet, in the model's own words (``task``): a Foley cue per scene; music cues
    over runs of consecutive scenes of the same mood (at most ``MAX_MUSIC_S`` each), not one per cut.
    Each cue notes the look of its first scene."""
    cues: list[SheetCue] = []
    text = prompts(task)
    moods = [look_words(look)["mood"] for look in looks]
    for scene, look in zip(scenes, looks):
        s = scene.index
        cues.append(
            SheetCue(f"F{s:03d}", "foley", text["foley"], cue_seed(run_seed, s, "foley"), (s, s), look=look_note(look))
        )
    runs: list[list[int]] = []
    for i, scene in enumerate(scenes):
        if runs and moods[runs[-1][0]] == moods[i]:
            if scene.end_s - scenes[runs[-1][0]].start_s <= MAX_MUSIC_S:
                runs[-1].append(i)
                continue
        runs.append([i])
    for n, run in enumerate(runs, start=1):
        a, b = scenes[run[0]].index, scenes[run[-1]].index
        cues.append(
            SheetCue(
                f"M{n:02d}",
                "music",
                text["music"],
                cue_seed(run_seed, a, "music"),
                (a, b),
                title=f"{reel} M{n:02d}",
                look=look_note(looks[run[0]]),
            )
        )
    return CueSheet(reel, fps, tuple(cues), draft_seed=run_seed)


def is_draft(
    sheet: CueSheet,
    scenes: Sequence[Scene],
    fps: Fraction,
    looks: Sequence[SceneLook],
    task: TaskPrompts = TaskPrompts(),
) -> bool:
    """Whether ``sheet`` is exactly the draft its own seed gives for these scenes (nobody edited it)."""
    if sheet.draft_seed is None:
        return False
    return draft_sheet(sheet.reel, scenes, fps, looks, sheet.draft_seed, task).cues == sheet.cues


def frame_timecode(seconds: float, fps: Fraction, scenes: Sequence[Scene]) -> str:
    """The timecode of a time on the reel (the frame it falls in), for the exports."""
    frame = scenes[0].start_frame + math.floor(round((seconds - scenes[0].start_s) * fps, 6))
    return timecode(max(0, frame), fps)


MUSIC_CSV_COLUMNS = ("cue", "title", "in", "out", "duration", "usage")


def music_cue_csv(spanned: Sequence[SpannedCue], fps: Fraction, scenes: Sequence[Scene]) -> str:
    """The distributor's music cue sheet: cue number, title, in and out timecode, duration (M:SS) and
    usage (BI: background instrumental, as every generated score cue is); muted cues are not used.
    The titles are the producer's: no title is a formula in a spreadsheet (``csv_table``)."""
    music = sorted((s for s in spanned if s.cue.kind == "music" and not s.cue.mute), key=lambda s: s.start_s)
    rows = []
    for n, s in enumerate(music, start=1):
        seconds = round(s.end_s - s.start_s)
        tc_in, tc_out = frame_timecode(s.start_s, fps, scenes), frame_timecode(s.end_s, fps, scenes)
        rows.append((n, s.cue.title or s.cue.id, tc_in, tc_out, f"{seconds // 60}:{seconds % 60:02d}", "BI"))
    return csv_table(MUSIC_CSV_COLUMNS, rows, numeric={"cue"})
