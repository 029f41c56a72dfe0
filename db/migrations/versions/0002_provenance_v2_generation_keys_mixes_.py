"""provenance v2: generation keys, mixes, scene links, run trigger

Generations become content-addressed (unique ``key``) and shared between runs through
``scene_generations``; the first schema's per-scene generation rows cannot be keyed after the fact,
so they are dropped (pre-release data). Duplicate output rows collapse to one per (uri, sha256).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 14:07:30.802293
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _generations_v2() -> None:
    op.create_table(
        "generations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("source_sha256", sa.String(length=64), nullable=False),
        sa.Column("span_start", sa.BigInteger(), nullable=False),
        sa.Column("span_length", sa.BigInteger(), nullable=False),
        sa.Column("model_name", sa.Text(), nullable=False),
        sa.Column("checkpoint_sha256", sa.String(length=64), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("prompt_sha256", sa.String(length=64), nullable=False),
        sa.Column("conditioning_sha256", sa.String(length=64), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("sampler", sa.String(length=32), nullable=False),
        sa.Column("steps", sa.Integer(), nullable=False),
        sa.Column("cfg_scale", sa.Float(), nullable=False),
        sa.Column("windows", sa.Integer(), nullable=False),
        sa.Column("precision", sa.String(length=16), nullable=False),
        sa.Column("device", sa.String(length=32), nullable=False),
        sa.Column("torch_version", sa.String(length=64), nullable=False),
        sa.Column("cuda_version", sa.String(length=16), nullable=True),
        sa.Column("code_version", sa.String(length=64), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("elapsed_s", sa.Float(), nullable=False),
        sa.Column("output_uri", sa.Text(), nullable=False),
        sa.Column("output_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_generations")),
        sa.UniqueConstraint("key", name=op.f("uq_generations_key")),
    )
    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_generations_output_sha256"), ["output_sha256"], unique=False)
        batch_op.create_index(batch_op.f("ix_generations_source_sha256"), ["source_sha256"], unique=False)


def _generations_v1() -> None:
    op.create_table(
        "generations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scene_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("model_name", sa.Text(), nullable=False),
        sa.Column("checkpoint_sha256", sa.String(length=64), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("sampler", sa.String(length=32), nullable=False),
        sa.Column("steps", sa.Integer(), nullable=False),
        sa.Column("cfg_scale", sa.Float(), nullable=False),
        sa.Column("device", sa.String(length=32), nullable=False),
        sa.Column("torch_version", sa.String(length=32), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("output_uri", sa.Text(), nullable=False),
        sa.Column("output_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["scene_id"], ["scenes.id"], name=op.f("fk_generations_scene_id_scenes"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_generations")),
    )
    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_generations_output_sha256"), ["output_sha256"], unique=False)
        batch_op.create_index(batch_op.f("ix_generations_scene_id"), ["scene_id"], unique=False)


def upgrade() -> None:
    op.drop_table("generations")
    _generations_v2()
    op.create_table(
        "scene_generations",
        sa.Column("scene_id", sa.Integer(), nullable=False),
        sa.Column("generation_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["generation_id"],
            ["generations.id"],
            name=op.f("fk_scene_generations_generation_id_generations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["scene_id"], ["scenes.id"], name=op.f("fk_scene_generations_scene_id_scenes"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("scene_id", "generation_id", name=op.f("pk_scene_generations")),
    )
    with op.batch_alter_table("scene_generations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_scene_generations_generation_id"), ["generation_id"], unique=False)
    op.create_table(
        "mixes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("preset", sa.String(length=32), nullable=False),
        sa.Column("integrated_lufs", sa.Float(), nullable=False),
        sa.Column("loudness_range_lu", sa.Float(), nullable=False),
        sa.Column("true_peak_dbtp", sa.Float(), nullable=False),
        sa.Column("normalization_gain_db", sa.Float(), nullable=False),
        sa.Column("limiter_reduction_db", sa.Float(), nullable=False),
        sa.Column("stems", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_mixes_run_id_runs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mixes")),
        sa.UniqueConstraint("run_id", name=op.f("uq_mixes_run_id")),
    )
    op.execute("DELETE FROM outputs WHERE id NOT IN (SELECT MAX(id) FROM outputs GROUP BY uri, sha256)")
    with op.batch_alter_table("outputs", schema=None) as batch_op:
        batch_op.create_unique_constraint(batch_op.f("uq_outputs_uri"), ["uri", "sha256"])
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("deployment", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("trigger", sa.String(length=64), nullable=True))
    with op.batch_alter_table("scenes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("end_tc", sa.String(length=16), server_default="", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("scenes", schema=None) as batch_op:
        batch_op.drop_column("end_tc")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("trigger")
        batch_op.drop_column("deployment")
    with op.batch_alter_table("outputs", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_outputs_uri"), type_="unique")
    op.drop_table("mixes")
    op.drop_table("scene_generations")
    op.drop_table("generations")
    _generations_v1()
