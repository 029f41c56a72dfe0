"""Provenance schema in W3C PROV terms: assets are entities, runs and generations are activities.

Every output can be traced to its footage (sha256), the scenes, the model and checkpoint hash,
prompts, seeds and sampler settings, and the code version that made it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Alembic-friendly constraint names (SQLAlchemy docs, "Configuring Constraint Naming Conventions").
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Asset(Base):
    """A source file, identified by its content."""

    __tablename__ = "assets"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    uri: Mapped[str] = mapped_column(Text)
    bytes: Mapped[int] = mapped_column(BigInteger)
    duration_s: Mapped[float | None] = mapped_column(Float)
    fps_num: Mapped[int | None] = mapped_column(Integer)
    fps_den: Mapped[int | None] = mapped_column(Integer)
    streams: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Run(Base):
    """One execution of the soundtrack flow for one source."""

    __tablename__ = "runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    flow_run_id: Mapped[str | None] = mapped_column(String(36), index=True)
    deployment: Mapped[str | None] = mapped_column(String(200))
    trigger: Mapped[str | None] = mapped_column(String(64))
    source_uri: Mapped[str] = mapped_column(Text, index=True)
    source_version: Mapped[str | None] = mapped_column(String(128))  # S3 version id or ETag
    out_uri: Mapped[str | None] = mapped_column(Text)
    asset_id: Mapped[int | None] = mapped_column(ForeignKey("assets.id"), index=True)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)
    model: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # the model's facts, once it is loaded
    code_version: Mapped[str] = mapped_column(String(64))
    process: Mapped[str | None] = mapped_column(String(64))  # tag of the process running it (host, pid, start)
    status: Mapped[str] = mapped_column(String(16), index=True)  # running, succeeded, failed, cancelled, crashed
    error: Mapped[str | None] = mapped_column(Text)  # why it did not succeed, one line
    cue_sheet: Mapped[str | None] = mapped_column(Text)  # the cue sheet (YAML) it followed
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    asset: Mapped[Asset | None] = relationship()
    scenes: Mapped[list[Scene]] = relationship(back_populates="run", order_by="Scene.index")
    outputs: Mapped[list[Output]] = relationship(back_populates="run")
    mix: Mapped[Mix | None] = relationship(back_populates="run")


class Scene(Base):
    __tablename__ = "scenes"
    __table_args__ = (UniqueConstraint("run_id", "index"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    index: Mapped[int] = mapped_column(Integer)
    start_s: Mapped[float] = mapped_column(Float)
    end_s: Mapped[float] = mapped_column(Float)
    start_frame: Mapped[int] = mapped_column(Integer)
    end_frame: Mapped[int] = mapped_column(Integer)
    start_tc: Mapped[str] = mapped_column(String(16))
    end_tc: Mapped[str] = mapped_column(String(16), server_default="")
    detector: Mapped[dict[str, Any]] = mapped_column(JSON)

    run: Mapped[Run] = relationship(back_populates="scenes")
    generations: Mapped[list[Generation]] = relationship(secondary="scene_generations", order_by="Generation.kind")


class SceneGeneration(Base):
    """Which generation gives which scene its cue (a rerun links its new scenes to reused generations)."""

    __tablename__ = "scene_generations"
    scene_id: Mapped[int] = mapped_column(ForeignKey("scenes.id", ondelete="CASCADE"), primary_key=True)
    generation_id: Mapped[int] = mapped_column(
        ForeignKey("generations.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Generation(Base):
    """One generated cue, keyed by a hash of everything that determines it: the same inputs, model,
    prompt, seed and settings give the same key, so a rerun finds and reuses it."""

    __tablename__ = "generations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    source_sha256: Mapped[str] = mapped_column(String(64), index=True)
    span_start: Mapped[int] = mapped_column(BigInteger)  # samples at 48 kHz on the reel's timeline
    span_length: Mapped[int] = mapped_column(BigInteger)
    model_name: Mapped[str] = mapped_column(Text)
    checkpoint_sha256: Mapped[str] = mapped_column(String(64))
    prompt: Mapped[str] = mapped_column(Text)
    prompt_sha256: Mapped[str] = mapped_column(String(64))
    conditioning_sha256: Mapped[str] = mapped_column(String(64))  # the frames the model saw
    seed: Mapped[int] = mapped_column(BigInteger)
    sampler: Mapped[str] = mapped_column(String(32))
    steps: Mapped[int] = mapped_column(Integer)
    cfg_scale: Mapped[float] = mapped_column(Float)
    windows: Mapped[int] = mapped_column(Integer)
    precision: Mapped[str] = mapped_column(
        String(64)
    )  # what actually runs, e.g. "dit=bf16 vae=fp32 cond=fp32 text=fp16"
    device: Mapped[str] = mapped_column(String(32))
    torch_version: Mapped[str] = mapped_column(String(64))
    cuda_version: Mapped[str | None] = mapped_column(String(16))
    code_version: Mapped[str] = mapped_column(String(64))
    seconds: Mapped[float] = mapped_column(Float)
    elapsed_s: Mapped[float] = mapped_column(Float)
    output_uri: Mapped[str] = mapped_column(Text)
    output_sha256: Mapped[str] = mapped_column(String(64), index=True)
    # the sound it was made from besides picture and prompt: the previous cue it inpainted (spans made
    # again) or the sketch it completed; None for a cue made from picture and prompt alone
    audio_input: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Mix(Base):
    """The mastering of one run: preset, loudness figures, and the stems it wrote."""

    __tablename__ = "mixes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), unique=True)
    preset: Mapped[str] = mapped_column(String(32))
    integrated_lufs: Mapped[float] = mapped_column(Float)
    loudness_range_lu: Mapped[float] = mapped_column(Float)
    true_peak_dbtp: Mapped[float] = mapped_column(Float)
    normalization_gain_db: Mapped[float] = mapped_column(Float)
    limiter_reduction_db: Mapped[float] = mapped_column(Float)
    stems: Mapped[dict[str, Any]] = mapped_column(JSON)  # kind → uri, sha256 and loudness figures

    run: Mapped[Run] = relationship(back_populates="mix")


class Output(Base):
    """A delivered file; looked up by sha256 so a renamed copy still finds its provenance. One row
    per (uri, content): a rerun that writes the same bytes to the same place reuses it."""

    __tablename__ = "outputs"
    __table_args__ = (UniqueConstraint("uri", "sha256"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    uri: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    bytes: Mapped[int] = mapped_column(BigInteger)

    run: Mapped[Run] = relationship(back_populates="outputs")


class Review(Base):
    """A producer's decision on one version (a run): approved, or changes requested per cue; who, when,
    the note, and where an approved version was delivered."""

    __tablename__ = "reviews"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    flow_run_id: Mapped[str | None] = mapped_column(String(36), index=True)
    decision: Mapped[str] = mapped_column(String(16))  # approved, changes, timed-out
    reviewer: Mapped[str] = mapped_column(Text)
    note: Mapped[str] = mapped_column(Text, default="")
    changes: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # per cue: what changed
    delivered_uri: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
