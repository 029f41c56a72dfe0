from audiox_core.provenance import generation_key, public_uri, to_prov_json


def test_public_uri_drops_passwords_and_signatures() -> None:
    signed = "https://bucket.s3.amazonaws.com/reel.mp4?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F20261128&X-Amz-Signature=abc123&versionId=7"
    assert public_uri(signed) == "https://bucket.s3.amazonaws.com/reel.mp4?X-Amz-Algorithm=AWS4-HMAC-SHA256&versionId=7"
    assert public_uri("postgresql+psycopg://studio:hunter2@db.internal:5432/prov") == "postgresql+psycopg://studio@db.internal:5432/prov"
    assert public_uri("s3://bucket/key.mp4") == "s3://bucket/key.mp4"
    assert public_uri("/local/reel.mp4") == "/local/reel.mp4"


def test_generation_key_is_order_independent_and_sensitive() -> None:
    a = generation_key({"seed": 1, "prompt": "rain", "span": [0, 48000]})
    assert a == generation_key({"span": [0, 48000], "prompt": "rain", "seed": 1})
    assert a != generation_key({"seed": 2, "prompt": "rain", "span": [0, 48000]})
    assert len(a) == 64


def test_prov_json_links_outputs_to_the_source() -> None:
    document = {
        "run": {"id": 1, "code_version": "t", "settings": {}},
        "source": {"uri": "/x.mp4", "sha256": "a" * 64},
        "model": {"label": "tiny", "checkpoint_sha256": "b" * 64},
        "mix": {"preset": "ebu-r128"},
        "generations": [{"key": "c" * 64, "kind": "music", "scene_index": 0, "prompt": "p", "seed": 1, "output_uri": "u", "output_sha256": "d" * 64}],
        "outputs": [{"kind": "mix", "uri": "file:///o/mix.wav", "sha256": "e" * 64}],
    }
    prov = to_prov_json(document)
    assert {"entity", "activity", "agent", "used", "wasGeneratedBy", "wasDerivedFrom"} <= set(prov)
    derived = list(prov["wasDerivedFrom"].values())
    assert derived[0]["prov:usedEntity"] == "audiox:asset-" + "a" * 16
