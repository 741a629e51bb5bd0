"""recorded hook inputs: per-tenant recording policy and sealed samples (issue 24)

Revision ID: 0017_input_samples
Revises: 0016
Create Date: 2026-12-06 01:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017_input_samples"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: expand only (two new tables): nodes whose head is 0016 stay ready on this
#: schema (core.store.db)
tailor_compatible = True


def upgrade() -> None:
    op.create_table(
        "input_recording",
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("retention_days", sa.Integer(), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name="fk_input_recording_tenant_id_tenants",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", name="pk_input_recording"),
    )
    op.create_table(
        "input_samples",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sample_id", sa.String(40), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("environment", sa.String(64), nullable=True),
        sa.Column("customization", sa.String(200), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("hook", sa.String(200), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name="fk_input_samples_tenant_id_tenants",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_input_samples"),
        sa.UniqueConstraint("sample_id", name="uq_input_samples_sample_id"),
    )
    op.create_index("ix_input_samples_key", "input_samples", ["tenant_id", "customization", "hook"])
    op.create_index("ix_input_samples_recorded_at", "input_samples", ["recorded_at"])


def downgrade() -> None:
    op.drop_index("ix_input_samples_recorded_at", table_name="input_samples")
    op.drop_index("ix_input_samples_key", table_name="input_samples")
    op.drop_table("input_samples")
    op.drop_table("input_recording")
