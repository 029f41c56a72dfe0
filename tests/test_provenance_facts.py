import json

from prov.model import ProvDocument
from test_records import sample_document

from audiox_core.provenance.keys import generation_key
from audiox_core.provenance.prov_json import to_prov_json
from audiox_core.store.uri import public_uri


def test_public_uri_drops_passwords_and_signatures() -> None:
    signed = "https://bucket.s3.amazonaws.com/reel.mp4?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F20261128&X-Amz-Signature=abc123&versionId=7"
    assert public_uri(signed) == "https://bucket.s3.amazonaws.com/reel.mp4"
    assert (
        public_uri("postgresql+psycopg://studio:hunter2@db.internal:5432/prov")
        == "postgresql+psycopg://db.internal:5432/prov"
    )
    assert public_uri("s3://bucket/key.mp4") == "s3://bucket/key.mp4"
    assert public_uri("/local/reel.mp4") == "/local/reel.mp4"


def test_generation_key_is_order_independent_and_sensitive() -> None:
    a = generation_key({"seed": 1, "prompt": "rain", "span": [0, 48000]})
    assert a == generation_key({"span": [0, 48000], "prompt": "rain", "seed": 1})
    assert a != generation_key({"seed": 2, "prompt": "rain", "span": [0, 48000]})
    assert len(a) == 64


def test_prov_json_links_outputs_to_the_source() -> None:
    document = sample_document()
    prov = to_prov_json(document)
    assert {"entity", "activity", "agent", "used", "wasGeneratedBy", "wasDerivedFrom"} <= set(prov)
    source = "audiox:asset-" + "a" * 16
    assert [d["prov:usedEntity"] for d in prov["wasDerivedFrom"].values()] == [source] * len(document.outputs)
    assert prov["agent"]["audiox:model-" + "b" * 16]["prov:label"] == "tiny (RANDOM WEIGHTS)"
    cues = {
        r["prov:entity"]: r["prov:activity"]
        for r in prov["wasGeneratedBy"].values()
        if r["prov:entity"].startswith("audiox:cue-")
    }
    assert len(cues) == len(document.generations)
    used = list(prov["used"].values())
    assert all(
        {"prov:activity": a, "prov:entity": source} in used for a in cues.values()
    )  # each generation read the footage
    records = ProvDocument.deserialize(content=json.dumps(prov), format="json").get_records()
    assert len(list(records)) == sum(len(v) for k, v in prov.items() if k != "prefix")
