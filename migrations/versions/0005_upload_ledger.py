"""uploads: the size of every stored upload, kept after its dataset is deleted, for the
per-owner daily upload quota

Revision ID: d3f4a5b6c7d8
Revises: c2e3f4a5b6c7
Create Date: 2026-11-29 03:40:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d3f4a5b6c7d8"
down_revision: str | Sequence[str] | None = "c2e3f4a5b6c7"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "uploads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(length=100), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_uploads_owner", "uploads", ["owner"])
    op.create_index("ix_uploads_created_at", "uploads", ["created_at"])
    # the datasets already stored count as the uploads they were
    op.execute(
        "INSERT INTO uploads (owner, size_bytes, created_at) "
        "SELECT owner, size_bytes, created_at FROM datasets"
    )


def downgrade() -> None:
    op.drop_index("ix_uploads_created_at", table_name="uploads")
    op.drop_index("ix_uploads_owner", table_name="uploads")
    op.drop_table("uploads")
