"""audit entries carry the id of the request that made them (expand only)

An added nullable column and its index: a node of the previous release (head 0016) keeps
working on this schema (it writes audit entries without a request id), so the
migration is marked compatible (docs/operations.md, "Upgrading Tailor itself").

Revision ID: 0018_audit_request_id
Revises: 0017_input_samples
Create Date: 2026-12-06 01:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018_audit_request_id"
down_revision: str | None = "0017_input_samples"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: expand only: nodes whose head is 0016 stay ready on this schema (core.store.db)
tailor_compatible = True


def upgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("request_id", sa.String(64), nullable=True))
    # an entry is looked up by the request id a log line names
    op.create_index("ix_audit_log_request_id", "audit_log", ["request_id"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_request_id", table_name="audit_log")
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("request_id")
