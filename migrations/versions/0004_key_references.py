"""customizations: where their code refers to setting keys (static evidence)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("customizations") as batch:
        batch.add_column(
            sa.Column("key_references", sa.JSON(), nullable=False, server_default="[]")
        )


def downgrade() -> None:
    with op.batch_alter_table("customizations") as batch:
        batch.drop_column("key_references")
