"""runtime observations per (customization, tenant, hook) and the keys they touch

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 21:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "customization_observations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customization", sa.String(length=64), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("hook", sa.String(length=100), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("changed", sa.Integer(), nullable=False),
        *[sa.Column(f"latency_{i}", sa.Integer(), nullable=False) for i in range(13)],
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customization_observations")),
        sa.UniqueConstraint(
            "customization",
            "tenant",
            "hook",
            name=op.f("uq_customization_observations_customization_tenant_hook"),
        ),
    )
    op.create_index(
        op.f("ix_customization_observations_tenant"),
        "customization_observations",
        ["tenant"],
        unique=False,
    )
    op.create_table(
        "customization_observed_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customization", sa.String(length=64), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("hook", sa.String(length=100), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("direction", sa.String(length=16), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customization_observed_keys")),
        sa.UniqueConstraint(
            "customization",
            "tenant",
            "hook",
            "key",
            "direction",
            name=op.f("uq_customization_observed_keys_customization_tenant_hook_key_direction"),
        ),
    )
    op.create_index(
        op.f("ix_customization_observed_keys_tenant"),
        "customization_observed_keys",
        ["tenant"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_customization_observed_keys_tenant"), table_name="customization_observed_keys"
    )
    op.drop_table("customization_observed_keys")
    op.drop_index(
        op.f("ix_customization_observations_tenant"), table_name="customization_observations"
    )
    op.drop_table("customization_observations")
