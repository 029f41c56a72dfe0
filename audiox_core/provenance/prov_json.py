"""A reel's provenance document as W3C PROV-JSON (https://www.w3.org/submissions/prov-json/)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only: records brings in the model and sound modules, which PROV-JSON needs not
    from audiox_core.provenance.records import ProvenanceDocument


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
        if given := g.audio_input:  # the previous cue it inpainted, or the sketch it completed
            source = (
                f"{ns}:cue-{given['sha256'][:16]}"
                if given["task"] == "inpaint"
                else f"{ns}:sketch-{given['sha256'][:16]}"
            )
            prov["entity"].setdefault(source, {"prov:label": given["uri"], f"{ns}:sha256": given["sha256"]})
            prov["activity"][activity][f"{ns}:{given['task']}"] = json.dumps(given, sort_keys=True)
            relation("used", **{"prov:activity": activity, "prov:entity": source})
            relation("wasDerivedFrom", **{"prov:generatedEntity": cue, "prov:usedEntity": source})
    for o in document.outputs:
        output = f"{ns}:output-{o.sha256[:16]}-{len(prov['entity'])}"
        prov["entity"][output] = {"prov:label": o.uri, f"{ns}:sha256": o.sha256, f"{ns}:kind": o.kind}
        made_by = run_id if o.kind.startswith(("scenes", "cues/")) else mix_activity
        relation("wasGeneratedBy", **{"prov:entity": output, "prov:activity": made_by})
        relation("wasDerivedFrom", **{"prov:generatedEntity": output, "prov:usedEntity": asset})
    return {k: v for k, v in prov.items() if v}
