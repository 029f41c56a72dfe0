"""generation audio input

``generations.audio_input`` holds the sound a cue was made from besides its picture and prompt: the
previous version's cue it inpainted (its URI, sha256 and the spans made again) or the sketch it
completed (URI, sha256, whether the sketch is kept at the cue's start). Rows made before this
revision, and cues made from picture and prompt alone, have none.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 11:40:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("audio_input", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.drop_column("audio_input")
