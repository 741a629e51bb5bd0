"""kept rehearsal runs: the findings readiness joins (source rehearsal)

Revision ID: 0019_rehearsals
Revises: 0018_audit_request_id
Create Date: 2026-12-06 01:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019_rehearsals"
down_revision: str | None = "0018_audit_request_id"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
#: a new table only: a node of the previous head keeps working on this schema
tailor_compatible = True


def upgrade() -> None:
    op.create_table(
        "rehearsal_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("tenants", sa.JSON(), nullable=False),
        sa.Column("findings", sa.JSON(), nullable=False),
        sa.Column("customizations", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rehearsal_runs"),
    )
    op.create_index("ix_rehearsal_runs_target_id", "rehearsal_runs", ["target", "id"])


def downgrade() -> None:
    op.drop_index("ix_rehearsal_runs_target_id", table_name="rehearsal_runs")
    op.drop_table("rehearsal_runs")
