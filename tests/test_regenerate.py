"""Inpainting and completion through the pipeline (tiny model, real flow runs): spans of a cue made
again with the rest kept sample for sample, a cue that continues a given sketch, what the records
keep of both, the producer's direction, and bad input refused in one line before anything runs."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from audiox_core.errors import InputError
from audiox_core.provenance.prov_json import to_prov_json
from audiox_core.provenance.records import ProvenanceDocument
from audiox_core.reel.direction import CueChange, apply_changes
from audiox_core.reel.given_sound import read_given_audio
from audiox_core.reel.naming import reel_folder
from audiox_core.sound.audio import read_wav, to_ints, write_wav24

pytestmark = pytest.mark.integration

RATE = 48_000
FPS = 25  # the synthetic reel: shots of 20, 15 and 20 frames (0.8, 0.6 and 0.8 s)
BASE = [
    "{id: F001, kind: foley, in: '00:00:00:00', out: '00:00:00:20', prompt: a bell, seed: 11}",
    "{id: M01, kind: music, in: '00:00:00:00', out: '00:00:02:05', prompt: strings, seed: 12}",
]


def sheet(path: Path, *cues: str) -> Path:
    path.write_text("format: 1\nreel: short_reel\nfps: 25/1\ncues:\n" + "".join(f"  - {c}\n" for c in cues))
    return path


def with_fields(cue: str, fields: str) -> str:
    return cue[:-1] + f", {fields}}}"


def ints(path: Path) -> np.ndarray:
    audio, rate = read_wav(path)
    assert rate == RATE
    return to_ints(audio)  # (N, C): the 24-bit samples as written


@pytest.fixture(scope="module")
def first(prefect_api, reel, tmp_path_factory):
    """One run of the reel on the base sheet: (home, out root, the reel's folder, a copy of its cues)."""
    from flows.soundtrack import soundtrack

    home, out, keep = (tmp_path_factory.mktemp(n) for n in ("home", "out", "first_cues"))
    mp = pytest.MonkeyPatch()
    mp.setenv("AUDIOX_HOME", str(home))
    mp.delenv("AUDIOX_DB_URL", raising=False)
    try:
        soundtrack(str(reel.path), str(out), {"steps": 2}, cues=str(sheet(home / "base.yaml", *BASE)))
        folder = out / reel_folder(str(reel.path))
        shutil.copytree(folder / "cues", keep, dirs_exist_ok=True)  # local versions share one folder
        yield home, out, folder, keep
    finally:
        mp.undo()


@pytest.fixture
def in_first_home(first, monkeypatch: pytest.MonkeyPatch):
    home = first[0]
    monkeypatch.setenv("AUDIOX_HOME", str(home))
    monkeypatch.delenv("AUDIOX_DB_URL", raising=False)
    return first


def generations(home: Path) -> list[dict]:
    from sqlalchemy import select

    from db.models import Generation
    from db.session import database_url, sessions

    with sessions(database_url(home))() as s:
        return [{"key": g.key, "kind": g.kind, "audio_input": g.audio_input} for g in s.scalars(select(Generation))]


def test_regenerated_spans_keep_every_other_sample_and_record_where_they_came_from(in_first_home, reel) -> None:
    """F001 gets 0.2–0.48 s made again (inside one window), M01 a span across the scene cut at 0.8 s.
    Expected: outside the spans every 24-bit sample equals the first version's (the crossfades lie
    inside the spans); inside, the sound is new; the generation record and provenance.json name the
    previous cue (uri, sha256) and the spans; the same sheet again reuses the inpainted cues."""
    from audiox_core.store.files import sha256_file
    from flows.soundtrack import soundtrack

    home, out, folder, before = in_first_home
    given = sheet(
        home / "spans.yaml",
        with_fields(BASE[0], "regenerate: [{in: '00:00:00:05', out: '00:00:00:12'}]"),
        with_fields(BASE[1], "regenerate: [{in: '00:00:00:18', out: '00:00:01:05'}]"),
    )
    result = soundtrack(str(reel.path), str(out), {"steps": 2}, cues=str(given))
    assert result["cues_generated"] == 2
    for name, (a, b) in {"scene0000_foley.wav": (0.2, 0.48), "scene0000_music.wav": (0.72, 1.2)}.items():
        old, new = ints(before / name), ints(folder / "cues" / name)
        assert old.shape == new.shape
        i, j = round(a * RATE), round(b * RATE)
        assert np.array_equal(new[:i], old[:i]) and np.array_equal(new[j:], old[j:]), name
        assert not np.array_equal(new[i:j], old[i:j]), name
    records = {g["kind"]: g["audio_input"] for g in generations(home) if g["audio_input"]}
    foley = records["foley"]
    assert foley["task"] == "inpaint" and foley["spans"] == [[0.2, 0.48]]
    assert foley["sha256"] == sha256_file(before / "scene0000_foley.wav")
    assert foley["uri"].endswith("cues/scene0000_foley.wav")
    document = json.loads((folder / "provenance.json").read_text())
    assert [g["audio_input"] for g in document["generations"] if g["kind"] == "foley"] == [foley]
    prov = to_prov_json(ProvenanceDocument.from_dict(document))  # the PROV-JSON `lineage --json` prints
    derived = [(r["prov:generatedEntity"], r["prov:usedEntity"]) for r in prov["wasDerivedFrom"].values()]
    new_sha = sha256_file(folder / "cues" / "scene0000_foley.wav")
    assert (f"audiox:cue-{new_sha[:16]}", f"audiox:cue-{foley['sha256'][:16]}") in derived

    rows = len(generations(home))
    again = soundtrack(str(reel.path), str(out), {"steps": 2}, cues=str(given))
    assert again["cues_generated"] == 0 and again["cues_reused"] == 2
    assert len(generations(home)) == rows


def test_a_cue_continues_its_sketch_kept_as_given_or_only_heard(in_first_home, reel, tmp_path) -> None:
    """M01 starts from a 1 s sketch (a 44.1 kHz mono tone with clicks). Expected, kept: the cue's first
    0.975 s are the sketch at 48 kHz sample for sample (the last 25 ms cross into the continuation),
    the rest is new; only heard (prompt_audio_kept: false): the cue is not the sketch; both record
    the sketch's sha256 and whether it was kept."""
    from audiox_core.store.files import sha256_file
    from flows.soundtrack import soundtrack

    home, out, folder, _ = in_first_home
    t = np.arange(44_100) / 44_100
    tone = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + (np.arange(44_100) % 11_025 < 400))
    sketch = tmp_path / "sketch.wav"
    write_wav24(sketch, np.stack([tone]).astype(np.float32) / 2, 44_100)
    expected = to_ints(read_given_audio(sketch, RATE, "sketch"))
    for kept in (True, False):
        fields = f"prompt_audio: {sketch}" + ("" if kept else ", prompt_audio_kept: false")
        soundtrack(
            str(reel.path),
            str(out),
            {"steps": 2},
            cues=str(sheet(tmp_path / "c.yaml", BASE[0], with_fields(BASE[1], fields))),
        )
        cue = ints(folder / "cues" / "scene0000_music.wav")
        head = round(0.975 * RATE)
        assert np.array_equal(cue[:head], expected[:head]) == kept
        record = [g["audio_input"] for g in generations(home) if (g["audio_input"] or {}).get("task") == "complete"][-1]
        assert record["sha256"] == sha256_file(sketch) and record["kept"] is kept
    assert [
        g["audio_input"]["kept"] for g in generations(home) if (g["audio_input"] or {}).get("task") == "complete"
    ] == [True, False]


def _not_audio(path: Path) -> Path:
    path.write_text("not a sound\n")
    return path


def _silent(path: Path) -> Path:
    write_wav24(path, np.zeros((2, RATE), np.float32), RATE)
    return path


def _long(path: Path) -> Path:
    write_wav24(path, 0.1 * np.ones((2, 3 * RATE), np.float32), RATE)
    return path


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: p / "missing.wav", "no such file"),
        (lambda p: _silent(p / "silent.wav"), "the sound is silent (digital silence)"),
        (lambda p: _not_audio(p / "notes.wav"), "it is not audio ffmpeg reads"),
        (lambda p: _long(p / "long.wav"), "nothing is left to complete"),
    ],
    ids=["missing", "silent", "not-audio", "longer-than-the-cue"],
)
def test_bad_prompt_audio_is_one_line_naming_the_cue_and_nothing_is_generated(
    prefect_api, home, reel, tmp_path, make, reason
) -> None:
    from flows.soundtrack import soundtrack

    bad = make(tmp_path)
    given = sheet(tmp_path / "c.yaml", BASE[0], with_fields(BASE[1], f"prompt_audio: {bad}"))
    with pytest.raises(InputError) as raised:
        soundtrack(str(reel.path), str(tmp_path / "out"), {"steps": 2}, cues=str(given))
    line = str(raised.value)
    assert "\n" not in line and f"{given}: cue M01" in line and reason in line and bad.name in line
    assert generations(home) == []
    assert not (tmp_path / "out" / reel_folder(str(reel.path))).exists()


def test_regenerate_without_a_previous_version_is_one_line(prefect_api, home, reel, tmp_path) -> None:
    from flows.soundtrack import soundtrack

    given = sheet(
        tmp_path / "c.yaml", with_fields(BASE[0], "regenerate: [{in: '00:00:00:05', out: '00:00:00:12'}]"), BASE[1]
    )
    with pytest.raises(InputError) as raised:
        soundtrack(str(reel.path), str(tmp_path / "out"), {"steps": 2}, cues=str(given))
    assert str(raised.value).startswith(f"{given}: cue F001: regenerate needs a previous version of the cue")
    assert generations(home) == []


def test_the_direction_form_asks_for_spans_and_a_new_take_clears_them(first) -> None:
    """Expected: "regenerate 00:00:00:05–00:00:00:12 of F001" sets the span (any dash, several
    comma-separated); a cue not changed keeps its spans (later versions reuse it); a new seed without
    spans is a whole new take; a span that is not two timecodes, or lies outside the cue, is refused."""
    from audiox_core.reel.cuesheet import parse_sheet
    from db import repository
    from db.session import database_url
    from tasks.direction import directed_sheet

    home = first[0]
    base = parse_sheet(sheet(home / "d.yaml", *BASE).read_text(), "d.yaml")
    changed = apply_changes(
        base, [CueChange(cue="F001", regenerate="00:00:00:05–00:00:00:12, 00:00:00:14-00:00:00:16")]
    )
    assert changed.cue("F001").regenerate == (("00:00:00:05", "00:00:00:12"), ("00:00:00:14", "00:00:00:16"))
    kept = apply_changes(changed, [CueChange(cue="M01", seed=3)])
    assert kept.cue("F001").regenerate == changed.cue("F001").regenerate
    assert apply_changes(changed, [CueChange(cue="F001", seed=3)]).cue("F001").regenerate == ()
    with pytest.raises(InputError, match=r"change to cue F001: regenerate span #1 '00:00:05' is not"):
        apply_changes(base, [CueChange(cue="F001", regenerate="00:00:05")])
    url = database_url(home)
    run_id = 1  # the base sheet's run: its scenes are those the direction is checked on
    assert repository.run_values(url, run_id)["status"] == "succeeded"
    outside = [CueChange(cue="F001", regenerate="00:00:00:15-00:00:01:05")]
    with pytest.raises(InputError, match=r"direction: cue F001: regenerate: span .* lies outside the cue"):
        directed_sheet(url, run_id, base.to_yaml(), outside)


@pytest.mark.parametrize("where", ["start", "end", "across-windows"])
def test_a_span_at_the_cues_start_or_end_or_across_a_window_boundary_keeps_the_rest(tiny_model, where) -> None:
    """The pipeline's own path (cue request, long-form generator, finished cue at 48 kHz) on a 14 s
    cue, two windows of the tiny model (11 s, 2 s overlap). Expected: outside the span every sample
    is the previous version's; at the cue's own start or end no crossfade is needed, so the span is
    new right up to that edge."""
    from audiox_core.model.generate import SamplingSettings
    from audiox_core.model.inpaint import Span
    from audiox_core.model.longform import generate_scenes
    from audiox_core.reel.cues import Cue
    from audiox_core.reel.given_sound import cue_request, finished_cue
    from audiox_core.sound.audio import resample

    config = tiny_model.config
    hop_s = config.autoencoder.hop / config.sample_rate
    seconds = 14.0
    rng = np.random.default_rng(1)
    previous = (0.1 * rng.standard_normal((2, int(seconds * RATE)))).astype(np.float32)
    span = {"start": Span(0.0, 0.5), "end": Span(13.4, 14.0), "across-windows": Span(8.5, 9.5)}[where]
    cue = Cue(0, "foley", "a bell", 5, regenerate=(span,))
    frames = np.zeros((0, 8, 8, 3), np.uint8)
    request = cue_request(cue, frames, seconds, previous, RATE, config.sample_rate, hop_s, "F001")
    (audio,) = generate_scenes(tiny_model, [request], SamplingSettings(steps=2))
    pcm = resample(audio, config.sample_rate, RATE)[:, : int(seconds * RATE)]
    out, new = finished_cue(cue, pcm, previous, RATE, -6.0)
    a, b = round(span.start_s * RATE), round(span.end_s * RATE)
    assert new == (span,)
    assert np.array_equal(out[:, :a], previous[:, :a]) and np.array_equal(out[:, b:], previous[:, b:])
    assert not np.allclose(out[:, a:b], previous[:, a:b])
    if where == "start":
        assert not np.allclose(out[:, :10], previous[:, :10])  # new from the first sample
    if where == "end":
        assert not np.allclose(out[:, -10:], previous[:, -10:])  # new to the last sample
