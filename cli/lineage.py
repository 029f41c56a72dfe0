"""``audiox-studio provenance``: what made this file? Looked up by the file's sha256, so a renamed or
moved copy still answers; printed as text, as the provenance.json chain, or as W3C PROV-JSON."""

from __future__ import annotations

import json
from typing import Any

from audiox_core.errors import InputError
from audiox_core.provenance import to_prov_json
from audiox_core.settings import studio_home
from audiox_core.storage import check_readable_file, local_path, sha256_file
from db import repository
from db.models import Generation, Run
from db.session import database_url

_GENERATION_FIELDS = (
    "key", "kind", "prompt", "seed", "sampler", "steps", "cfg_scale", "windows", "model_name", "checkpoint_sha256",
    "precision", "device", "torch_version", "cuda_version", "code_version", "span_start", "span_length",
    "conditioning_sha256", "elapsed_s", "output_uri", "output_sha256",
)


def generation_dict(g: Generation, scene_index: int | None = None) -> dict[str, Any]:
    return {"scene_index": scene_index, **{f: getattr(g, f) for f in _GENERATION_FIELDS}}


def run_document(run: Run) -> dict[str, Any]:
    """The provenance chain of a run, in provenance.json's shape, from the database."""
    generations = [generation_dict(g, s.index) for s in run.scenes for g in s.generations]
    first = generations[0] if generations else {}
    return {
        "run": {"id": run.id, "flow_run_id": run.flow_run_id, "deployment": run.deployment, "trigger": run.trigger,
                "code_version": run.code_version, "settings": run.settings, "status": run.status, "error": run.error,
                "started_at": run.started_at.isoformat(), "ended_at": run.ended_at.isoformat() if run.ended_at else None},
        "source": {"uri": run.asset.uri, "sha256": run.asset.sha256, "bytes": run.asset.bytes} if run.asset else {"uri": run.source_uri},
        "model": {"name": first.get("model_name"), "label": first.get("model_name"), "checkpoint_sha256": first.get("checkpoint_sha256", "")},
        "scenes": [{"index": s.index, "start_tc": s.start_tc, "end_tc": s.end_tc, "start_s": s.start_s, "end_s": s.end_s} for s in run.scenes],
        "generations": generations,
        "mix": ({"preset": run.mix.preset, "integrated_lufs": run.mix.integrated_lufs, "loudness_range_lu": run.mix.loudness_range_lu,
                 "true_peak_dbtp": run.mix.true_peak_dbtp, "stems": run.mix.stems} if run.mix else {"preset": None}),
        "outputs": [{"kind": o.kind, "uri": o.uri, "sha256": o.sha256, "bytes": o.bytes} for o in run.outputs],
    }


def lookup(path_or_uri: str) -> dict[str, Any]:
    """The chain for a file (an output, a generated cue, or a source), found by its content."""
    path = local_path(path_or_uri)
    check_readable_file(path)
    sha = sha256_file(path)
    kind, run, generation = repository.lookup(database_url(studio_home()), sha)
    if kind == "unknown":
        raise InputError(f"{path}: no provenance recorded for this content (sha256 {sha[:16]}…)")
    if kind == "generation":
        return {"file": str(path), "sha256": sha, "is": "generated cue", "generation": generation_dict(generation)}
    return {"file": str(path), "sha256": sha, "is": "output" if kind == "output" else "source footage", **run_document(run)}


def describe(found: dict[str, Any]) -> str:
    lines = [f"{found['file']}  (sha256 {found['sha256'][:16]}…): {found['is']}"]
    if "generation" in found:
        g = found["generation"]
        lines += [f"  {g['kind']} cue by {g['model_name']} (checkpoint {g['checkpoint_sha256'][:16]}…), {g['precision']} on {g['device']}",
                  f"  prompt: {g['prompt']!r}  seed {g['seed']}  {g['sampler']} × {g['steps']} steps, cfg {g['cfg_scale']}",
                  f"  source span: samples {g['span_start']}–{g['span_start'] + g['span_length']} at 48 kHz; code {g['code_version']}"]
        return "\n".join(lines)
    run, source = found["run"], found["source"]
    lines += [f"  run {run['id']} ({run['status']}, {run['trigger']}, flow run {run['flow_run_id']}), code {run['code_version']}",
              f"  source: {source['uri']} (sha256 {source.get('sha256', '?')[:16]}…)",
              f"  model: {found['model']['name']} (checkpoint {found['model']['checkpoint_sha256'][:16]}…)",
              f"  mix: {found['mix'].get('preset')} {found['mix'].get('integrated_lufs')} LUFS, true peak {found['mix'].get('true_peak_dbtp')} dBTP"]
    for g in found["generations"]:
        lines.append(f"  scene {g['scene_index']:>3} {g['kind']:<5} seed {g['seed']:<11} {g['sampler']} × {g['steps']}, cfg {g['cfg_scale']}: {g['prompt']}")
    return "\n".join(lines)


def as_prov_json(found: dict[str, Any]) -> dict[str, Any]:
    if "generation" in found:
        raise InputError(f"{found['file']}: PROV-JSON export is per run; ask for an output of the run (e.g. its mix.wav)")
    return to_prov_json(found)


def render(found: dict[str, Any], fmt: str) -> str:
    """``text``, ``json`` (the provenance.json chain) or ``prov`` (W3C PROV-JSON)."""
    if fmt == "text":
        return describe(found)
    return json.dumps(as_prov_json(found) if fmt == "prov" else found, indent=2, default=str)
