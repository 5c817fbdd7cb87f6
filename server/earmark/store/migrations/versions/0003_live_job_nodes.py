"""The node a tagging session or stream task runs on, so that on a shared database a
restarting node resumes its own live work and not another node's (issue 23).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("tagging_sessions", "stream_tasks"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("node", sa.String(length=200), nullable=True))


def downgrade() -> None:
    for table in ("tagging_sessions", "stream_tasks"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("node")
