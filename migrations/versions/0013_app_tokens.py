"""app tokens: the origins a browser app may call from (CORS), and the app's name

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 23:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("origins", sa.JSON(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("app", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("app")
        batch.drop_column("origins")
