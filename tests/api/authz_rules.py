"""The authorization rule of every root field, per role: the table that
``tests/api/test_authorization.py`` checks against the real schema.

Every root Query and Mutation field of ``build_schema()`` must have a rule here:
a field without one (or a rule for a field that no longer exists) fails the test.
When you add a root field, add its rule in the same change:

* ``query``: a document exercising the field; ``$tenant`` (String!) is the tenant
  to aim at (the test runs it once for a tenant in the token's scope and once for
  one outside it). Select ``__typename`` and ``... on Error { code }`` on union
  results, so a typed refusal is visible.
* ``access``: per role, one of ALLOW (works, whatever the tenant), DENY (refused
  with PERMISSION_DENIED, whatever the tenant), OWN (works for the token's own
  tenants, refused for others) or FILTERED (works; the answer only holds the
  token's own tenants).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from core.model.auth import Role

ALLOW = "allow"
DENY = "deny"
OWN = "own"
FILTERED = "filtered"

ADMIN, RM, CONSULTANT, APP, HOST = (
    Role.ADMIN,
    Role.RELEASE_MANAGER,
    Role.CONSULTANT,
    Role.APP,
    Role.HOST,
)


@dataclass(frozen=True)
class Rule:
    query: str
    access: Mapping[Role, str]


def rule(
    query: str, admin: str, release_manager: str, consultant: str, app: str, host: str = DENY
) -> Rule:
    """``host``: the host product's backend calls extension points and nothing else."""
    return Rule(
        query,
        {ADMIN: admin, RM: release_manager, CONSULTANT: consultant, APP: app, HOST: host},
    )


QUERY_RULES: dict[str, Rule] = {
    "settings": rule(
        """query($tenant: String!) { settings(tenant: $tenant) { __typename
             ... on Settings { tenant items { key value } } ... on Error { code } } }""",
        ALLOW,
        ALLOW,
        OWN,
        OWN,
    ),
    "tenant": rule(
        """query($tenant: String!) { tenant(slug: $tenant) { __typename
             ... on Tenant { slug name } ... on Error { code } } }""",
        ALLOW,
        ALLOW,
        OWN,
        OWN,
    ),
    "tenants": rule(
        # no tenant argument: $tenant is ignored
        "{ tenants { slug name } x: tenants @include(if: true) { slug } }",
        ALLOW,
        ALLOW,
        FILTERED,
        FILTERED,
    ),
    "releases": rule(
        "{ releases { version } }",
        ALLOW,
        ALLOW,
        ALLOW,
        DENY,
    ),
    "release": rule(
        """{ release(version: "2.0") { __typename
             ... on ReleaseDetail { version } ... on Error { code } } }""",
        ALLOW,
        ALLOW,
        ALLOW,
        DENY,
    ),
    "auditLog": rule(
        """query($tenant: String!) { auditLog(tenant: $tenant) { __typename
             ... on AuditLog { entries { tenant key new reason } } ... on Error { code } } }""",
        ALLOW,
        ALLOW,
        OWN,
        DENY,
    ),
    "customizations": rule(
        """query($tenant: String!) { customizations(tenant: $tenant) { __typename
             ... on CustomizationList { items { name } } ... on Error { code } } }""",
        ALLOW,
        ALLOW,
        OWN,
        DENY,
    ),
    "extensionPoints": rule(
        """{ extensionPoints { __typename ... on Error { code } } }""",
        ALLOW,
        ALLOW,
        ALLOW,
        DENY,
    ),
    "readiness": rule(
        """query($tenant: String!) { readiness(target: "2.0", tenants: [$tenant]) {
             __typename ... on Error { code } } }""",
        ALLOW,
        ALLOW,
        OWN,
        DENY,
    ),
    "inputSamples": rule(
        """query($tenant: String!) { inputSamples(tenant: $tenant) {
             __typename ... on Error { code } } }""",
        ALLOW,
        DENY,
        DENY,
        DENY,
    ),
    "rehearsal": rule(
        """query($tenant: String!) { rehearsal(target: "2.0", tenants: [$tenant]) {
             __typename ... on Error { code } } }""",
        ALLOW,
        ALLOW,
        OWN,
        DENY,
    ),
    "releaseDiff": rule(
        """{ releaseDiff(fromVersion: "1.5", toVersion: "2.0") { __typename
             ... on Error { code } } }""",
        ALLOW,
        ALLOW,
        ALLOW,
        DENY,
    ),
    "foldbackCandidates": rule(
        # fleet-wide evidence names every tenant: not for tenant-scoped tokens
        """{ foldbackCandidates(limit: 5) { __typename ... on Error { code } } }""",
        ALLOW,
        ALLOW,
        DENY,
        DENY,
    ),
    "roadmapItems": rule(
        # no tenant argument: a consultant sees the items covering their tenants, with
        # only those tenants and pledges (tests/api/test_roadmap_api.py fills them)
        """{ roadmapItems { __typename ... on RoadmapItems { items { title tenants
             hiddenTenants pledges { tenant amount note } customizations { name tenants } } }
             ... on Error { code } } }""",
        ALLOW,
        ALLOW,
        FILTERED,
        DENY,
    ),
    "changeRequests": rule(
        """query($tenant: String!) { changeRequests(tenant: $tenant) { __typename
             ... on ChangeRequests { items { id tenant } } ... on Error { code } } }""",
        ALLOW,
        ALLOW,
        OWN,
        DENY,
    ),
    # webhooks hear every tenant's changes: admins only
    "webhooks": rule(
        """{ webhooks { __typename ... on WebhookList { items { id url } }
             ... on Error { code } } }""",
        ALLOW,
        DENY,
        DENY,
        DENY,
    ),
    "webhookDeliveries": rule(
        # no such webhook: NotFound for an admin, PermissionDenied for the others
        """{ webhookDeliveries(webhook: 987654) { __typename ... on Error { code } } }""",
        ALLOW,
        DENY,
        DENY,
        DENY,
    ),
    "apps": rule(
        """query($tenant: String!) { apps(tenant: $tenant) { __typename
             ... on Apps { apps { name tenant } } ... on Error { code } } }""",
        ALLOW,
        ALLOW,
        OWN,
        DENY,
    ),
}

MUTATION_RULES: dict[str, Rule] = {
    "setSetting": rule(
        """mutation($tenant: String!) { setSetting(input: {tenant: $tenant,
             key: "billing.invoice.due_days", value: 21}) { __typename
             ... on SettingChanged { tenant } ... on Error { code } } }""",
        ALLOW,
        DENY,
        OWN,
        DENY,
    ),
    "resetSetting": rule(
        """mutation($tenant: String!) { resetSetting(input: {tenant: $tenant,
             key: "tax.exemption.codes"}) { __typename
             ... on SettingChanged { tenant } ... on Error { code } } }""",
        ALLOW,
        DENY,
        OWN,
        DENY,
    ),
    "createTenant": rule(
        """mutation($tenant: String!) { createTenant(input: {slug: $tenant, name: "N"}) {
             __typename ... on Tenant { slug } ... on Error { code } } }""",
        ALLOW,
        DENY,
        DENY,
        DENY,
    ),
    "publishCustomization": rule(
        # not a file: refused as invalid input once the role may publish (the scope
        # of the tenants a package lists: tests/api/test_publish_upload.py)
        """mutation { publishCustomization(archive: "not a file") {
             __typename ... on Error { code } } }""",
        ALLOW,
        DENY,
        ALLOW,
        DENY,
    ),
    "setCustomizationEnabled": rule(
        """mutation($tenant: String!) { setCustomizationEnabled(tenant: $tenant,
             name: "no-such-customization", enabled: true) { __typename
             ... on Error { code } } }""",
        ALLOW,
        DENY,
        OWN,
        DENY,
    ),
    "setCustomizationVersion": rule(
        """mutation($tenant: String!) { setCustomizationVersion(tenant: $tenant,
             name: "no-such-customization", version: "1.0") { __typename
             ... on Error { code } } }""",
        ALLOW,
        DENY,
        OWN,
        DENY,
    ),
    "yankCustomizationVersion": rule(
        """mutation { yankCustomizationVersion(name: "no-such-customization",
             version: "1.0", reason: "broken") { __typename ... on Error { code } } }""",
        ALLOW,
        DENY,
        ALLOW,
        DENY,
    ),
    "importRelease": rule(
        """mutation { importRelease(manifest: "version = 'not a version'") { __typename
             ... on Error { code } } }""",
        ALLOW,
        ALLOW,
        DENY,
        DENY,
    ),
    "triageFinding": rule(
        """mutation { triageFinding(input: {finding: "OVERRIDE_INVALID:tax.x@acme",
             decision: ACKNOWLEDGE}) { __typename ... on Error { code } } }""",
        ALLOW,
        ALLOW,
        DENY,
        DENY,
    ),
    "deleteRelease": rule(
        """mutation { deleteRelease(version: "9.9") { __typename ... on Error { code } } }""",
        ALLOW,
        ALLOW,
        DENY,
        DENY,
    ),
    "upgradeTenant": rule(
        """mutation($tenant: String!) { upgradeTenant(tenant: $tenant, target: "2.0") {
             __typename ... on Error { code } } }""",
        ALLOW,
        DENY,
        DENY,
        DENY,
    ),
    "invokeExtension": rule(
        """mutation($tenant: String!) { invokeExtension(tenant: $tenant,
             hook: "acme_invoice_footer", args: {invoice: {number: "INV-1"}}) { __typename
             ... on ExtensionCall { results { customization } } ... on Error { code } } }""",
        ALLOW,
        DENY,
        DENY,
        DENY,
        host=OWN,
    ),
    "createRoadmapItem": rule(
        """mutation($tenant: String!) { createRoadmapItem(input: {source: "no-such-candidate",
             tenants: [$tenant]}) { __typename ... on Error { code } } }""",
        ALLOW,
        ALLOW,
        DENY,
        DENY,
    ),
    "pledgeRoadmapItem": rule(
        """mutation($tenant: String!) { pledgeRoadmapItem(input: {item: 999999,
             tenant: $tenant, amount: "100", currency: "EUR"}) { __typename
             ... on Error { code } } }""",
        ALLOW,
        ALLOW,
        DENY,
        DENY,
    ),
    "updateRoadmapItem": rule(
        """mutation($tenant: String!) { updateRoadmapItem(input: {item: 999999,
             addTenants: [$tenant]}) { __typename ... on Error { code } } }""",
        ALLOW,
        ALLOW,
        DENY,
        DENY,
    ),
    "proposeChange": rule(
        """mutation($tenant: String!) { proposeChange(input: {tenant: $tenant,
             kind: SET_SETTING, key: "no.such.setting", value: 1, reason: "test"}) {
             __typename ... on Error { code } } }""",
        ALLOW,
        DENY,
        OWN,
        DENY,
    ),
    "approveChange": rule(
        # no tenant argument: a request of another tenant is NotFound, as none at all
        """mutation { approveChange(id: 999999) { __typename ... on Error { code } } }""",
        ALLOW,
        DENY,
        ALLOW,
        DENY,
    ),
    "rejectChange": rule(
        """mutation { rejectChange(id: 999999, reason: "no") { __typename
             ... on Error { code } } }""",
        ALLOW,
        DENY,
        ALLOW,
        DENY,
    ),
    "revertChange": rule(
        # no tenant argument: a change of another tenant is NotFound, as none at all
        """mutation { revertChange(sequence: 999999) { __typename ... on Error { code } } }""",
        ALLOW,
        DENY,
        ALLOW,
        DENY,
    ),
    "setEnvironmentProtection": rule(
        """mutation($tenant: String!) { setEnvironmentProtection(tenant: $tenant,
             environment: "nowhere", protected: true) { __typename ... on Error { code } } }""",
        ALLOW,
        DENY,
        DENY,
        DENY,
    ),
    "createWebhook": rule(
        # a metadata address: refused as invalid input once the role may create
        """mutation { createWebhook(input: {url: "http://169.254.169.254/"}) { __typename
             ... on WebhookCreated { secret } ... on Error { code } } }""",
        ALLOW,
        DENY,
        DENY,
        DENY,
    ),
    "deleteWebhook": rule(
        """mutation { deleteWebhook(id: 987654) { __typename ... on Error { code } } }""",
        ALLOW,
        DENY,
        DENY,
        DENY,
    ),
    "resumeWebhook": rule(
        """mutation { resumeWebhook(id: 987654) { __typename ... on Error { code } } }""",
        ALLOW,
        DENY,
        DENY,
        DENY,
    ),
    "registerApp": rule(
        """mutation($tenant: String!) { registerApp(name: "authz-app", tenant: $tenant) {
             __typename ... on Error { code } } }""",
        ALLOW,
        DENY,
        OWN,
        DENY,
    ),
    # an app outside the caller's scope is "not found", like one nowhere
    "pushAppOperations": rule(
        """mutation { pushAppOperations(app: "no-such-app", document: "{ __typename }") {
             __typename ... on Error { code } } }""",
        ALLOW,
        DENY,
        ALLOW,
        DENY,
    ),
    "setInputRecording": rule(
        """mutation($tenant: String!) { setInputRecording(tenant: $tenant, enabled: false) {
             __typename ... on Error { code } } }""",
        ALLOW,
        DENY,
        DENY,
        DENY,
    ),
    "deleteInputSamples": rule(
        """mutation($tenant: String!) { deleteInputSamples(tenant: $tenant) {
             __typename ... on Error { code } } }""",
        ALLOW,
        DENY,
        DENY,
        DENY,
    ),
    "pushAppFlags": rule(
        """mutation { pushAppFlags(app: "no-such-app", keys: ["billing.invoice.rounding"]) {
             __typename ... on Error { code } } }""",
        ALLOW,
        DENY,
        ALLOW,
        DENY,
    ),
}

#: subscriptions: ``after: 0`` replays the feed, so an allowed subscription
#: answers at once (the rival fixture wrote to both tenants); checked through
#: the schema's subscribe (tests/api/test_authorization.py) and over SSE and
#: graphql-transport-ws (tests/api/test_subscriptions.py)
SUBSCRIPTION_RULES: dict[str, Rule] = {
    "settingsChanged": rule(
        """subscription($tenant: String!) { settingsChanged(tenant: $tenant, after: 0) {
             __typename ... on ChangeEvent { tenant keys } ... on Error { code } } }""",
        ALLOW,
        ALLOW,
        OWN,
        OWN,
    ),
}
