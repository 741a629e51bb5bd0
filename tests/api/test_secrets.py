"""Secret settings are write-only through GraphQL: never in a read, a write's
answer, the audit log, nor a refusal."""

import json

SECRET_KEY = "integrations.webhooks.signing_secret"
VALUE = "whsec-VERY-SECRET-0815"

SET = """mutation($v: JSON!, $env: String) { setSetting(input: {tenant: "acme",
  key: "integrations.webhooks.signing_secret", value: $v, environment: $env}) { __typename
  ... on SettingChanged { old new revision setting { value source
      tenantOverride { value } environmentOverride { value } definition { secret default } } }
  ... on ValidationFailed { value message rule } } }"""


async def test_secret_values_are_write_only(api):
    first = await api.gql(SET, {"v": VALUE})
    second = await api.gql(SET, {"v": VALUE + "-2", "env": "production"}, token="consultant")
    changed = first["data"]["setSetting"]
    assert changed["__typename"] == "SettingChanged" and changed["revision"] == 1
    assert (changed["old"], changed["new"], changed["setting"]["value"]) == (None, None, None)
    assert changed["setting"]["source"] == "TENANT"
    assert changed["setting"]["definition"] == {"secret": True, "default": None}
    assert second["data"]["setSetting"]["setting"]["environmentOverride"] == {"value": None}

    reads = [
        await api.gql(
            """query($env: String) { settings(tenant: "acme", environment: $env,
                 keys: ["integrations.webhooks.signing_secret"]) { ... on Settings {
                 items { value tenantOverride { value } environmentOverride { value } } } } }""",
            {"env": env},
            token=token,
        )
        for token in ("admin", "consultant", "app")
        for env in (None, "production")
    ]
    audit = await api.gql(
        '{ auditLog(tenant: "acme", key: "integrations.webhooks.signing_secret") {'
        " ... on AuditLog { entries { old new revision } } } }"
    )
    entries = audit["data"]["auditLog"]["entries"]
    assert [(e["new"], e["revision"]) for e in entries] == [("<secret>", 1), ("<secret>", 1)]
    text = json.dumps([first, second, *reads, audit])
    assert VALUE not in text


async def test_a_refused_secret_is_not_echoed(api):
    refused = await api.gql(SET, {"v": 98765})
    result = refused["data"]["setSetting"]
    assert result["__typename"] == "ValidationFailed" and result["rule"] == "type"
    assert result["value"] == "<secret>" and "98765" not in result["message"]
