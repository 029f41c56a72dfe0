"""run model facts, longer precision labels

``runs.model`` holds the loaded model's facts (name, label, checkpoint, precision, process), so the
lineage command rebuilds a run's provenance document from the database alone. The precision label is
now computed per part of the model (``dit=bf16 vae=fp32 cond=fp32 text=fp16``), longer than 16.
Downgrading shortens it again: a database holding longer labels cannot go below this revision.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 16:50:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("model", sa.JSON(), nullable=True))
    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.alter_column(
            "precision", existing_type=sa.String(length=16), type_=sa.String(length=64), existing_nullable=False
        )


def downgrade() -> None:
    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.alter_column(
            "precision", existing_type=sa.String(length=64), type_=sa.String(length=16), existing_nullable=False
        )
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("model")
