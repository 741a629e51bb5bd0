"""TLS at the proxy (docs/operations.md): nginx ends TLS with the shipped
configuration's TLS lines turned on and forwards `X-Forwarded-Proto`; the node
(trusting its proxy, FORWARDED_ALLOW_IPS) makes the console's session cookie
`Secure` over https, and not over plain http."""

from __future__ import annotations

import asyncio
import os
import re
import ssl

import httpx
import pytest

from core.model.auth import Role
from tests.ops.cluster import REQUIRE_NGINX, nginx, nginx_missing, self_signed
from tests.servers import free_port, start_node


async def sign_in(url: str, token: str, verify: object) -> str:
    """The Set-Cookie header of a console sign-in through ``url``."""
    async with httpx.AsyncClient(timeout=30, verify=verify) as browser:
        page = await browser.get(f"{url}/console/sign-in")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf, page.text
        signed = await browser.post(
            f"{url}/console/sign-in", data={"csrf": csrf.group(1), "token": token}
        )
        assert signed.status_code == 303, signed.text
        (cookie,) = [c for c in signed.headers.get_list("set-cookie") if "tailor_session" in c]
        return cookie


async def test_session_cookies_are_secure_behind_tls(tmp_path):
    missing = nginx_missing()
    if missing:
        if os.environ.get(REQUIRE_NGINX) == "1":
            pytest.fail(f"{REQUIRE_NGINX}=1 but {missing}")
        pytest.skip(missing)
    url = f"sqlite+aiosqlite:///{tmp_path / 'node.db'}"
    node = await start_node(tmp_path / "node", url, "--migrate", probe="/readyz")
    try:
        from core.store.services import Services

        services = Services.from_url(url)
        try:
            token, _ = await services.tokens.create(Role.ADMIN)
        finally:
            await services.close()
        cert, key = await asyncio.to_thread(self_signed, tmp_path / "tls")
        tls_port = free_port()
        async with nginx([node.port], tmp_path / "nginx", tls=(tls_port, cert, key)) as proxy:
            trusted = ssl.create_default_context(cafile=str(cert))
            secure = await sign_in(f"https://127.0.0.1:{tls_port}", token, trusted)
            plain = await sign_in(proxy.url, token, True)
        assert "secure" in secure.lower() and "httponly" in secure.lower()
        assert "samesite=strict" in secure.lower()
        assert "secure" not in plain.lower()
    finally:
        await node.stop()
