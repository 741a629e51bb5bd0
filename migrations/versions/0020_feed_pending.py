"""change feed: committed changes waiting for their sequence (PostgreSQL writers
no longer take the feed's ordering lock; see core/store/feed.py)

Revision ID: 0020_feed_pending
Revises: 0019_rehearsals
Create Date: 2026-12-06 05:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020_feed_pending"
down_revision: str | None = "0019_rehearsals"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
#: a new table only: a node of the previous head keeps appending to change_feed
#: under the feed lock, which the new settler takes too, so order holds
tailor_compatible = True


def upgrade() -> None:
    op.create_table(
        "change_feed_pending",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("txn", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=True),
        sa.Column("environment", sa.String(length=64), nullable=True),
        sa.Column("keys", sa.JSON(), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("audit_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_change_feed_pending_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["audit_id"],
            ["audit_log.id"],
            name=op.f("fk_change_feed_pending_audit_id_audit_log"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_change_feed_pending")),
    )


def downgrade() -> None:
    op.drop_table("change_feed_pending")
