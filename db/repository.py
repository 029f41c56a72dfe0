"""Recording and reading provenance. Plain values in, rows out; each call is one short transaction.

Content-addressed rows (assets by sha256, generations by key, outputs by uri + sha256) are written
with INSERT … ON CONFLICT, in key order, so concurrent runs on one PostgreSQL neither write a row
twice nor deadlock on each other's locks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from fractions import Fraction
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, selectinload

from db.models import (
    Asset,
    Base,
    Generation,
    Mix,
    Output,
    Review,
    Run,
    Scene,
    SceneGeneration,
    utcnow,
)
from db.session import sessions

RUNNING, SUCCEEDED, FAILED, CANCELLED, CRASHED = "running", "succeeded", "failed", "cancelled", "crashed"
ENDED = (SUCCEEDED, FAILED, CANCELLED, CRASHED)  # how a run ends: done, an error, interrupted, its process died
LookupKind = Literal["output", "generation", "source", "unknown"]  # what ``lookup`` found a file's content to be


def _values(row: Base, *drop: str) -> dict[str, Any]:
    """The row's column values by column name, less ``drop`` (surrogate ids, links, timestamps)."""
    return {c.key: getattr(row, c.key) for c in row.__table__.columns if c.key not in drop}


def _insert(session: Session, model: type, rows: list[dict[str, Any]]):
    dialect = {"postgresql": postgresql, "sqlite": sqlite}.get(session.get_bind().dialect.name)
    if dialect is None:
        raise NotImplementedError(f"database dialect {session.get_bind().dialect.name!r} (use SQLite or PostgreSQL)")
    return dialect.insert(model).values(rows)


def _insert_ignore(session: Session, model: type, rows: list[dict[str, Any]], keys: list[str]) -> None:
    if rows:
        rows = sorted(rows, key=lambda r: tuple(str(r[k]) for k in keys))  # one lock order for everyone
        session.execute(_insert(session, model, rows).on_conflict_do_nothing(index_elements=keys))


def start_run(
    url: str,
    *,
    source_uri: str,
    out_uri: str | None,
    settings: dict[str, Any],
    code_version: str,
    flow_run_id: str | None,
    deployment: str | None = None,
    trigger: str | None = None,
    process: str | None = None,
) -> int:
    """A ``running`` row for a new run; ``process`` is the tag of the process running it, by which a
    sweep finds the run if that process dies without closing it (a row without one is never swept)."""
    with sessions(url).begin() as s:
        run = Run(
            source_uri=source_uri,
            out_uri=out_uri,
            settings=settings,
            code_version=code_version,
            flow_run_id=flow_run_id,
            deployment=deployment,
            trigger=trigger,
            process=process,
            status=RUNNING,
        )
        s.add(run)
        s.flush()
        return run.id


def finish_run(url: str, run_id: int, *, error: str | None = None, status: str | None = None) -> bool:
    """Close a running run: ``succeeded``, or ``failed`` (the default with an error), ``cancelled`` or
    ``crashed`` with ``error``, its reason in one line for the operator. A run is closed once: the
    first way it ended wins, a closed run is left as it is, and False says so."""
    with sessions(url).begin() as s:
        return bool(_close(s, Run.id == run_id, status or (FAILED if error else SUCCEEDED), error))


def finish_flow_run(url: str, flow_run_id: str, *, error: str, status: str) -> list[int]:
    """Close the running runs of one Prefect flow run (from its state hooks); returns their ids."""
    with sessions(url).begin() as s:
        ids = list(s.scalars(select(Run.id).where(Run.flow_run_id == flow_run_id, Run.status == RUNNING)))
        return [i for i in ids if _close(s, Run.id == i, status, error)]


def finish_process_runs(url: str, process: str, *, error: str, status: str) -> list[int]:
    """Close the running runs of one process (a batch interrupted with its reels in flight); returns their ids."""
    with sessions(url).begin() as s:
        ids = list(s.scalars(select(Run.id).where(Run.process == process, Run.status == RUNNING)))
        return [i for i in ids if _close(s, Run.id == i, status, error)]


def process_runs(url: str, process: str) -> list[tuple[int, str, str | None]]:
    """(id, status, error) of the runs one process started, newest first: what an interrupted command reports."""
    with sessions(url)() as s:
        query = select(Run.id, Run.status, Run.error).where(Run.process == process).order_by(Run.id.desc())
        return [(run_id, status, error) for run_id, status, error in s.execute(query)]


def sweep_abandoned(url: str, dead: Callable[[str], bool], reason: Callable[[str], str]) -> list[dict[str, Any]]:
    """Close as ``crashed``, with ``reason(tag)``, every running run whose process ``dead(tag)`` says is
    gone; returns the closed runs' column values (their flow runs and out folders need the same care).
    Only running rows with a process tag are read, so a sweep at the start of every run is cheap."""
    with sessions(url)() as s:
        running = [_values(r) for r in s.scalars(select(Run).where(Run.status == RUNNING, Run.process.is_not(None)))]
    return [
        r
        for r in running
        if dead(r["process"]) and finish_run(url, r["id"], error=reason(r["process"]), status=CRASHED)
    ]


def out_uris(url: str) -> list[str]:
    """Every output root a run was given (where a full sweep looks for abandoned staging folders)."""
    with sessions(url)() as s:
        return sorted(u for u in s.scalars(select(Run.out_uri).distinct()) if u)


def published_outputs(url: str) -> list[tuple[str, str]]:
    """(uri, kind) of every output a run published: the file and its path in the reel folder without
    suffix (``stems/music``), from which ``serve`` finds the folders runs published (an ``out_uri`` a
    failed run was given is no such folder)."""
    with sessions(url)() as s:
        return sorted((uri, kind) for uri, kind in s.execute(select(Output.uri, Output.kind).distinct()))


def _close(s: Session, which: ColumnElement[bool], status: str, error: str | None) -> int:
    """End the matching rows that are still running; returns how many it ended."""
    if status not in ENDED:
        raise ValueError(f"run status {status!r} (expected one of {', '.join(ENDED)})")
    if (status == SUCCEEDED) != (error is None):
        raise ValueError(f"a {status} run needs a reason exactly when it did not succeed (error={error!r})")
    values = {"status": status, "error": error, "ended_at": utcnow()}
    return s.execute(update(Run).where(which, Run.status == RUNNING).values(**values)).rowcount


def record_asset(
    url: str,
    run_id: int,
    *,
    uri: str,
    sha256: str,
    size: int,
    duration_s: float,
    fps: Fraction,
    streams: dict[str, Any],
    version: str | None = None,
) -> int:
    """The source asset (one row per content hash), linked to the run with the object version it read."""
    with sessions(url).begin() as s:
        _insert_ignore(
            s,
            Asset,
            [
                {
                    "sha256": sha256,
                    "uri": uri,
                    "bytes": size,
                    "duration_s": duration_s,
                    "fps_num": fps.numerator,
                    "fps_den": fps.denominator,
                    "streams": streams,
                    "created_at": utcnow(),
                }
            ],
            ["sha256"],
        )
        asset_id = s.scalar(select(Asset.id).where(Asset.sha256 == sha256))
        run = s.get_one(Run, run_id)
        run.asset_id, run.source_version = asset_id, version
        return asset_id


def record_model(url: str, run_id: int, model: dict[str, Any]) -> None:
    """The facts of the model the run uses (name, checkpoint, precision, the process holding it)."""
    with sessions(url).begin() as s:
        s.get_one(Run, run_id).model = model


def record_cue_sheet(url: str, run_id: int, sheet_yaml: str) -> None:
    """The cue sheet (YAML) the run follows."""
    with sessions(url).begin() as s:
        s.get_one(Run, run_id).cue_sheet = sheet_yaml


def latest_cue_sheet(url: str, source_uri: str) -> str | None:
    """The cue sheet of this source's latest succeeded run that has one (None: never spotted)."""
    with sessions(url)() as s:
        return s.scalars(
            select(Run.cue_sheet)
            .where(Run.source_uri == source_uri, Run.status == SUCCEEDED, Run.cue_sheet.is_not(None))
            .order_by(Run.id.desc())
            .limit(1)
        ).first()


def flow_run_versions(url: str, flow_run_id: str) -> list[dict[str, Any]]:
    """The versions (succeeded runs) one flow run made, in order: id, cue sheet, the version folder
    (where its mix.wav is), its name and its files (provenance.json, written after the output rows,
    included). A resumed review picks up from the last."""
    with sessions(url)() as s:
        runs = s.scalars(
            select(Run).where(Run.flow_run_id == flow_run_id, Run.status == SUCCEEDED).order_by(Run.id)
        ).all()
        found = []
        for r in runs:
            base = next((o.uri for o in r.outputs if o.kind == "mix"), "").removesuffix("mix.wav")
            found.append(
                {
                    "run_id": r.id,
                    "cue_sheet": r.cue_sheet,
                    "base_uri": base.rstrip("/"),
                    "version": base.rstrip("/").rsplit("/", 1)[-1],
                    "files": sorted({o.uri.removeprefix(base) for o in r.outputs} | {"provenance.json"}),
                    "model_label": (r.model or {}).get("label", ""),
                }
            )
        return found


def record_review(url: str, review: dict[str, Any]) -> int:
    """A producer's decision on a version: the columns of ``reviews`` (run, flow run, decision, reviewer,
    note, changes, where it was delivered)."""
    with sessions(url).begin() as s:
        row = Review(**review)
        s.add(row)
        s.flush()
        return row.id


def reviews(url: str, run_ids: Iterable[int]) -> list[dict[str, Any]]:
    """The decisions on these versions, oldest first."""
    with sessions(url)() as s:
        rows = s.scalars(select(Review).where(Review.run_id.in_(list(run_ids))).order_by(Review.id)).all()
        return [_values(r) for r in rows]


def latest_approval(url: str, source_uri: str) -> dict[str, Any] | None:
    """The newest approval of any version of this source (the review's columns), or None."""
    with sessions(url)() as s:
        row = s.scalars(
            select(Review)
            .join(Run, Run.id == Review.run_id)
            .where(Run.source_uri == source_uri, Review.decision == "approved")
            .order_by(Review.id.desc())
            .limit(1)
        ).first()
        return None if row is None else _values(row)


def succeeded_settings(url: str, source_uri: str, version: str | None, out_uri: str) -> list[dict[str, Any]]:
    """The settings of this object version's succeeded runs that delivered to ``out_uri`` (as runs
    store it; an s3:// prefix with or without its trailing '/'), as each run stored them (the caller
    normalises them before comparing: ``{}`` and every default spelled out are the same settings)."""
    outs = [out_uri]
    if out_uri.startswith("s3://"):
        outs = [out_uri.rstrip("/"), out_uri.rstrip("/") + "/"]
    with sessions(url)() as s:
        return list(
            s.scalars(
                select(Run.settings).where(
                    Run.source_uri == source_uri,
                    Run.source_version == version,
                    Run.out_uri.in_(outs),
                    Run.status == SUCCEEDED,
                )
            )
        )


def record_scenes(url: str, run_id: int, scenes: Iterable[dict[str, Any]]) -> dict[int, int]:
    """Scene rows for the run (each with every column but the ids); returns scene index → row id."""
    with sessions(url).begin() as s:
        rows = [Scene(run_id=run_id, **sc) for sc in scenes]
        s.add_all(rows)
        s.flush()
        return {r.index: r.id for r in rows}


def find_generations(url: str, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Finished generations by key (the ones a rerun can reuse): every column but ``id`` and ``created_at``."""
    keys = list(keys)
    if not keys:
        return {}
    with sessions(url)() as s:
        return {
            g.key: _values(g, "id", "created_at") for g in s.scalars(select(Generation).where(Generation.key.in_(keys)))
        }


def latest_generation(url: str, source_uri: str, scene_index: int, kind: str) -> dict[str, Any] | None:
    """The generation of this source's cue (scene index and kind) in its latest succeeded run that has
    one (every column but ``id`` and ``created_at``): the previous version an inpainting starts from."""
    with sessions(url)() as s:
        g = s.scalars(
            select(Generation)
            .join(SceneGeneration, SceneGeneration.generation_id == Generation.id)
            .join(Scene, Scene.id == SceneGeneration.scene_id)
            .join(Run, Run.id == Scene.run_id)
            .where(Run.source_uri == source_uri, Run.status == SUCCEEDED, Scene.index == scene_index)
            .where(Generation.kind == kind)
            .order_by(Run.id.desc())
            .limit(1)
        ).first()
        return None if g is None else _values(g, "id", "created_at")


def record_generations(
    url: str, scene_ids: dict[int, int], generations: Iterable[dict[str, Any]], takes: Iterable[dict[str, Any]] = ()
) -> None:
    """Generation rows (kept if the key exists) linked to this run's scenes via ``scene_index``; the
    rows of ``takes`` (a cue's takes to choose from) unlinked, found by their key when one is chosen."""
    rows = [dict(g) for g in generations]
    links = [(r.pop("scene_index"), r["key"]) for r in rows]
    unlinked = [{k: v for k, v in t.items() if k not in ("scene_index", "take")} for t in takes]
    with sessions(url).begin() as s:
        now = utcnow()
        _insert_ignore(s, Generation, [{**r, "created_at": now} for r in rows + unlinked], ["key"])
        ids = dict(
            s.execute(select(Generation.key, Generation.id).where(Generation.key.in_([k for _, k in links]))).all()
        )
        _insert_ignore(
            s,
            SceneGeneration,
            [{"scene_id": scene_ids[i], "generation_id": ids[k]} for i, k in links],
            ["scene_id", "generation_id"],
        )


def record_mix(url: str, run_id: int, mix: dict[str, Any]) -> None:
    """The run's mastering: every column of ``mixes`` but the ids."""
    with sessions(url).begin() as s:
        s.add(Mix(run_id=run_id, **mix))


def record_outputs(url: str, run_id: int, outputs: Iterable[dict[str, Any]]) -> None:
    """Output rows, one per (uri, content); a rerun writing the same bytes there adopts the row."""
    rows = sorted(({**o, "run_id": run_id} for o in outputs), key=lambda r: (r["uri"], r["sha256"]))
    if not rows:
        return
    with sessions(url).begin() as s:
        stmt = _insert(s, Output, rows)
        s.execute(
            stmt.on_conflict_do_update(
                index_elements=["uri", "sha256"], set_={"run_id": stmt.excluded.run_id, "kind": stmt.excluded.kind}
            )
        )


def output_uris(url: str, sha256: str) -> list[str]:
    """Every recorded output URI with this content, newest first: where a cue's bytes may still be
    found after the version that first held them was removed."""
    with sessions(url)() as s:
        return list(s.scalars(select(Output.uri).where(Output.sha256 == sha256).order_by(Output.id.desc())))


def _with_chain(query: Select) -> Select:
    return query.options(
        selectinload(Run.asset),
        selectinload(Run.outputs),
        selectinload(Run.mix),
        selectinload(Run.scenes).selectinload(Scene.generations),
    )


def get_run(url: str, run_id: int) -> Run:
    """The run with its asset, scenes (with generations), mix and outputs loaded."""
    with sessions(url)() as s:
        return s.scalars(_with_chain(select(Run).where(Run.id == run_id))).one()


def run_values(url: str, run_id: int) -> dict[str, Any]:
    """The run row's column values alone (what a run in progress needs to state about itself)."""
    with sessions(url)() as s:
        return _values(s.get_one(Run, run_id))


def chain(url: str, run_id: int) -> dict[str, Any]:
    """The plain values of a run's provenance: the run row, its asset (None before it was read), its
    scenes in order each with the generations that give it its cues (by kind), its mix (None before
    mastering) and its outputs by URI."""
    run = get_run(url, run_id)
    return {
        "run": _values(run),
        "asset": _values(run.asset, "id", "created_at") if run.asset else None,
        "scenes": [
            {**_values(sc, "id", "run_id"), "generations": [_values(g, "id", "created_at") for g in sc.generations]}
            for sc in run.scenes
        ],
        "mix": _values(run.mix, "id", "run_id") if run.mix else None,
        "outputs": sorted((_values(o, "id", "run_id") for o in run.outputs), key=lambda o: o["uri"]),
    }


def lookup(url: str, sha256: str) -> tuple[LookupKind, int | None, dict[str, Any] | None]:
    """What a file with this content is: ('output', its latest run's id, None), ('generation', None,
    the generation's values), ('source', the latest run that mastered it, None) or ('unknown', None, None)."""
    with sessions(url)() as s:
        run_id = s.scalar(select(Output.run_id).where(Output.sha256 == sha256).order_by(Output.id.desc()).limit(1))
        if run_id is not None:
            return "output", run_id, None
        generation = s.scalars(select(Generation).where(Generation.output_sha256 == sha256)).first()
        if generation is not None:
            return "generation", None, _values(generation, "id", "created_at")
        run_id = s.scalar(
            select(Run.id).join(Asset).join(Mix).where(Asset.sha256 == sha256).order_by(Run.id.desc()).limit(1)
        )
        return ("source", run_id, None) if run_id is not None else ("unknown", None, None)
