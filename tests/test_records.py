"""The records every layer speaks: the ``*Record`` types keep exactly their tables' columns (db keeps
no import of audiox_core, so this test is what ties them), and the provenance document survives its
JSON form unchanged."""

from __future__ import annotations

import dataclasses
import math

import pytest
from sqlalchemy import Column, Integer, MetaData, Table

from audiox_core.provenance.records import (
    CueGeneration,
    GenerationRecord,
    MixRecord,
    ModelFacts,
    OutputRecord,
    ProcessFacts,
    ProvenanceDocument,
    RunFacts,
    SceneRecord,
    SourceFacts,
)
from audiox_core.sound.loudness import LoudnessReport, StemLoudness
from db.models import Generation, Mix, Output, Scene

# Record type, its table, and the columns no record carries (surrogate ids, the run link, timestamps).
PAIRS = [
    (GenerationRecord, Generation.__table__, {"id", "created_at"}),
    (SceneRecord, Scene.__table__, {"id", "run_id"}),
    (MixRecord, Mix.__table__, {"id", "run_id"}),
    (OutputRecord, Output.__table__, {"id", "run_id"}),
]


def drift(record: type, table: Table, skipped: set[str]) -> dict[str, list[str]]:
    """Fields without a column, columns without a field, and optional fields on NOT NULL columns
    (or the reverse); empty when the record and the table agree."""
    fields = {f.name: f for f in dataclasses.fields(record)}
    columns = {c.key: c for c in table.columns if c.key not in skipped}
    return {
        k: v
        for k, v in {
            "fields without a column": sorted(set(fields) - set(columns)),
            "columns without a field": sorted(set(columns) - set(fields)),
            "nullability differs": sorted(
                n for n in set(fields) & set(columns) if ("None" in str(fields[n].type)) != columns[n].nullable
            ),
        }.items()
        if v
    }


@pytest.mark.parametrize(("record", "table", "skipped"), PAIRS, ids=[t.name for _, t, _ in PAIRS])
def test_records_have_exactly_their_tables_columns(record: type, table: Table, skipped: set[str]) -> None:
    assert drift(record, table, skipped) == {}


def test_a_new_column_or_field_is_drift() -> None:
    table = Generation.__table__.to_metadata(MetaData())
    table.append_column(Column("guidance", Integer, nullable=False))
    assert drift(GenerationRecord, table, {"id", "created_at"}) == {"columns without a field": ["guidance"]}
    grown = dataclasses.make_dataclass(
        "Grown", [*((f.name, f.type) for f in dataclasses.fields(OutputRecord)), ("mime", "str")]
    )
    assert drift(grown, Output.__table__, {"id", "run_id"}) == {"fields without a column": ["mime"]}
    fields = [(f.name, "int | None" if f.name == "bytes" else f.type) for f in dataclasses.fields(OutputRecord)]
    optional = dataclasses.make_dataclass("Optional", fields)
    assert drift(optional, Output.__table__, {"id", "run_id"}) == {"nullability differs": ["bytes"]}


def sample_document() -> ProvenanceDocument:
    """A two-scene document with every kind of value its JSON must carry (None, booleans, nested
    dicts, −inf for a silent stem)."""
    process = ProcessFacts("host", 42, "2026-12-02T16:00:00+00:00")
    model = ModelFacts("tiny", "tiny (RANDOM WEIGHTS)", "b" * 64, True, "cpu", 5, 224, "fp32", "2.14.1", None, process)
    scenes = tuple(
        SceneRecord(
            i, i * 0.8, (i + 1) * 0.8, 20 * i, 20 * (i + 1), f"00:00:0{i}:00", f"00:00:0{i}:20", {"threshold": 27.0}
        )
        for i in range(2)
    )

    def generation(i: int, kind: str) -> GenerationRecord:
        return GenerationRecord(
            f"{i}{kind}".ljust(64, "k"),
            kind,
            "a" * 64,
            38_400 * i,
            38_400,
            "tiny",
            "b" * 64,
            f"{kind} {i}",
            "c" * 64,
            "d" * 64,
            i,
            "dpmpp-3m-sde",
            3,
            7.0,
            1,
            "fp32",
            "cpu",
            "2.14.1",
            None,
            "0.1.0",
            0.8,
            0.123,
            f"file:///out/reel/cues/{i}_{kind}.wav",
            f"{i}{kind}".ljust(64, "0"),
        )

    silent = {
        **dataclasses.asdict(StemLoudness(-math.inf, 0.0, -math.inf)),
        "uri": "file:///out/reel/stems/foley.wav",
        "sha256": "e" * 64,
    }
    settings = {"seed": 5, "review_proxy": False, "scene_threshold": 27.0}
    return ProvenanceDocument(
        run=RunFacts(7, "3c1e0b6e-1f2a-4b8e-9d8e-0a1b2c3d4e5f", None, "manual", "0.1.0", settings),
        source=SourceFacts(
            "/footage/reel.mp4", "a" * 64, 123_456, None, {"path": "/footage/reel.mp4", "video": {"fps": "25/1"}}
        ),
        model=model,
        scenes=scenes,
        generations=tuple(CueGeneration(i, generation(i, k)) for i in range(2) for k in ("foley", "music")),
        mix=MixRecord("ebu-r128", -23.0, 3.2, -1.5, 4.25, 0.0, {"foley": silent}),
        outputs=tuple(OutputRecord(k, f"file:///out/reel/{k}.wav", "f" * 64, 10) for k in ("mix", "stems/foley")),
    )


def test_provenance_document_survives_its_json() -> None:
    document = sample_document()
    text = document.to_json()
    assert ProvenanceDocument.from_json(text) == document
    assert ProvenanceDocument.from_json(text).to_json() == text
    assert '"integrated_lufs": -Infinity' in text  # a silent stem stays −inf, not null


def test_loudness_report_survives_its_dict() -> None:
    report = LoudnessReport(
        "ebu-r128",
        -23.0,
        -1.0,
        4.25,
        0.0,
        0.5,
        0.0,
        {"foley": StemLoudness(-30.0, 2.0, -9.0), "mix": StemLoudness(-23.0, 3.2, -1.5)},
        48_000,
    )
    assert LoudnessReport.from_dict(report.to_dict()) == report
    assert report.mix == StemLoudness(-23.0, 3.2, -1.5) and list(report.stems) == ["foley"]
