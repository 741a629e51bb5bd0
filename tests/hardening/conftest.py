"""Fixtures of the API and plugin tests, for the probes."""

from tests.api.conftest import client_with  # noqa: F401
from tests.plugins.conftest import (  # noqa: F401
    plugin_api,
    plugin_dir,
    two_tenants,
    write_customization,
)
