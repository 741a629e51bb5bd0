"""SQLAlchemy 2 typed models. One linear Alembic history mirrors this module."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from core.model.clock import utcnow
from core.model.overrides import TENANT_SCOPE
from core.model.request_id import current_request_id

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def aware(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes: they were stored in UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSON, Any: JSON}


class Release(Base):
    __tablename__ = "releases"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16))  # released | planned
    #: the whole manifest (extension points, supersedes, ...) as imported/exported
    manifest: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    definitions: Mapped[list[SettingDefinitionRow]] = relationship(
        back_populates="release", cascade="all, delete-orphan"
    )


class SettingDefinitionRow(Base):
    __tablename__ = "setting_definitions"
    __table_args__ = (UniqueConstraint("release_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(200))
    #: SettingDefinition.to_dict(): type, default, constraints, lifecycle, secret
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)

    release: Mapped[Release] = relationship(back_populates="definitions")


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: bumped in the same transaction as every write that can change this tenant's
    #: settings answer: cached answers are keyed on it (see core.store.tenants.bump_data_version)
    data_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    release: Mapped[Release] = relationship()
    environments: Mapped[list[Environment]] = relationship(
        back_populates="tenant", cascade="all, delete-orphan", order_by="Environment.name"
    )


class Environment(Base):
    __tablename__ = "environments"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    #: changes to it (and, while any environment of the tenant is, to tenant-wide
    #: overrides, enablements, pins and upgrades) go through change requests
    protected: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: approvals a change request needs here (by principals other than its author)
    approvals: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    tenant: Mapped[Tenant] = relationship(back_populates="environments")


class Override(Base):
    """A tenant's (or one of its environments') value for one setting key.

    The row outlives a reset (``active`` false) so that revisions only ever grow.
    """

    __tablename__ = "overrides"
    __table_args__ = (UniqueConstraint("tenant_id", "environment", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    environment: Mapped[str] = mapped_column(String(64), default=TENANT_SCOPE)
    key: Mapped[str] = mapped_column(String(200))
    value: Mapped[Any] = mapped_column(JSON, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(200))


class AuditEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_tenant_at", "tenant_id", "id"),
        Index("ix_audit_log_request_id", "request_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(32))
    tenant_id: Mapped[int | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), nullable=True
    )
    environment: Mapped[str | None] = mapped_column(String(64), nullable=True)
    key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    old: Mapped[Any] = mapped_column(JSON, nullable=True)
    new: Mapped[Any] = mapped_column(JSON, nullable=True)
    revision: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: the id of the HTTP request that made the change (``X-Request-Id``, as the
    #: request's log lines carry it; none from the CLI): the column's default, so
    #: every entry, wherever it is created, gets it
    request_id: Mapped[str | None] = mapped_column(
        String(64), nullable=True, default=current_request_id
    )


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: sha256 of the secret; the secret itself is shown once and never stored
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    label: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(32))
    #: tenant slugs the token is scoped to (empty for admin/release_manager)
    tenants: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: app tokens: the web origins a browser may call Tailor from with it (CORS)
    origins: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    #: app tokens: the front-end app it belongs to (``--app NAME``), if any
    app: Mapped[str | None] = mapped_column(String(64), nullable=True)


class CustomizationRow(Base):
    """A published customization: its name (the identity), the newest version's
    manifest and introspection (what readiness and fold-back read), and health
    counters. Every version is a :class:`CustomizationVersionRow`."""

    __tablename__ = "customizations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    #: the package's identity (directory name); another package may not take the name
    package: Mapped[str] = mapped_column(String(200))
    version: Mapped[str] = mapped_column(String(64))
    capability: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    manifest: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: [{hook, params, fingerprint, returns_constant, location}]
    hooks: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    setting_keys: Mapped[list[str]] = mapped_column(JSON)
    #: [{key, file, line, how}]: where the code refers to setting keys
    key_references: Mapped[list[dict[str, Any]]] = mapped_column(
        JSON, default=list, server_default="[]"
    )
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    published_by: Mapped[str] = mapped_column(String(200))
    calls: Mapped[int] = mapped_column(Integer, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_error_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    tenants: Mapped[list[CustomizationTenant]] = relationship(
        back_populates="customization", cascade="all, delete-orphan"
    )


class CustomizationTenant(Base):
    """A customization's enabled state for one tenant its manifest lists."""

    __tablename__ = "customization_tenants"
    __table_args__ = (UniqueConstraint("customization_id", "tenant_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customization_id: Mapped[int] = mapped_column(
        ForeignKey("customizations.id", ondelete="CASCADE")
    )
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(200))
    #: the version this tenant runs (its pin); None: none pinned yet
    version_id: Mapped[int | None] = mapped_column(
        ForeignKey("customization_versions.id", ondelete="SET NULL"), nullable=True
    )

    customization: Mapped[CustomizationRow] = relationship(back_populates="tenants")


class CustomizationArtifact(Base):
    """A published package, content-addressed: the sha256 of its canonical tree
    (``plugins/archive.py``), and its canonical zip."""

    __tablename__ = "customization_artifacts"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CustomizationVersionRow(Base):
    """One published version of a customization: immutable once published (a bad
    one is yanked, never changed). The manifest is the one the server parsed from
    the archive; hooks and references what the checks found in its code."""

    __tablename__ = "customization_versions"
    __table_args__ = (UniqueConstraint("customization_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customization_id: Mapped[int] = mapped_column(
        ForeignKey("customizations.id", ondelete="CASCADE"), index=True
    )
    version: Mapped[str] = mapped_column(String(64))
    #: the artifact (None: registered without code, e.g. before versions existed
    #: and its package was not found on disk when the database was upgraded)
    sha256: Mapped[str | None] = mapped_column(
        ForeignKey("customization_artifacts.sha256"), nullable=True
    )
    manifest: Mapped[dict[str, Any]] = mapped_column(JSON)
    hooks: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    setting_keys: Mapped[list[str]] = mapped_column(JSON)
    key_references: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    #: the module inside the package holding the hooks ("hooks", "__init__", ...)
    hooks_module: Mapped[str] = mapped_column(String(100), default="hooks")
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    published_by: Mapped[str] = mapped_column(String(200))
    yanked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    yank_reason: Mapped[str | None] = mapped_column(Text, nullable=True)


#: latency histogram columns of :class:`ObservationRow` (see core.model.customizations)
LATENCY_COLUMNS = tuple(f"latency_{i}" for i in range(13))


class ObservationRow(Base):
    """Run-time observations of one (customization, tenant, hook), accumulated by
    every worker with an upsert. Names, not ids: the runtime writes one statement."""

    __tablename__ = "customization_observations"
    __table_args__ = (UniqueConstraint("customization", "tenant", "hook"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customization: Mapped[str] = mapped_column(String(64))
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    hook: Mapped[str] = mapped_column(String(100))
    #: the version the latest calls ran ("": observed before versions existed)
    version: Mapped[str] = mapped_column(String(64), default="", server_default="")
    calls: Mapped[int] = mapped_column(Integer, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    changed: Mapped[int] = mapped_column(Integer, default=0)
    latency_0: Mapped[int] = mapped_column(Integer, default=0)
    latency_1: Mapped[int] = mapped_column(Integer, default=0)
    latency_2: Mapped[int] = mapped_column(Integer, default=0)
    latency_3: Mapped[int] = mapped_column(Integer, default=0)
    latency_4: Mapped[int] = mapped_column(Integer, default=0)
    latency_5: Mapped[int] = mapped_column(Integer, default=0)
    latency_6: Mapped[int] = mapped_column(Integer, default=0)
    latency_7: Mapped[int] = mapped_column(Integer, default=0)
    latency_8: Mapped[int] = mapped_column(Integer, default=0)
    latency_9: Mapped[int] = mapped_column(Integer, default=0)
    latency_10: Mapped[int] = mapped_column(Integer, default=0)
    latency_11: Mapped[int] = mapped_column(Integer, default=0)
    latency_12: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_error_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    first_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ObservedKeyRow(Base):
    """A setting key a customization's hook read or returned for a tenant."""

    __tablename__ = "customization_observed_keys"
    __table_args__ = (UniqueConstraint("customization", "tenant", "hook", "key", "direction"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customization: Mapped[str] = mapped_column(String(64))
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    hook: Mapped[str] = mapped_column(String(100))
    key: Mapped[str] = mapped_column(String(200))
    direction: Mapped[str] = mapped_column(String(16))  # read | returned | scanned
    count: Mapped[int] = mapped_column(Integer, default=0)
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class FindingTriage(Base):
    """A person's decision on one readiness finding, keyed by the finding's stable
    identity (code, subject, tenant); carried to every later run that still shows it."""

    __tablename__ = "finding_triage"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: "CODE:subject:detail@tenant" (see core.analysis.triage.finding_id)
    finding: Mapped[str] = mapped_column(String(400), unique=True)
    code: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(200))
    #: the key or hook (or environment of an override) the finding is about; "*"
    #: for a decision kept from before details existed (covers them all)
    detail: Mapped[str] = mapped_column(String(200), server_default="")
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    decision: Mapped[str] = mapped_column(String(16))  # acknowledged | planned | waived
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    owner: Mapped[str | None] = mapped_column(String(200), nullable=True)
    #: the due date of a planned fix, or the last day a waiver holds
    until: Mapped[date | None] = mapped_column(Date, nullable=True)
    decided_by: Mapped[str] = mapped_column(String(200))
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ReadinessRun(Base):
    """One kept readiness run: which findings it showed, so the next run can say
    what is new and what was resolved."""

    __tablename__ = "readiness_runs"
    __table_args__ = (Index("ix_readiness_runs_target_id", "target", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    target: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    #: the tenants this run evaluated (a scoped run compares only these)
    tenants: Mapped[list[str]] = mapped_column(JSON)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: [{id, code, subject, tenant, severity}]
    findings: Mapped[list[dict[str, Any]]] = mapped_column(JSON)


class RehearsalRun(Base):
    """The last kept rehearsal of a target: its findings per tenant, which
    readiness joins (source ``rehearsal``) while the tenant still runs the
    version rehearsed."""

    __tablename__ = "rehearsal_runs"
    __table_args__ = (Index("ix_rehearsal_runs_target_id", "target", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    target: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    #: the tenants rehearsed (a later run of other tenants keeps theirs)
    tenants: Mapped[list[str]] = mapped_column(JSON)
    #: [{tenant, finding: Finding.to_dict()}] (secret values already redacted)
    findings: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    #: [CustomizationConfidence.to_dict()]
    customizations: Mapped[list[dict[str, Any]]] = mapped_column(JSON)


class WebSession(Base):
    """A console sign-in: the browser holds the secret in an HttpOnly cookie, the
    server only its hash. It lives no longer than its token: a revoked or expired
    token ends every session made with it."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_id: Mapped[int] = mapped_column(ForeignKey("api_tokens.id", ondelete="CASCADE"))
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ChangeFeedRow(Base):
    """One committed change (one row per audit entry; see :mod:`core.store.feed`).
    ``sequence`` grows strictly in the order rows become visible, so a reader that
    has seen ``sequence`` N has seen every change before it. On SQLite the write
    appends it; on PostgreSQL its commit leaves a :class:`PendingChangeRow` and the
    first reader after it moves it here. Pruned after
    ``TAILOR_FEED_RETENTION_DAYS``; the audit log is kept."""

    __tablename__ = "change_feed"
    __table_args__ = (
        Index("ix_change_feed_tenant_sequence", "tenant_id", "sequence"),
        Index("ix_change_feed_at", "at"),
        # the settler's "appended already?" (a node of an older release appends itself)
        Index("ix_change_feed_audit_id", "audit_id"),
        # SQLite: never reuse a pruned sequence
        {"sqlite_autoincrement": True},
    )

    sequence: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    tenant_id: Mapped[int | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), nullable=True
    )
    environment: Mapped[str | None] = mapped_column(String(64), nullable=True)
    keys: Mapped[Any] = mapped_column(JSON)
    action: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(200))
    audit_id: Mapped[int | None] = mapped_column(
        ForeignKey("audit_log.id", ondelete="SET NULL"), nullable=True
    )
    audit: Mapped[AuditEntry | None] = relationship()


class PendingChangeRow(Base):
    """An audit entry committed on PostgreSQL that has no feed sequence yet.

    The database appends it: a constraint trigger on ``audit_log``, deferred to
    the commit of the write (migration ``0020_feed_pending``), so a write costs no
    statement for the feed, and of two writes of one row the one that waited for
    the other's lock commits, so appends, later. :func:`core.store.feed.settle`
    moves the committed ones into :class:`ChangeFeedRow`, one settler at a time.
    ``txn`` (the transaction's id) keeps one transaction's changes side by side.
    """

    __tablename__ = "change_feed_pending"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    txn: Mapped[int] = mapped_column(BigInteger)
    audit_id: Mapped[int] = mapped_column(Integer)


class RoadmapItem(Base):
    """Product work made from a fold-back candidate (or, later, a family): the
    customizations and tenants it covers, its status and target release. Ranked by
    breadth and upgrade cost, never by its pledges (see core.store.roadmap)."""

    __tablename__ = "roadmap_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    #: where it came from: "candidate" (a fold-back candidate id) or "family"
    source_kind: Mapped[str] = mapped_column(String(16))
    source_id: Mapped[str] = mapped_column(String(200))
    #: the capability a release supersedes to ship it (None: shipped by hand only)
    capability: Mapped[str | None] = mapped_column(String(200), nullable=True, index=True)
    status: Mapped[str] = mapped_column(String(16))  # proposed | committed | shipped
    target_release: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: the release whose manifest supersedes the capability
    shipped_in: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: [{"name": customization, "tenants": [tenants its manifest listed]}]
    customizations: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    #: tenant slugs covered: the candidate's, plus those added
    tenants: Mapped[list[str]] = mapped_column(JSON)
    evidence: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    def audit_view(self) -> dict[str, Any]:
        """What the audit log keeps of the item before and after a change."""
        return {
            "title": self.title,
            "status": self.status,
            "target_release": self.target_release,
            "shipped_in": self.shipped_in,
            "capability": self.capability,
            "tenants": list(self.tenants),
        }


class RoadmapPledge(Base):
    """One tenant's co-funding of a roadmap item: one pledge per (item, tenant),
    pledging again replaces it (audited). The amount is in the currency's minor unit."""

    __tablename__ = "roadmap_pledges"
    __table_args__ = (UniqueConstraint("item_id", "tenant_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("roadmap_items.id", ondelete="CASCADE"))
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    pledged_by: Mapped[str] = mapped_column(String(200))
    pledged_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ChangeRequestRow(Base):
    """A proposed change (see :mod:`core.store.changes`): what it changes, who
    proposed it and why, the approvals it has, and what became of it. ``state``:
    pending (awaiting approvals), approved (to be applied, at ``apply_at`` when
    set), applied, rejected or failed (``outcome`` says why)."""

    __tablename__ = "change_requests"
    __table_args__ = (
        Index("ix_change_requests_tenant_state", "tenant_id", "state"),
        Index("ix_change_requests_state_apply_at", "state", "apply_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    environment: Mapped[str | None] = mapped_column(String(64), nullable=True)
    kind: Mapped[str] = mapped_column(String(32))
    key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    #: the value to set (sealed for a secret setting)
    value: Mapped[Any] = mapped_column(JSON, nullable=True)
    expected_revision: Mapped[int | None] = mapped_column(Integer, nullable=True)
    customization: Mapped[str | None] = mapped_column(String(64), nullable=True)
    version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reason: Mapped[str] = mapped_column(Text)
    apply_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    state: Mapped[str] = mapped_column(String(16))
    author: Mapped[str] = mapped_column(String(200))
    #: the author's credential (Principal.key): the four-eyes check compares it
    author_key: Mapped[str] = mapped_column(String(200))
    author_role: Mapped[str] = mapped_column(String(32))
    required_approvals: Mapped[int] = mapped_column(Integer, default=0)
    #: [{actor, comment, at}]
    approvals: Mapped[Any] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    applied_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    outcome: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: a worker applying it holds it until then (scheduled apply: FOR UPDATE SKIP LOCKED)
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: the feed sequence it reverts (revertChange)
    reverts: Mapped[int | None] = mapped_column(Integer, nullable=True)


class WebhookRow(Base):
    """A receiver of the change feed (see :mod:`core.store.webhooks`). ``cursor`` is
    the last sequence done (delivered, or matched by no filter); ``attempts`` the
    failed tries of the next event, tried again after ``next_attempt_at``. A worker
    delivers while it holds the lease (``lease_owner`` until ``lease_until``)."""

    __tablename__ = "webhooks"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    url: Mapped[str] = mapped_column(String(2000))
    #: change feed actions delivered (empty: every change)
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: tenant slugs delivered (empty: every tenant, and changes of no tenant)
    tenants: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: the signing secret, sealed with TAILOR_SECRET_KEY (``{"$sealed": ...}``)
    secret: Mapped[Any] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))
    #: ``active`` or ``paused`` (after the last attempt of an event failed)
    state: Mapped[str] = mapped_column(String(16), default="active")
    paused_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    cursor: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class WebhookAttemptRow(Base):
    """One attempt to deliver one change to one webhook: the delivery log. Pruned
    after ``TAILOR_WEBHOOK_RETENTION_DAYS``."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (
        Index("ix_webhook_attempts_webhook_id", "webhook_id", "id"),
        Index("ix_webhook_attempts_at", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    #: the ``Tailor-Delivery`` header: the same for every attempt of one change
    delivery: Mapped[str] = mapped_column(String(64))
    sequence: Mapped[int] = mapped_column(Integer)
    attempt: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    latency_ms: Mapped[float] = mapped_column(Float, default=0.0)
    #: ``delivered``, ``retrying`` or ``failed`` (the last attempt: the webhook paused)
    outcome: Mapped[str] = mapped_column(String(16))


class AppRow(Base):
    """A front-end app of one tenant: its trusted documents (``app_operations``)
    and the OFREP flag keys it declared (see core.store.apps)."""

    __tablename__ = "apps"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    #: its tokens may run only its registered documents
    trusted_only: Mapped[bool] = mapped_column(Boolean, default=False)
    #: setting keys it reads as OpenFeature flags (OFREP)
    flags: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AppOperationRow(Base):
    """One trusted (persisted) document of an app, stored by the sha256 of its
    text, with the setting keys and prefixes its ``settings`` fields name."""

    __tablename__ = "app_operations"
    __table_args__ = (UniqueConstraint("app_id", "sha256"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    #: hex sha256 of ``document`` (UTF-8): the document id is ``sha256:<hex>``
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    document: Mapped[str] = mapped_column(Text)
    #: literal ``keys:`` of its settings fields
    keys: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: literal ``prefix:`` of its settings fields
    prefixes: Mapped[list[str]] = mapped_column(JSON, default=list)
    pushed_by: Mapped[str] = mapped_column(String(200))
    pushed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class InputRecordingRow(Base):
    """A tenant's choice to record its customizations' hook inputs (no row:
    off, see core.store.samples)."""

    __tablename__ = "input_recording"

    tenant_id: Mapped[int] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    retention_days: Mapped[int] = mapped_column(Integer)
    #: samples kept per (customization, hook): the newest
    samples: Mapped[int] = mapped_column(Integer)
    updated_by: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class InputSampleRow(Base):
    """One recorded hook call's inputs, sealed with ``TAILOR_SECRET_KEY`` (no
    secret setting in them: removed before they left the runtime)."""

    __tablename__ = "input_samples"
    __table_args__ = (Index("ix_input_samples_key", "tenant_id", "customization", "hook"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: ``smp-`` and hex: the id a rehearsal's findings name
    sample_id: Mapped[str] = mapped_column(String(40), unique=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    environment: Mapped[str | None] = mapped_column(String(64), nullable=True)
    customization: Mapped[str] = mapped_column(String(200))
    version: Mapped[str] = mapped_column(String(64))
    hook: Mapped[str] = mapped_column(String(200))
    #: ``{"$sealed": token}`` (core.model.secrets.SecretBox.seal of the inputs)
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON)
    recorded_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )
