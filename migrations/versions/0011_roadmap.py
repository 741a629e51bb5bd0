"""roadmap items and their pledges (co-funding)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 22:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "roadmap_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("source_kind", sa.String(16), nullable=False),
        sa.Column("source_id", sa.String(200), nullable=False),
        sa.Column("capability", sa.String(200), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("target_release", sa.String(64), nullable=True),
        sa.Column("shipped_in", sa.String(64), nullable=True),
        sa.Column("customizations", sa.JSON(), nullable=False),
        sa.Column("tenants", sa.JSON(), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_roadmap_items"),
    )
    op.create_index("ix_roadmap_items_capability", "roadmap_items", ["capability"])
    op.create_table(
        "roadmap_pledges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("pledged_by", sa.String(200), nullable=False),
        sa.Column("pledged_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["roadmap_items.id"],
            name="fk_roadmap_pledges_item_id_roadmap_items",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name="fk_roadmap_pledges_tenant_id_tenants",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_roadmap_pledges"),
        sa.UniqueConstraint("item_id", "tenant_id", name="uq_roadmap_pledges_item_id_tenant_id"),
    )
    op.create_index("ix_roadmap_pledges_tenant_id", "roadmap_pledges", ["tenant_id"])


def downgrade() -> None:
    op.drop_index("ix_roadmap_pledges_tenant_id", table_name="roadmap_pledges")
    op.drop_table("roadmap_pledges")
    op.drop_index("ix_roadmap_items_capability", table_name="roadmap_items")
    op.drop_table("roadmap_items")
