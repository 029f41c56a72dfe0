"""The checks between the fetch and the decoding pass: the footage's facts, room for the outputs and the
work files, and the model's facts (audiox_core/reel/preflight.py holds the checks themselves)."""

from __future__ import annotations

from pathlib import Path

from audiox_core.lifecycle import stop_point
from audiox_core.provenance.records import ModelFacts
from audiox_core.reel.destination import Destination
from audiox_core.reel.preflight import check_destination, check_footage, check_work_space, output_bytes, work_bytes
from audiox_core.reel.settings import RunSettings
from audiox_core.reel.source import Footage, Source
from tasks.inference import model_facts


def preflight(footage: Footage, source: Source, where: Destination, work: Path, settings: RunSettings) -> ModelFacts:
    """ffprobe only (before the decoding pass), then the space the outputs and work files need; the
    model's facts (frame rate and size) size the work files."""
    rate = settings.mix.rate
    info = check_footage(footage.file.path, source.shown, rate)
    outputs_size = output_bytes(info, rate, footage.file.bytes)
    check_destination(where.root, outputs_size)
    stop_point()
    model = model_facts(settings.model, settings.device)
    assembled_here = outputs_size if where.root.startswith("s3://") else 0  # S3 outputs are assembled in work/
    check_work_space(work, work_bytes(info, rate, model.frame_fps, model.frame_size) + assembled_here)
    return model
