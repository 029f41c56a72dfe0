"""Provenance facts that are computed, not stored: content keys for generations, secret-free URIs,
and the W3C PROV-JSON form of a reel's provenance document (the provenance.json chain)."""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from audiox_core.records import ProvenanceDocument

# Query parameters that carry credentials in presigned URLs (AWS SigV4/V2, GCS, Azure SAS).
_SECRET_PARAMS = {
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
    "signature",
    "awsaccesskeyid",
    "x-goog-signature",
    "x-goog-credential",
    "sig",
    "se",
    "token",
    "access_token",
}


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def generation_key(facts: dict[str, Any]) -> str:
    """sha256 of everything that determines a generated cue (canonical JSON: sorted keys)."""
    return sha256_text(json.dumps(facts, sort_keys=True, separators=(",", ":"), default=str))


def public_uri(uri: str) -> str:
    """``uri`` without a password and without credential query parameters: safe to store."""
    parts = urlsplit(uri)
    if not parts.scheme or parts.scheme == "file":
        return uri
    netloc = parts.hostname or ""
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    query = urlencode(
        [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k.lower() not in _SECRET_PARAMS]
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def to_prov_json(document: ProvenanceDocument) -> dict[str, Any]:
    """W3C PROV-JSON of a provenance document: the footage, cues and outputs are entities; the run,
    each generation and the mix are activities; the model and this software are agents."""
    ns = "audiox"
    run, source, model = document.run, document.source, document.model
    run_id = f"{ns}:run-{run.id}"
    asset = f"{ns}:asset-{source.sha256[:16]}"
    model_agent = f"{ns}:model-{model.checkpoint_sha256[:16]}"
    software = f"{ns}:audiox-studio-{run.code_version}"
    mix_activity = f"{ns}:mix-{run.id}"
    prov: dict[str, Any] = {
        "prefix": {ns: "https://audiox.studio/ns#"},
        "entity": {asset: {"prov:label": source.uri, f"{ns}:sha256": source.sha256}},
        "activity": {
            run_id: {"prov:label": "soundtrack run", f"{ns}:settings": json.dumps(run.settings, sort_keys=True)},
            mix_activity: {"prov:label": f"mix ({document.mix.preset})"},
        },
        "agent": {
            model_agent: {
                "prov:type": "prov:SoftwareAgent",
                "prov:label": model.label,
                f"{ns}:checkpoint_sha256": model.checkpoint_sha256,
            },
            software: {"prov:type": "prov:SoftwareAgent", "prov:label": "AudioX Studio"},
        },
        "used": {},
        "wasGeneratedBy": {},
        "wasAssociatedWith": {},
        "wasDerivedFrom": {},
        "wasInformedBy": {},
    }

    def relation(kind: str, **fields: str) -> None:
        prov[kind][f"_:{kind}{len(prov[kind])}"] = fields

    relation("used", **{"prov:activity": run_id, "prov:entity": asset})
    relation("wasAssociatedWith", **{"prov:activity": run_id, "prov:agent": software})
    relation("wasInformedBy", **{"prov:informed": mix_activity, "prov:informant": run_id})
    for cue_generation in document.generations:
        g = cue_generation.generation
        activity, cue = f"{ns}:generation-{g.key[:16]}", f"{ns}:cue-{g.output_sha256[:16]}"
        label = f"{g.kind} cue, scene {cue_generation.scene_index}"
        prov["activity"][activity] = {"prov:label": label, f"{ns}:prompt": g.prompt, f"{ns}:seed": g.seed}
        prov["entity"][cue] = {"prov:label": g.output_uri, f"{ns}:sha256": g.output_sha256}
        relation("used", **{"prov:activity": activity, "prov:entity": asset})
        relation("wasAssociatedWith", **{"prov:activity": activity, "prov:agent": model_agent})
        relation("wasGeneratedBy", **{"prov:entity": cue, "prov:activity": activity})
        relation("wasInformedBy", **{"prov:informed": activity, "prov:informant": run_id})
        relation("used", **{"prov:activity": mix_activity, "prov:entity": cue})
    for o in document.outputs:
        output = f"{ns}:output-{o.sha256[:16]}-{len(prov['entity'])}"
        prov["entity"][output] = {"prov:label": o.uri, f"{ns}:sha256": o.sha256, f"{ns}:kind": o.kind}
        made_by = run_id if o.kind.startswith(("scenes", "cues/")) else mix_activity
        relation("wasGeneratedBy", **{"prov:entity": output, "prov:activity": made_by})
        relation("wasDerivedFrom", **{"prov:generatedEntity": output, "prov:usedEntity": asset})
    return {k: v for k, v in prov.items() if v}
