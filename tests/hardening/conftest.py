"""Fixtures of the API tests, for the probes."""

from tests.api.conftest import client_with  # noqa: F401
