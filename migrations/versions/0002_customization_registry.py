"""customization registry: published customizations and their per-tenant state

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 09:30:03.028526
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "customizations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("package", sa.String(length=200), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("capability", sa.String(length=64), nullable=True),
        sa.Column("manifest", sa.JSON(), nullable=False),
        sa.Column("hooks", sa.JSON(), nullable=False),
        sa.Column("setting_keys", sa.JSON(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_by", sa.String(length=200), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customizations")),
        sa.UniqueConstraint("name", name=op.f("uq_customizations_name")),
    )
    with op.batch_alter_table("customizations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_customizations_capability"), ["capability"], unique=False
        )

    op.create_table(
        "customization_tenants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customization_id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["customization_id"],
            ["customizations.id"],
            name=op.f("fk_customization_tenants_customization_id_customizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_customization_tenants_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customization_tenants")),
        sa.UniqueConstraint(
            "customization_id",
            "tenant_id",
            name=op.f("uq_customization_tenants_customization_id_tenant_id"),
        ),
    )


def downgrade() -> None:
    op.drop_table("customization_tenants")
    with op.batch_alter_table("customizations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customizations_capability"))

    op.drop_table("customizations")
