"""customization versions: content-addressed artifacts, immutable versions, pins

Every registration becomes version 1 of itself (its manifest, hooks and
references), without code: ``tailor db upgrade`` then stores the code it finds
on disk for each (``api/cli/db.py``). Every enablement is kept, pinned to that
version.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 20:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "customization_artifacts",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name="pk_customization_artifacts"),
    )
    op.create_table(
        "customization_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customization_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("manifest", sa.JSON(), nullable=False),
        sa.Column("hooks", sa.JSON(), nullable=False),
        sa.Column("setting_keys", sa.JSON(), nullable=False),
        sa.Column("key_references", sa.JSON(), nullable=False),
        sa.Column("hooks_module", sa.String(100), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_by", sa.String(200), nullable=False),
        sa.Column("yanked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("yank_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["customization_id"],
            ["customizations.id"],
            name="fk_customization_versions_customization_id_customizations",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sha256"],
            ["customization_artifacts.sha256"],
            name="fk_customization_versions_sha256_customization_artifacts",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_customization_versions"),
        sa.UniqueConstraint(
            "customization_id", "version", name="uq_customization_versions_customization_id_version"
        ),
    )
    op.create_index(
        "ix_customization_versions_customization_id",
        "customization_versions",
        ["customization_id"],
    )
    with op.batch_alter_table("customization_tenants") as batch:
        batch.add_column(sa.Column("version_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_customization_tenants_version_id_customization_versions",
            "customization_versions",
            ["version_id"],
            ["id"],
            ondelete="SET NULL",
        )
    with op.batch_alter_table("customization_observations") as batch:
        batch.add_column(sa.Column("version", sa.String(64), nullable=False, server_default=""))
    # today's registrations: version 1 of each, every enablement pinned to it
    op.execute(
        "INSERT INTO customization_versions (customization_id, version, sha256, manifest, "
        "hooks, setting_keys, key_references, hooks_module, published_at, published_by) "
        "SELECT id, version, NULL, manifest, hooks, setting_keys, key_references, 'hooks', "
        "published_at, published_by FROM customizations"
    )
    op.execute(
        "UPDATE customization_tenants SET version_id = (SELECT v.id FROM customization_versions v "
        "WHERE v.customization_id = customization_tenants.customization_id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("customization_observations") as batch:
        batch.drop_column("version")
    with op.batch_alter_table("customization_tenants") as batch:
        batch.drop_constraint(
            "fk_customization_tenants_version_id_customization_versions", type_="foreignkey"
        )
        batch.drop_column("version_id")
    op.drop_index("ix_customization_versions_customization_id", "customization_versions")
    op.drop_table("customization_versions")
    op.drop_table("customization_artifacts")
