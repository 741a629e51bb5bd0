"""Who is calling, and what they may do: roles, tenant scope, and the policy."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field

from core.model.errors import PermissionDeniedError


class Role(enum.StrEnum):
    ADMIN = "admin"
    RELEASE_MANAGER = "release_manager"
    CONSULTANT = "consultant"
    APP = "app"
    #: the host product's backend: calls extension points (invokeExtension), nothing else
    HOST = "host"


#: roles whose tokens must name the tenants they may touch
TENANT_SCOPED_ROLES = frozenset({Role.CONSULTANT, Role.APP})
#: roles whose tokens may name tenants (none: every tenant)
OPTIONALLY_SCOPED_ROLES = frozenset({Role.HOST})


@dataclass(frozen=True)
class Principal:
    """The authenticated caller. ``tenants`` is the scope of tenant-bound roles."""

    role: Role
    name: str
    tenants: frozenset[str] = field(default_factory=frozenset)
    #: app tokens: the web origins a browser may call from with this token (CORS)
    origins: frozenset[str] = field(default_factory=frozenset)
    #: app tokens: the front-end app the token belongs to, if any
    app: str | None = None
    #: which credential this is ("token:<id>"; empty for the operator at the CLI):
    #: two tokens are two principals even when they share a label
    identity: str = ""

    @property
    def key(self) -> str:
        """Who this principal is, for four-eyes checks: its credential, else its name."""
        return self.identity or self.name

    def same_as(self, key: str, name: str) -> bool:
        """Whether the principal recorded as ``key`` (and ``name``) is this one: the
        same credential, or the same non-empty name (a label shared by two tokens
        counts as one person)."""
        return key == self.key or (bool(name) and name == self.name)

    @classmethod
    def system(cls, name: str = "system") -> Principal:
        """The operator at the command line: full access, audited under ``name``."""
        return cls(role=Role.ADMIN, name=name)

    @classmethod
    def nobody(cls) -> Principal:
        """A caller with no rights at all (e.g. while serving the GraphiQL page)."""
        return cls(role=Role.APP, name="anonymous")

    @property
    def sees_all_tenants(self) -> bool:
        return self.role in (Role.ADMIN, Role.RELEASE_MANAGER)

    def allows_origin(self, origin: str) -> bool:
        """Whether a browser on ``origin`` may read this token's answers (CORS)."""
        return origin in self.origins

    def in_scope(self, tenant: str) -> bool:
        """May read or change ``tenant``'s data (a host token reads nothing)."""
        if self.role is Role.HOST:
            return False
        return self.sees_all_tenants or tenant in self.tenants

    def visible(self, tenants: Iterable[str]) -> list[str]:
        return [t for t in tenants if self.in_scope(t)]

    # -- the policy ----------------------------------------------------------
    def require_role(self, *roles: Role, action: str) -> None:
        if self.role not in roles:
            allowed = ", ".join(r.value for r in roles)
            raise PermissionDeniedError(
                f"{action} needs a token with role {allowed}; yours has role {self.role.value}"
            )

    def require_tenant(self, tenant: str, *, action: str) -> None:
        """Refuse unless ``tenant`` is in scope. The message never says whether
        the tenant exists, so out-of-scope callers learn nothing about it."""
        if not self.in_scope(tenant):
            raise PermissionDeniedError(f"{action}: tenant {tenant!r} is not in your token's scope")

    def require_read_settings(self, tenant: str) -> None:
        self.require_tenant(tenant, action="reading settings")

    def require_write_settings(self, tenant: str) -> None:
        self.require_role(Role.ADMIN, Role.CONSULTANT, action="changing settings")
        self.require_tenant(tenant, action="changing settings")

    def require_read_tenant(self, tenant: str) -> None:
        self.require_tenant(tenant, action="reading a tenant")

    def require_list_tenants(self) -> None:
        if self.role is Role.HOST:
            raise PermissionDeniedError(
                "listing tenants: a host token only calls extension points (invokeExtension)"
            )

    def require_invoke_extension(self, tenant: str) -> None:
        """The host product's backend (role host, all tenants or the ones its token
        names) and admins call a tenant's customizations at an extension point."""
        self.require_role(Role.ADMIN, Role.HOST, action="calling an extension point")
        if self.role is Role.HOST and self.tenants and tenant not in self.tenants:
            raise PermissionDeniedError(
                f"calling an extension point: tenant {tenant!r} is not in your token's scope"
            )

    def require_read_audit(self, tenant: str | None) -> None:
        self.require_role(
            Role.ADMIN, Role.RELEASE_MANAGER, Role.CONSULTANT, action="reading the audit log"
        )
        if tenant is not None:
            self.require_tenant(tenant, action="reading the audit log")
        elif not self.sees_all_tenants:
            raise PermissionDeniedError(
                "reading the whole audit log needs role admin or release_manager; "
                "pass tenant: to read one of your tenants' entries"
            )

    def require_manage_tenants(self) -> None:
        self.require_role(Role.ADMIN, action="creating or upgrading tenants")

    def require_import_releases(self) -> None:
        self.require_role(Role.ADMIN, Role.RELEASE_MANAGER, action="importing releases")

    @property
    def may_triage(self) -> bool:
        return self.role in (Role.ADMIN, Role.RELEASE_MANAGER)

    def require_triage(self) -> None:
        """Decide on readiness findings and keep readiness runs."""
        self.require_role(Role.ADMIN, Role.RELEASE_MANAGER, action="triaging findings")

    def require_plan_roadmap(self) -> None:
        """Make roadmap items, change them and pledge for tenants (co-funding)."""
        self.require_role(Role.ADMIN, Role.RELEASE_MANAGER, action="planning the roadmap")

    def require_read_roadmap(self) -> None:
        """Read roadmap items: a consultant sees those covering their tenants, and
        only their tenants' pledges."""
        self.require_role(
            Role.ADMIN, Role.RELEASE_MANAGER, Role.CONSULTANT, action="reading the roadmap"
        )

    def require_manage_app(self, tenant: str) -> None:
        """Register a tenant's front-end app, push its documents and flag keys."""
        self.require_role(Role.ADMIN, Role.CONSULTANT, action="managing an app")
        self.require_tenant(tenant, action="managing an app")

    def require_read_apps(self) -> None:
        """List apps: a consultant sees their tenants' apps."""
        self.require_role(Role.ADMIN, Role.RELEASE_MANAGER, Role.CONSULTANT, action="reading apps")

    def require_read_product(self) -> None:
        """Releases, extension points and readiness: not for app tokens."""
        self.require_role(
            Role.ADMIN, Role.RELEASE_MANAGER, Role.CONSULTANT, action="reading release data"
        )

    def require_read_customizations(self, tenant: str | None = None) -> None:
        self.require_role(
            Role.ADMIN,
            Role.RELEASE_MANAGER,
            Role.CONSULTANT,
            action="reading customizations",
        )
        if tenant is not None:
            self.require_tenant(tenant, action="reading customizations")

    def require_publish_customization(self, tenants: Iterable[str]) -> None:
        """Admins, and consultants whose scope covers every tenant it lists. The
        refusal names no tenant outside the caller's scope."""
        self.require_role(Role.ADMIN, Role.CONSULTANT, action="publishing a customization")
        outside = [t for t in tenants if not self.in_scope(t)]
        if outside:
            raise PermissionDeniedError(
                f"publishing a customization: its customization.toml lists {len(outside)} "
                "tenant(s) outside your token's scope; it is published by a token whose "
                "scope covers every tenant it lists, or by an admin"
            )

    def require_enable_customization(self, tenant: str) -> None:
        self.require_role(
            Role.ADMIN, Role.CONSULTANT, action="enabling or disabling a customization"
        )
        self.require_tenant(tenant, action="enabling or disabling a customization")
