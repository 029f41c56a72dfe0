"""The reel as AAF for Pro Tools and Media Composer, written through the OTIO AAF adapter with the audio embedded."""

from __future__ import annotations

import os
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Any

import aaf2
import opentimelineio as otio

from audiox_core.reel.daw_reel import DawReel
from audiox_core.reel.otio_timeline import timeline
from audiox_core.video.timecode import is_drop_frame

AUDIO_DISSOLVE = "0c3bea41-fc05-11d2-8a29-0050040ef7d2"  # AAF's OperationDef_MonoAudioDissolve


def _dissolve(transition: otio.schema.Transition) -> dict[str, Any]:
    """What the adapter writes an audio dissolve from (level 0 → 1 across the transition)."""
    return {
        "PointList": [{"Value": 0, "Time": 0}, {"Value": 1, "Time": 1}],
        "CutPoint": int(transition.in_offset.value),
        "OperationGroup": {
            "Operation": {
                "Identification": AUDIO_DISSOLVE,
                "IsTimeWarp": False,
                "Bypass": 1,
                "NumberInputs": 2,
                "OperationCategory": "OperationCategory_Effect",
                "Description": transition.name,
                "Name": "Audio Dissolve",
                "DataDefinition": {"Name": "Sound"},
            }
        },
    }


def _essence_file(wav: Path, name: str, into: Path) -> tuple[str, str]:
    """A one-clip AAF holding ``wav``'s samples (what the adapter embeds from); its path and master mob id."""
    path = into / f"{len(os.listdir(into)):05d}.aaf"
    with aaf2.open(str(path), "w") as f:
        mob = f.create.MasterMob(name)
        f.content.mobs.append(mob)
        mob.import_audio_essence(str(wav))
        mob_id = str(mob.mob_id)
    return str(path), mob_id


def write_aaf(reel: DawReel, folder: Path, target: Path) -> None:
    """``target`` (atomic): the audio tracks at the sample rate (so every clip sits to the sample),
    each cue's and the dialogue's samples embedded, fades and crossfades as audio dissolves, the
    start timecode at the picture's rate. Muted cues, markers, clip gains and our metadata stay in
    the OTIO file only; the picture is not embedded (import it beside the AAF)."""
    tl = timeline(reel, rate=Fraction(reel.rate), picture=False)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".aaf-") as tmp:
        essence = Path(tmp) / "essence"
        essence.mkdir()
        for track in tl.tracks:
            for i, item in enumerate(track):
                if isinstance(item, otio.schema.Transition):
                    item.metadata["AAF"] = _dissolve(item)
                elif isinstance(item, otio.schema.Clip) and not item.enabled:
                    track[i] = otio.schema.Gap(source_range=item.source_range)
                elif isinstance(item, otio.schema.Clip):
                    url, mob_id = _essence_file(folder / item.media_reference.target_url, item.name, essence)
                    item.media_reference.target_url = url
                    item.metadata["AAF"] = {"MobID": mob_id}
        written = Path(tmp) / "soundtrack.aaf"
        otio.adapters.write_to_file(tl, str(written), adapter_name="AAF", embed_essence=True)
        _mark_drop_frame(written, reel.fps)
        os.replace(written, target)


def _mark_drop_frame(path: Path, fps: Fraction) -> None:
    """The adapter writes every timecode track as non-drop: say drop frame where the picture is."""
    if not is_drop_frame(fps):
        return
    with aaf2.open(str(path), "rw") as f:
        for mob in f.content.compositionmobs():
            for slot in mob.slots:
                if isinstance(slot.segment, aaf2.components.Timecode):
                    slot.segment.fps, slot.segment.drop = round(fps), True
