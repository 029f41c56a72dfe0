"""run cue sheet

``runs.cue_sheet`` holds the cue sheet (YAML) the run followed: the spotting document a producer
edits. A rerun of the same source starts from the latest succeeded run's sheet when a producer
edited it. Rows made before this revision have none (their reruns draft one).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 07:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cue_sheet", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("cue_sheet")
