"""The reel as AAF for Pro Tools and Media Composer, written through the OTIO AAF adapter with the audio embedded."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path
from typing import Any

import aaf2
import opentimelineio as otio
from otio_aaf_adapter.adapters.aaf_adapter import aaf_writer

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


class _EmbeddingAudio(aaf_writer.AudioTrackTranscriber):
    """The adapter's audio tracks with the one step it leaves open for audio: a clip's WAV imported
    as PCM essence into the file being written (its video tracks import DNxHD the same way)."""

    def _import_essence_for_clip(
        self, otio_clip: otio.schema.Clip, essence_path: Path
    ) -> tuple[aaf2.mobs.MasterMob, aaf2.mobslots.TimelineMobSlot]:
        mastermob = self.root_file_transcriber._unique_mastermob(otio_clip)
        return mastermob, mastermob.import_audio_essence(str(essence_path))


@contextmanager
def _embedding_audio() -> Iterator[None]:
    plain = aaf_writer.AudioTrackTranscriber
    aaf_writer.AudioTrackTranscriber = _EmbeddingAudio
    try:
        yield
    finally:
        aaf_writer.AudioTrackTranscriber = plain


def write_aaf(reel: DawReel, folder: Path, target: Path) -> None:
    """``target`` (atomic): the audio tracks at the sample rate (so every clip sits to the sample),
    each cue's and the dialogue's samples embedded, fades and crossfades as audio dissolves, the
    start timecode at the picture's rate. Muted cues, markers, clip gains and our metadata stay in
    the OTIO file only; the picture is not embedded (import it beside the AAF)."""
    tl = timeline(reel, rate=Fraction(reel.rate), picture=False)
    for track in tl.tracks:
        for i, item in enumerate(track):
            if isinstance(item, otio.schema.Transition):
                item.metadata["AAF"] = _dissolve(item)
            elif isinstance(item, otio.schema.Clip) and not item.enabled:
                track[i] = otio.schema.Gap(source_range=item.source_range)
            elif isinstance(item, otio.schema.Clip):
                item.media_reference.target_url = str((folder / item.media_reference.target_url).resolve())
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".aaf-") as tmp:
        written = Path(tmp) / target.name
        with _embedding_audio():
            otio.adapters.write_to_file(
                tl, str(written), adapter_name="AAF", embed_essence=True, use_empty_mob_ids=True
            )
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
