"""Recording and reading provenance. Plain values in, rows out; each call is one transaction."""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from db.models import Asset, Generation, Output, Run, Scene, utcnow
from db.session import sessions

RUNNING, SUCCEEDED, FAILED = "running", "succeeded", "failed"


def start_run(url: str, *, source_uri: str, out_uri: str | None, settings: dict[str, Any], code_version: str, flow_run_id: str | None) -> int:
    with sessions(url).begin() as s:
        run = Run(
            source_uri=source_uri, out_uri=out_uri, settings=settings, code_version=code_version,
            flow_run_id=flow_run_id, status=RUNNING,
        )
        s.add(run)
        s.flush()
        return run.id


def finish_run(url: str, run_id: int, *, error: str | None = None) -> None:
    """Mark the run succeeded, or failed with ``error`` (one line, stored for the operator)."""
    with sessions(url).begin() as s:
        run = s.get_one(Run, run_id)
        run.status = FAILED if error else SUCCEEDED
        run.error = error
        run.ended_at = utcnow()


def record_asset(
    url: str, run_id: int, *, uri: str, sha256: str, size: int, duration_s: float, fps: Fraction, streams: dict[str, Any]
) -> int:
    """The source asset (one row per content hash), linked to the run."""
    with sessions(url).begin() as s:
        asset = s.scalar(select(Asset).where(Asset.sha256 == sha256))
        if asset is None:
            asset = Asset(
                sha256=sha256, uri=uri, bytes=size, duration_s=duration_s,
                fps_num=fps.numerator, fps_den=fps.denominator, streams=streams,
            )
            s.add(asset)
            s.flush()
        s.get_one(Run, run_id).asset_id = asset.id
        return asset.id


def record_scenes(url: str, run_id: int, scenes: Iterable[dict[str, Any]], detector: dict[str, Any]) -> dict[int, int]:
    """Scene rows for the run; returns scene index → row id."""
    with sessions(url).begin() as s:
        rows = [
            Scene(
                run_id=run_id, index=sc["index"], start_s=sc["start_s"], end_s=sc["end_s"],
                start_frame=sc["start_frame"], end_frame=sc["end_frame"], start_tc=sc["start_tc"], detector=detector,
            )
            for sc in scenes
        ]
        s.add_all(rows)
        s.flush()
        return {r.index: r.id for r in rows}


def record_generations(url: str, scene_ids: dict[int, int], generations: Iterable[dict[str, Any]]) -> None:
    """One row per generated cue; ``scene_index`` in each dict picks the scene row."""
    with sessions(url).begin() as s:
        for g in generations:
            values = dict(g)
            s.add(Generation(scene_id=scene_ids[values.pop("scene_index")], **values))


def record_outputs(url: str, run_id: int, outputs: Iterable[dict[str, Any]]) -> None:
    with sessions(url).begin() as s:
        s.add_all(Output(run_id=run_id, **o) for o in outputs)


def get_run(url: str, run_id: int) -> Run:
    """The run with its asset, scenes (with generations) and outputs loaded."""
    with sessions(url)() as s:
        return s.scalars(
            select(Run)
            .where(Run.id == run_id)
            .options(
                selectinload(Run.asset),
                selectinload(Run.outputs),
                selectinload(Run.scenes).selectinload(Scene.generations),
            )
        ).one()
