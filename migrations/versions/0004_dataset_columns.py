"""the input columns of a table dataset: type, encoding, missing rate

Revision ID: c2e3f4a5b6c7
Revises: b1d2c3e4f5a6
Create Date: 2026-11-29 00:45:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c2e3f4a5b6c7"
down_revision: str | Sequence[str] | None = "b1d2c3e4f5a6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("columns", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.drop_column("columns")
