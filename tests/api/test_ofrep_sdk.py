"""A real OpenFeature client, nobody here wrote it: the OpenFeature Python SDK
with its OFREP provider (``openfeature-sdk``, ``openfeature-provider-ofrep`` from
PyPI) reads a tenant's settings from a real ``tailor serve``."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from openfeature import api as openfeature
from openfeature.client import OpenFeatureClient
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason

from tests.conftest import ADMIN
from tests.servers import tailor_serve

DUE = "billing.invoice.due_days"


@pytest.fixture
def domains() -> Iterator[list[str]]:
    """OpenFeature's providers are process-wide: each test's go at the end."""
    used: list[str] = []
    yield used
    openfeature.clear_providers()


def client_for(url: str, token: str, domain: str, used: list[str]) -> OpenFeatureClient:
    provider = OFREPProvider(url, headers_factory=lambda: {"Authorization": f"Bearer {token}"})
    openfeature.set_provider(provider, domain=domain)
    used.append(domain)
    return openfeature.get_client(domain)


async def test_the_openfeature_python_sdk_reads_settings(
    services, tenant, database_url, tmp_path, domains
):
    await services.tenants.create(ADMIN, "other", "Other Inc", "2.0")
    await services.settings.set(ADMIN, tenant, DUE, 45)
    await services.settings.set(ADMIN, tenant, DUE, 60, environment="production")
    await services.settings.set(ADMIN, tenant, "billing.late_fee.rate", 2.5)
    await services.settings.set(ADMIN, "other", DUE, 90)
    await services.apps.register(ADMIN, "shop", tenant)  # its tokens name it
    app, _ = await services.tokens.create("app", [tenant], label="shop", app="shop")
    consultant, _ = await services.tokens.create("consultant", [tenant, "other"])

    async with tailor_serve(tmp_path / "serve", database_url) as url:
        said = (tmp_path / "serve" / "serve.log").read_text()
        assert f"{url}/ofrep/v1/evaluate/flags" in said  # serve names the endpoint
        shop = client_for(url, app, "shop", domains)
        production = EvaluationContext(attributes={"environment": "production"})

        def read() -> dict:
            return {
                "due": shop.get_integer_details(DUE, 0),
                "due_production": shop.get_integer_details(DUE, 0, production),
                "rate": shop.get_float_details("billing.late_fee.rate", 0.0),
                "auto_send": shop.get_boolean_details("billing.invoice.auto_send", False),
                "currency": shop.get_string_details("billing.currency.default", "EUR"),
                "methods": shop.get_object_details("billing.payment.methods", []),
                "missing": shop.get_integer_details("billing.nothing_here", 7),
                "mismatch": shop.get_boolean_details(DUE, True),
                "other": shop.get_integer_details(
                    DUE, 0, EvaluationContext(attributes={"tenant": "other"})
                ),
            }

        got = await asyncio.to_thread(read)

        due = got["due"]
        assert (due.value, due.reason, due.variant) == (45, Reason.TARGETING_MATCH, "TENANT")
        assert due.error_code is None
        assert due.flag_metadata == {"source": "TENANT", "revision": 1}
        assert got["due_production"].value == 60
        assert got["due_production"].variant == "ENVIRONMENT"
        assert got["rate"].value == 2.5 and got["rate"].reason == Reason.TARGETING_MATCH
        auto_send = got["auto_send"]
        assert (auto_send.value, auto_send.reason, auto_send.variant) == (
            True,
            Reason.STATIC,
            "DEFAULT",
        )
        assert got["currency"].value == "USD"
        assert got["methods"].value == ["bank_transfer", "card"]
        # what the SDK does with Tailor's errors: the app's default, and why
        assert got["missing"].value == 7
        assert got["missing"].error_code == ErrorCode.FLAG_NOT_FOUND
        assert got["mismatch"].value is True
        assert got["mismatch"].error_code == ErrorCode.TYPE_MISMATCH
        assert got["other"].value == 0 and got["other"].error_code == ErrorCode.GENERAL
        assert "forbidden" in (got["other"].error_message or "")

        # a token of several tenants names the one it reads in the context
        consulting = client_for(url, consultant, "consultant", domains)
        other = await asyncio.to_thread(
            consulting.get_integer_details,
            DUE,
            0,
            EvaluationContext(attributes={"tenant": "other"}),
        )
        assert (other.value, other.variant) == (90, "TENANT")
        unnamed = await asyncio.to_thread(consulting.get_integer_details, DUE, 0)
        assert unnamed.value == 0 and unnamed.error_code == ErrorCode.INVALID_CONTEXT

        # a change is read at once (the cache answers under the tenant's data version)
        await services.settings.set(ADMIN, tenant, DUE, 50)
        after = await asyncio.to_thread(shop.get_integer_details, DUE, 0)
        assert (after.value, after.flag_metadata["revision"]) == (50, 2)

        # an unknown token: refused
        bad = client_for(url, "tlr_not-a-token", "bad", domains)
        refused = await asyncio.to_thread(bad.get_integer_details, DUE, 0)
        assert refused.value == 0 and refused.error_code == ErrorCode.GENERAL
        assert "unauthorized" in (refused.error_message or "")
