"""job leases, candidate attempts and failure kinds, the dataset's task rule

Revision ID: 7c3e91f0a2d4
Revises: 2a1d4542beb5
Create Date: 2026-11-28 23:59:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7c3e91f0a2d4"
down_revision: str | Sequence[str] | None = "2a1d4542beb5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lease_owner", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("candidates", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attempts", sa.Integer(), server_default="1", nullable=False))
        batch_op.add_column(sa.Column("failure_kind", sa.String(length=16), nullable=True))
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("task_rule", sa.String(length=300), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.drop_column("task_rule")
    with op.batch_alter_table("candidates", schema=None) as batch_op:
        batch_op.drop_column("failure_kind")
        batch_op.drop_column("attempts")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("heartbeat_at")
        batch_op.drop_column("lease_owner")
