"""A producer's direction on a version: approve it, or change cues (new prompt, new seed, mute, gain)
with a note. The form the Prefect UI shows when a run waits for review is drawn from these models'
JSON schema; ``apply_changes`` turns the changes into the next version's cue sheet.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

from pydantic import BaseModel, Field

from audiox_core.cuesheet import GAIN_RANGE_DB, CueSheet
from audiox_core.errors import InputError

APPROVE, CHANGES = "approve", "request changes"


class CueChange(BaseModel):
    """What to change on one cue; fields left empty stay as they are."""

    cue: str = Field(description="the cue's id in the cue sheet (F001, M01, …)")
    prompt: str | None = Field(default=None, description="new prompt")
    seed: int | None = Field(default=None, ge=0, lt=2**31, description="new seed (another take)")
    mute: bool | None = Field(default=None, description="mute or unmute the cue")
    gain_db: float | None = Field(default=None, ge=GAIN_RANGE_DB[0], le=GAIN_RANGE_DB[1], description="gain in dB")


class Direction(BaseModel):
    """The producer's decision on the version on review."""

    decision: Literal["approve", "request changes"] = Field(description="approve this version, or ask for changes")
    reviewer: str = Field(min_length=1, description="who decides (recorded with the decision)")
    note: str = Field(default="", description="a note for the record")
    changes: list[CueChange] = Field(default_factory=list, description="per cue: what to change")


def apply_changes(sheet: CueSheet, changes: list[CueChange]) -> CueSheet:
    """The sheet with the changes made (one line naming an unknown cue or an empty prompt)."""
    for change in changes:
        cue = sheet.cue(change.cue)
        if change.prompt is not None and not change.prompt.strip():
            raise InputError(f"change to cue {change.cue}: the new prompt is empty")
        given = {
            "prompt": change.prompt.strip() if change.prompt is not None else None,
            "seed": change.seed,
            "gain_db": change.gain_db,
            "mute": change.mute,
        }
        sheet = sheet.with_cue(replace(cue, **{k: v for k, v in given.items() if v is not None}))
    return sheet


def described(changes: list[CueChange]) -> list[dict[str, object]]:
    """The changes as recorded (only the fields given)."""
    return [c.model_dump(exclude_none=True) for c in changes]
