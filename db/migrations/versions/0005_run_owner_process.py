"""run owner process

``runs.process`` holds the tag of the process that runs it (host, pid and start time), so a sweep
tells a run whose process was killed (SIGKILL, a power cut) from one still working, and closes it as
crashed. Rows made before this revision have no tag and are never swept. The status column also
holds ``cancelled`` and ``crashed`` now (it was wide enough).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-09 10:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("process", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("process")
