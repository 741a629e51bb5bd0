"""change requests: protected environments, four-eyes approvals, scheduled changes

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 23:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("environments") as batch:
        batch.add_column(
            sa.Column("protected", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("approvals", sa.Integer(), nullable=False, server_default="1"))
    op.create_table(
        "change_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("environment", sa.String(length=64), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=True),
        sa.Column("value", sa.JSON(), nullable=True),
        sa.Column("expected_revision", sa.Integer(), nullable=True),
        sa.Column("customization", sa.String(length=64), nullable=True),
        sa.Column("version", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("apply_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("author", sa.String(length=200), nullable=False),
        sa.Column("author_key", sa.String(length=200), nullable=False),
        sa.Column("author_role", sa.String(length=32), nullable=False),
        sa.Column("required_approvals", sa.Integer(), nullable=False),
        sa.Column("approvals", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reverts", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_change_requests_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_change_requests")),
    )
    op.create_index("ix_change_requests_tenant_state", "change_requests", ["tenant_id", "state"])
    op.create_index("ix_change_requests_state_apply_at", "change_requests", ["state", "apply_at"])


def downgrade() -> None:
    op.drop_index("ix_change_requests_state_apply_at", table_name="change_requests")
    op.drop_index("ix_change_requests_tenant_state", table_name="change_requests")
    op.drop_table("change_requests")
    with op.batch_alter_table("environments") as batch:
        batch.drop_column("approvals")
        batch.drop_column("protected")
