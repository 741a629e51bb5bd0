"""Demo tenants of the sample host product (Acme ERP) and their setting overrides.

Plain data, used by ``tailor demo seed`` and ``tailor serve --demo``. It is shaped to
give the analyses real material:

- most tenants run release 2.0, two (``initech``, ``wayne``) are still on 1.5 and
  override settings that 2.0 removed or retyped, so upgrade readiness finds blockers;
- some 2.0 tenants override settings deprecated in 2.0 (warnings for the next release);
- several tenants move the same setting to the same non-default value
  (``billing.invoice.due_days`` = 45, ``security.password.min_length`` = 12,
  ``security.mfa.required`` = true, ``ui.table.page_size`` = 50), which fold-back
  analysis reports as "change the default".

Each override is valid under the catalog of its tenant's release. An override with
``environment=""`` applies tenant-wide; otherwise only to that environment. Secret
settings are never overridden here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DemoOverride:
    key: str
    value: object
    environment: str = ""  # "" = tenant-wide


@dataclass(frozen=True)
class DemoTenant:
    slug: str
    name: str
    release: str
    environments: tuple[str, ...]
    overrides: tuple[DemoOverride, ...]


_O = DemoOverride
_PROD_SANDBOX = ("production", "sandbox")

DEMO_TENANTS: tuple[DemoTenant, ...] = (
    DemoTenant(
        slug="northwind",
        name="Northwind Traders",
        release="2.0",
        environments=_PROD_SANDBOX,
        overrides=(
            _O("billing.invoice.due_days", 45),
            _O("billing.invoice.pdf_branding", True),
            _O("billing.invoice.logo_url", "https://cdn.northwind.example/brand/logo.png"),
            _O("security.password.min_length", 12),
            _O("security.mfa.required", True, "production"),
            _O("ui.table.page_size", 50),
            _O("shipping.carrier.default", "fedex"),
            _O("orders.approval.threshold", 25_000.0),
            _O("notifications.email.enabled", False, "sandbox"),
        ),
    ),
    DemoTenant(
        slug="globex",
        name="Globex Corporation",
        release="2.0",
        environments=_PROD_SANDBOX,
        overrides=(
            _O("billing.invoice.due_days", 45),
            _O("billing.currency.default", "EUR"),
            _O("tax.engine.provider", "avalara"),
            _O("tax.prices.include_tax", True),
            _O("security.password.min_length", 12),
            _O("security.mfa.required", True, "production"),
            _O("security.password.expiry_days", 60),
            _O("inventory.costing.method", "average"),
            _O("ui.date.format", "DD.MM.YYYY"),
            _O("ui.locale.default", "de-DE"),
            _O("integrations.erp_sync.interval_minutes", 15, "sandbox"),
        ),
    ),
    DemoTenant(
        slug="initech",
        name="Initech",
        release="1.5",
        environments=_PROD_SANDBOX,
        overrides=(
            _O("billing.invoice.due_days", 45),
            _O("billing.invoice.reminder_days", 14),
            _O("orders.approval.threshold", 5_000),
            _O("notifications.digest.frequency", 12),
            _O("hr.vacation.days_per_year", 25),
            _O("ui.table.page_size", 50),
            _O("reporting.csv.delimiter", ";", "sandbox"),
            _O("security.session.timeout_minutes", 60, "sandbox"),
        ),
    ),
    DemoTenant(
        slug="umbrella",
        name="Umbrella Corporation",
        release="2.0",
        environments=_PROD_SANDBOX,
        overrides=(
            _O("billing.invoice.due_days", 60),
            _O("security.password.min_length", 12),
            _O("security.mfa.required", True),
            _O("security.mfa.required", False, "sandbox"),
            _O("security.session.timeout_minutes", 15),
            _O("security.lockout.max_attempts", 3),
            _O("security.ip_allowlist.cidrs", ["10.0.0.0/8", "192.168.40.0/24"], "production"),
            _O("inventory.lot_tracking.enabled", True),
            _O("orders.approval.threshold", 50_000.0, "production"),
        ),
    ),
    DemoTenant(
        slug="hooli",
        name="Hooli",
        release="2.0",
        environments=("production", "staging", "sandbox"),
        overrides=(
            _O("billing.invoice.due_days", 45),
            _O("ui.theme.mode", "dark"),
            _O("ui.table.page_size", 50),
            _O("security.sso.provider", "oidc"),
            _O(
                "security.sso.metadata_url",
                "https://login.hooli.example/.well-known/openid-configuration",
            ),
            _O("notifications.digest.frequency", "weekly"),
            _O("integrations.crm.provider", "salesforce"),
            _O("integrations.api.rate_limit_per_minute", 2_000, "staging"),
            _O("reporting.cache.ttl_seconds", 0, "sandbox"),
        ),
    ),
    DemoTenant(
        slug="stark",
        name="Stark Industries",
        release="2.0",
        environments=_PROD_SANDBOX,
        overrides=(
            _O("security.password.min_length", 12),
            _O("security.mfa.required", True),
            _O("tax.rounding.per_line", False),
            _O("hr.payroll.frequency", "biweekly"),
            _O("hr.leave.annual_days", 25),
            _O("hr.payroll.overtime_multiplier", 2.0),
            _O("shipping.carrier.default", "dhl", "production"),
            _O("billing.invoice.auto_send", False, "sandbox"),
        ),
    ),
    DemoTenant(
        slug="wayne",
        name="Wayne Enterprises",
        release="1.5",
        environments=_PROD_SANDBOX,
        overrides=(
            _O("billing.invoice.due_days", 45),
            _O("security.password.min_length", 12),
            _O("security.mfa.required", True, "production"),
            _O("shipping.legacy_rates.enabled", False),
            _O("orders.numbering.prefix", "WE-"),
            _O("reporting.fiscal_year.start_month", 7),
            _O("notifications.digest.frequency", 48, "sandbox"),
        ),
    ),
)
