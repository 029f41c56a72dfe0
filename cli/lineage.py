"""``audiox-studio provenance``: what made this file? Looked up by the file's sha256, so a renamed or
moved copy still answers; printed as text, as JSON (the run's provenance document, rebuilt from the
database in the very shape of its provenance.json), or as W3C PROV-JSON. Text shows control characters
in a name or a prompt escaped (``terminal_text``), never obeyed by the terminal."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar, Literal

from audiox_core.errors import InputError
from audiox_core.producer_text import terminal_text
from audiox_core.provenance.prov_json import to_prov_json
from audiox_core.provenance.records import (
    CueGeneration,
    GenerationRecord,
    MixRecord,
    ModelFacts,
    OutputRecord,
    ProvenanceDocument,
    RunFacts,
    SceneRecord,
    SourceFacts,
)
from audiox_core.store.files import check_readable_file, sha256_file
from audiox_core.store.local import local_path
from audiox_core.workspace import studio_home
from db import repository
from db.session import database_url

OutputFormat = Literal["text", "json", "prov"]


@dataclass(frozen=True)
class RunLineage:
    """A file a run wrote (``output``) or read (``source footage``), with the run's provenance document."""

    file: str
    sha256: str
    role: str
    status: str  # the run's, kept beside the document (provenance.json is written before the run ends)
    provenance: ProvenanceDocument

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "sha256": self.sha256,
            "is": self.role,
            "status": self.status,
            "provenance": self.provenance.to_dict(),
        }


@dataclass(frozen=True)
class CueLineage:
    """A generated cue, with the record of the generation that made it."""

    file: str
    sha256: str
    generation: GenerationRecord
    role: ClassVar[str] = "generated cue"

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "sha256": self.sha256, "is": self.role, "generation": asdict(self.generation)}


def recorded_document(chain: dict[str, Any]) -> ProvenanceDocument:
    """A run's provenance document from its rows (``repository.chain``): the document its provenance.json holds."""
    run, asset = chain["run"], chain["asset"]
    if run["model"] is None:
        raise InputError(
            f"run {run['id']} was recorded without the model's facts (before database revision 0004); see its provenance.json"
        )
    return ProvenanceDocument(
        run=RunFacts(**{f.name: run[f.name] for f in fields(RunFacts)}),
        source=SourceFacts(
            uri=run["source_uri"],
            sha256=asset["sha256"],
            bytes=asset["bytes"],
            version=run["source_version"],
            media=asset["streams"],
        ),
        model=ModelFacts.from_dict(run["model"]),
        scenes=tuple(SceneRecord(**{k: v for k, v in s.items() if k != "generations"}) for s in chain["scenes"]),
        generations=tuple(
            CueGeneration(s["index"], GenerationRecord(**g)) for s in chain["scenes"] for g in s["generations"]
        ),
        mix=MixRecord(**chain["mix"]),
        outputs=tuple(OutputRecord(**o) for o in chain["outputs"]),
    )


def lookup(path_or_uri: str) -> RunLineage | CueLineage:
    """The chain for a file (an output, a generated cue, or a source), found by its content."""
    path = local_path(path_or_uri)
    check_readable_file(path)
    sha = sha256_file(path)
    url = database_url(studio_home())
    kind, run_id, generation = repository.lookup(url, sha)
    if kind == "unknown":
        raise InputError(f"{path}: no provenance recorded for this content (sha256 {sha[:16]}…)")
    if kind == "generation":
        return CueLineage(str(path), sha, GenerationRecord(**generation))
    chain = repository.chain(url, run_id)
    return RunLineage(
        str(path),
        sha,
        "output" if kind == "output" else "source footage",
        chain["run"]["status"],
        recorded_document(chain),
    )


def describe(found: RunLineage | CueLineage) -> str:
    """The chain as lines for a terminal, each with its control characters escaped."""
    return "\n".join(terminal_text(line) for line in _lines(found))


def _lines(found: RunLineage | CueLineage) -> list[str]:
    lines = [f"{found.file}  (sha256 {found.sha256[:16]}…): {found.role}"]
    if isinstance(found, CueLineage):
        g = found.generation
        lines += [
            f"  {g.kind} cue by {g.model_name} (checkpoint {g.checkpoint_sha256[:16]}…), {g.precision} on {g.device}",
            f"  prompt: {g.prompt!r}  seed {g.seed}  {g.sampler} × {g.steps} steps, cfg {g.cfg_scale}",
            f"  source span: samples {g.span_start}–{g.span_start + g.span_length} at 48 kHz; code {g.code_version}",
        ]
        return lines
    doc = found.provenance
    run, mix = doc.run, doc.mix
    lines += [
        f"  run {run.id} ({found.status}, {run.trigger}, flow run {run.flow_run_id}), code {run.code_version}",
        f"  source: {doc.source.uri} (sha256 {doc.source.sha256[:16]}…)",
        f"  model: {doc.model.name} (checkpoint {doc.model.checkpoint_sha256[:16]}…)",
        f"  mix: {mix.preset} {mix.integrated_lufs} LUFS, true peak {mix.true_peak_dbtp} dBTP",
    ]
    for c in doc.generations:
        g = c.generation
        lines.append(
            f"  scene {c.scene_index:>3} {g.kind:<5} seed {g.seed:<11} {g.sampler} × {g.steps}, cfg {g.cfg_scale}: {g.prompt}"
        )
    return lines


def render(found: RunLineage | CueLineage, fmt: OutputFormat) -> str:
    """``text``, ``json`` (the run's provenance document in a small wrapper) or ``prov`` (W3C PROV-JSON)."""
    if fmt == "text":
        return describe(found)
    if fmt == "json":
        return _json(found.to_dict())
    if isinstance(found, CueLineage):
        raise InputError(f"{found.file}: PROV-JSON export is per run; ask for an output of the run (e.g. its mix.wav)")
    return _json(to_prov_json(found.provenance))


def _json(value: Any) -> str:
    """JSON for a terminal: ``json`` escapes every control character (and all non-ASCII) but DEL,
    which only a string can hold, so it is written ``\\u007f`` (the same JSON value)."""
    return json.dumps(value, indent=2, default=str).replace("\x7f", "\\u007f")
