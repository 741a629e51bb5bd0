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
#: a new table, index and trigger: a node of the previous head keeps appending to
#: change_feed under the feed lock, which the settler takes too, and the settler
#: skips what such a node appended itself
tailor_compatible = True

#: PostgreSQL: each audit entry, at its transaction's commit, waits for its
#: sequence in change_feed_pending (core.store.feed.settle gives it)
_FUNCTION = """
CREATE FUNCTION tailor_feed_pending() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO change_feed_pending (txn, audit_id) VALUES (txid_current(), NEW.id);
    RETURN NULL;
END
$$
"""
_TRIGGER = """
CREATE CONSTRAINT TRIGGER tailor_feed_pending AFTER INSERT ON audit_log
DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION tailor_feed_pending()
"""


def upgrade() -> None:
    op.create_table(
        "change_feed_pending",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("txn", sa.BigInteger(), nullable=False),
        sa.Column("audit_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_change_feed_pending")),
    )
    op.create_index("ix_change_feed_audit_id", "change_feed", ["audit_id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_FUNCTION)
        op.execute(_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS tailor_feed_pending ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS tailor_feed_pending()")
    op.drop_index("ix_change_feed_audit_id", table_name="change_feed")
    op.drop_table("change_feed_pending")
