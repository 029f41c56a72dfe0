"""run source version for nightly skips

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 14:18:12.704562
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source_version", sa.String(length=128), nullable=True))
        batch_op.create_index(batch_op.f("ix_runs_source_uri"), ["source_uri"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_runs_source_uri"))
        batch_op.drop_column("source_version")
