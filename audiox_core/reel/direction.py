"""A producer's direction on a version: approve it, or change cues (new prompt, new seed, mute, gain,
spans of a cue to make again) with a note. The form the Prefect UI shows when a run waits for review is drawn from these models'
JSON schema; ``apply_changes`` turns the changes into the next version's cue sheet.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

from pydantic import BaseModel, Field

from audiox_core.errors import InputError
from audiox_core.model.prompt_length import MAX_PROMPT_CHARS
from audiox_core.reel.cuesheet import GAIN_RANGE_DB, MAX_TAKES, CueSheet, parse_span_text, take_seed

APPROVE, CHANGES = "approve", "request changes"
KEEP_SEED = -1


class CueChange(BaseModel):
    """What to change on one cue. Every field has a plain default that keeps the cue as it is, so the
    UI's form shows plain inputs (no "None" type switches): an empty prompt, seed −1, mute "keep",
    gain change 0 dB."""

    cue: str = Field(min_length=1, description="the cue's id in the cue sheet (F001, M01, …)")
    prompt: str = Field(default="", description=f"new prompt, at most {MAX_PROMPT_CHARS} characters (empty: keep it)")
    seed: int = Field(default=KEEP_SEED, ge=KEEP_SEED, lt=2**31, description="new seed for another take (-1: keep it)")
    mute: Literal["keep", "mute", "unmute"] = Field(default="keep", description="mute or unmute the cue")
    gain_change_db: float = Field(default=0.0, ge=-24.0, le=24.0, description="change its gain by this many dB")
    regenerate: str = Field(
        default="",
        description="only these spans of the cue made again, the rest kept bit for bit: 00:00:12:00-00:00:15:00"
        " (reel timecodes; several: comma-separated); empty: a new prompt or seed makes the whole cue again",
    )
    takes: int = Field(
        default=0,
        ge=0,
        le=MAX_TAKES,
        description=f"make this many takes of the cue (the cue and the next seeds, 2 to {MAX_TAKES}) to play on the"
        " review page and choose from (0: keep; 1: no more takes)",
    )
    take: int = Field(
        default=0,
        ge=0,
        le=MAX_TAKES,
        description="use this take of the version on review in the next version (its number on the review page;"
        " 0: keep the cue)",
    )


class Direction(BaseModel):
    """The producer's decision on the version on review."""

    decision: Literal["approve", "request changes"] = Field(description="approve this version, or ask for changes")
    reviewer: str = Field(min_length=1, description="who decides (recorded with the decision)")
    note: str = Field(default="", description="a note for the record")
    comments: str = Field(
        default="",
        description='notes pinned to reel timecodes, one per line (the review page\'s "copy for the direction form"),'
        " kept with the decision",
    )
    changes: list[CueChange] = Field(
        default_factory=list,
        description="one item per cue, filled in with what the cue has now: edit an item to change its cue"
        " (items left as they are change nothing)",
    )

    @property
    def approves(self) -> bool:
        return self.decision == APPROVE


def prefilled(sheet: CueSheet) -> list[CueChange]:
    """The form's items: one per cue with its prompt and seed as they are (left so, they change nothing)."""
    return [CueChange(cue=c.id, prompt=c.prompt, seed=c.seed) for c in sheet.cues]


def effective_changes(sheet: CueSheet, changes: list[CueChange]) -> list[CueChange]:
    """The items that change their cue, each with only what differs from the cue as it is (a prompt or
    seed the cue has, a mute it is in, takes it has: kept). An item naming no cue of the sheet stays
    as it is, for ``apply_changes`` to refuse."""
    by_id = {c.id: c for c in sheet.cues}
    effective = []
    for change in changes:
        cue = by_id.get(change.cue.strip())
        if cue is None:
            effective.append(change)
            continue
        kept = change.model_copy(
            update={
                "cue": cue.id,
                "prompt": "" if change.prompt.strip() == cue.prompt else change.prompt,
                "seed": KEEP_SEED if change.seed == cue.seed else change.seed,
                "mute": "keep" if {"mute": True, "unmute": False}.get(change.mute) == cue.mute else change.mute,
                "takes": 0 if change.takes == cue.takes else change.takes,
            }
        )
        if kept != CueChange(cue=cue.id):
            effective.append(kept)
    return effective


def apply_changes(sheet: CueSheet, changes: list[CueChange]) -> CueSheet:
    """The sheet with the changes made (one line naming an unknown cue, a prompt over the limit or a
    gain out of range: the flow records the direction as refused with it)."""
    for change in changes:
        cue = sheet.cue(change.cue.strip())
        prompt = change.prompt.strip()
        if len(prompt) > MAX_PROMPT_CHARS:
            raise InputError(
                f"change to cue {cue.id}: its new prompt is {len(prompt)} characters long; the limit is {MAX_PROMPT_CHARS}"
            )
        gain = round(cue.gain_db + change.gain_change_db, 2)
        if not GAIN_RANGE_DB[0] <= gain <= GAIN_RANGE_DB[1]:
            raise InputError(
                f"change to cue {cue.id}: its gain would be {gain:+g} dB, outside {GAIN_RANGE_DB[0]:g} … +{GAIN_RANGE_DB[1]:g}"
            )
        seed, takes = cue.seed, change.takes or cue.takes
        if change.take:
            if change.seed != KEEP_SEED:
                raise InputError(f"change to cue {cue.id}: give a new seed or choose a take, not both")
            if change.take > cue.takes:
                made = f"takes 1–{cue.takes}" if cue.takes > 1 else "no takes"
                raise InputError(f"change to cue {cue.id}: take {change.take} was not made (the version has {made})")
            seed, takes = take_seed(cue.seed, change.take), change.takes or 1  # made already: reused as it is
        elif change.seed != KEEP_SEED:
            seed = change.seed
        regenerate = cue.regenerate  # the spans a version made stay with the cue, so later versions reuse it
        if change.regenerate.strip():
            regenerate = parse_span_text(change.regenerate, f"change to cue {cue.id}")
        elif prompt or change.seed != KEEP_SEED:
            regenerate = ()  # a new take of the whole cue
        sheet = sheet.with_cue(
            replace(
                cue,
                prompt=prompt or cue.prompt,
                seed=seed,
                mute={"keep": cue.mute, "mute": True, "unmute": False}[change.mute],
                gain_db=gain,
                regenerate=regenerate,
                takes=takes,
            )
        )
    return sheet


def described(changes: list[CueChange]) -> list[dict[str, object]]:
    """The changes as recorded: the cue and only what was changed (a text longer than a prompt may
    be, refused, as the limit's worth of it and its length)."""
    defaults = CueChange(cue="-").model_dump()
    return [{k: _recorded(v) for k, v in c.model_dump().items() if k == "cue" or v != defaults[k]} for c in changes]


def _recorded(value: object) -> object:
    if isinstance(value, str) and len(value) > MAX_PROMPT_CHARS:
        return f"{value[:MAX_PROMPT_CHARS]}… ({len(value)} characters)"
    return value
