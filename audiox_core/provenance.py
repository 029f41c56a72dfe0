"""Provenance facts that are computed, not stored: content keys for generations, secret-free URIs,
and the W3C PROV-JSON form of a reel's provenance document (the provenance.json chain)."""

from __future__ import annotations

import hashlib
import json
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only: storage imports this module, and records imports the media modules
    from audiox_core.records import ProvenanceDocument

# A URL: scheme, "://", then everything up to whitespace, a quote or a closing bracket.
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>()\[\]{}]+")
# Userinfo after the scheme: ``user@`` or ``user:password@`` (the password may hold '/': AWS secret
# keys do, and a careless ``s3://KEY:SECRET@bucket`` is not percent-encoded).
_USERINFO = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/?#@\s]*(?::[^@?#\s]*)?@)")
# Names whose value is a credential (AWS SigV4/V2 presigned URLs, GCS, Azure SAS, AWS config files,
# botocore's parameter dumps), as ``name=value`` or ``'name': 'value'``.
_SECRET_NAMES = (
    r"x-amz-signature|x-amz-credential|x-amz-security-token|awsaccesskeyid|signature|x-goog-signature|"
    r"x-goog-credential|sig|aws_secret_access_key|aws_session_token|aws_security_token|secret_access_key|"
    r"secretaccesskey|sessiontoken|password|passwd|access_token|token"
)
_SECRET_VALUE = re.compile(rf"(?i)(?<![A-Za-z0-9_-])({_SECRET_NAMES})([\"']?\s*[=:]\s*[\"']?)([^\s&\"',;)}}]+)")
# AWS access key ids (AKIA… long-term, ASIA… temporary): identify an account's credentials.
_ACCESS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")
REDACTED = "***"


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def generation_key(facts: dict[str, Any]) -> str:
    """sha256 of everything that determines a generated cue (canonical JSON: sorted keys)."""
    return sha256_text(json.dumps(facts, sort_keys=True, separators=(",", ":"), default=str))


def public_uri(uri: str) -> str:
    """``uri`` without userinfo (user and password), query string and fragment: safe to store and show.
    Local paths (no ``scheme://``) are returned as they are."""
    m = _USERINFO.match(uri)
    if m is None and "://" not in uri:
        return uri
    rest = uri[m.end() :] if m else uri.split("://", 1)[1]
    scheme = m.group("scheme") if m else uri.split("://", 1)[0] + "://"
    return scheme + re.split(r"[?#]", rest, maxsplit=1)[0]


def secret_in_uri(uri: str) -> bool:
    """Whether ``uri`` carries credentials: userinfo, or a signature/credential/token query parameter
    (a presigned URL)."""
    if _USERINFO.match(uri):
        return True
    query = re.split(r"[?#]", uri, maxsplit=1)[1] if "://" in uri and re.search(r"[?#]", uri) else ""
    return bool(_SECRET_VALUE.search(query.replace("?", "&")))


def scrub(text: str) -> str:
    """``text`` with every URL cleaned by ``public_uri`` and credential values (signatures, secret
    keys, tokens, passwords, access key ids) replaced by ``***``: for anything shown or stored."""
    text = _URL.sub(lambda m: public_uri(m.group(0)), text)
    text = _SECRET_VALUE.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    return _ACCESS_KEY_ID.sub(REDACTED, text)


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
