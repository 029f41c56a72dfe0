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
from audiox_core.reel.cuesheet import GAIN_RANGE_DB, CueSheet, parse_span_text

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


class Direction(BaseModel):
    """The producer's decision on the version on review."""

    decision: Literal["approve", "request changes"] = Field(description="approve this version, or ask for changes")
    reviewer: str = Field(min_length=1, description="who decides (recorded with the decision)")
    note: str = Field(default="", description="a note for the record")
    changes: list[CueChange] = Field(default_factory=list, description="per cue: what to change")

    @property
    def approves(self) -> bool:
        return self.decision == APPROVE


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
        regenerate = cue.regenerate  # the spans a version made stay with the cue, so later versions reuse it
        if change.regenerate.strip():
            regenerate = parse_span_text(change.regenerate, f"change to cue {cue.id}")
        elif prompt or change.seed != KEEP_SEED:
            regenerate = ()  # a new take of the whole cue
        sheet = sheet.with_cue(
            replace(
                cue,
                prompt=prompt or cue.prompt,
                seed=cue.seed if change.seed == KEEP_SEED else change.seed,
                mute={"keep": cue.mute, "mute": True, "unmute": False}[change.mute],
                gain_db=gain,
                regenerate=regenerate,
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
