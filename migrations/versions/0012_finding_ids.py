"""finding ids name the key or hook: CODE:subject:key-or-hook@tenant

Two findings of one customization (two removed keys) shared the id
``CODE:subject@tenant``, so triage could not waive or plan them apart. A finding
is now identified by (code, subject, key or hook, tenant). A decision stored
under an old id covered every finding of its (code, subject, tenant): it becomes
``CODE:subject:*@tenant``, which still covers each of them (a decision on one
finding's own id takes precedence), so no decision is lost.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 22:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: the detail of a decision made before details existed: every key or hook
ANY = "*"

triage = sa.table(
    "finding_triage",
    sa.column("id", sa.Integer),
    sa.column("finding", sa.String),
    sa.column("code", sa.String),
    sa.column("subject", sa.String),
    sa.column("detail", sa.String),
    sa.column("tenant", sa.String),
    sa.column("decided_at", sa.DateTime),
)


def upgrade() -> None:
    with op.batch_alter_table("finding_triage") as batch:
        batch.add_column(sa.Column("detail", sa.String(200), nullable=False, server_default=""))
    bind = op.get_bind()
    rows = bind.execute(sa.select(triage.c.id, triage.c.code, triage.c.subject, triage.c.tenant))
    for row_id, code, subject, tenant in rows.all():
        bind.execute(
            triage.update()
            .where(triage.c.id == row_id)
            .values(finding=f"{code}:{subject}:{ANY}@{tenant}", detail=ANY)
        )


def downgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(triage.c.id, triage.c.code, triage.c.subject, triage.c.tenant).order_by(
            triage.c.decided_at.desc(), triage.c.id.desc()
        )
    ).all()
    kept: set[str] = set()
    for row_id, code, subject, tenant in rows:
        old = f"{code}:{subject}@{tenant}"
        if old in kept:  # the old ids cannot tell two keys apart: the latest decision stays
            bind.execute(triage.delete().where(triage.c.id == row_id))
            continue
        kept.add(old)
        bind.execute(triage.update().where(triage.c.id == row_id).values(finding=old))
    with op.batch_alter_table("finding_triage") as batch:
        batch.drop_column("detail")
