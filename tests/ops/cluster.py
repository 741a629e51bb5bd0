"""Tailor nodes behind Debian's nginx, as docs/operations.md deploys them: the
shipped deploy/nginx.conf (its upstream servers and port replaced) run as a
non-daemon with a prefix of its own; steady load from several clients; a
rolling restart. Used by tests/ops/ and bench/rolling_restart.py."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.servers import Node, free_port, start_node

ROOT = Path(__file__).resolve().parent.parent.parent
NGINX_CONF = ROOT / "deploy" / "nginx.conf"
NGINX = "/usr/sbin/nginx"
#: set by CI (.ci/run): a missing nginx fails these tests instead of skipping them
REQUIRE_NGINX = "TAILOR_REQUIRE_NGINX"

SETTINGS = {
    "query": '{ settings(tenant: "acme", keys: ["billing.invoice.due_days"]) '
    "{ ... on Settings { items { key value source } } } }"
}


def nginx_missing() -> str | None:
    """Why nginx cannot run here (None: it can)."""
    if not Path(NGINX).is_file() and shutil.which("nginx") is None:
        return "nginx is not installed (apt-get install -y nginx)"
    return None


def nginx_config(
    upstreams: Sequence[int], port: int, prefix: Path, tls: tuple[int, Path, Path] | None = None
) -> str:
    """deploy/nginx.conf with these nodes (ports of 127.0.0.1) and this port,
    its temporary files and logs under ``prefix``; with ``tls`` (port, certificate,
    key), its commented TLS lines turned on with these."""
    text = NGINX_CONF.read_text(encoding="utf-8")
    shipped = re.findall(r"^( *)server 10\.0\.0\.\d+:8000( [^;]*)?;$", text, re.MULTILINE)
    assert shipped, "deploy/nginx.conf lists no upstream server"
    indent, options = shipped[0]
    servers = "\n".join(f"{indent}server 127.0.0.1:{p}{options};" for p in upstreams)
    text = re.sub(
        r"^ *server 10\.0\.0\.\d+:8000[^;]*;\n", "", text, count=len(shipped) - 1, flags=re.M
    )
    text = re.sub(r"^ *server 10\.0\.0\.\d+:8000[^;]*;$", servers, text, count=1, flags=re.M)
    assert "listen 80;" in text
    text = text.replace("listen 80;", f"listen 127.0.0.1:{port};")
    if tls is not None:
        tls_port, cert, key = tls
        for line, value in (
            ("# listen 443 ssl;", f"listen 127.0.0.1:{tls_port} ssl;"),
            ("# ssl_certificate     /etc/ssl/tailor/fullchain.pem;", f"ssl_certificate {cert};"),
            ("# ssl_certificate_key /etc/ssl/tailor/privkey.pem;", f"ssl_certificate_key {key};"),
        ):
            assert line in text, line
            text = text.replace(line, value)
    paths = "".join(
        f"    {kind}_temp_path {prefix / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return text.replace("http {\n", f"http {{\n{paths}    access_log {prefix / 'access.log'};\n", 1)


def _write_config(conf: Path, text: str) -> None:
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(text, encoding="utf-8")


@dataclass
class Nginx:
    url: str
    process: asyncio.subprocess.Process
    prefix: Path

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGQUIT)  # graceful
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


@contextlib.asynccontextmanager
async def nginx(
    upstreams: Sequence[int], prefix: Path, tls: tuple[int, Path, Path] | None = None
) -> AsyncIterator[Nginx]:
    """nginx in front of ``upstreams``, in the foreground, until the block ends."""
    port = free_port()
    conf = prefix / "nginx.conf"
    await asyncio.to_thread(_write_config, conf, nginx_config(upstreams, port, prefix, tls))
    # as root, workers would run as nobody, who may not enter a private temp dir
    user = "user root; " if os.geteuid() == 0 else ""
    process = await asyncio.create_subprocess_exec(
        shutil.which("nginx") or NGINX,
        *("-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")),
        *("-g", f"daemon off; master_process on; {user}pid {prefix / 'nginx.pid'};"),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    proxy = Nginx(f"http://127.0.0.1:{port}", process, prefix)
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(100):
                if process.returncode is not None:
                    error = await process.stderr.read() if process.stderr else b""
                    raise AssertionError(f"nginx did not start: {error.decode()}")
                with contextlib.suppress(httpx.HTTPError):
                    await client.get(f"{proxy.url}/healthz", timeout=1)
                    break
                await asyncio.sleep(0.1)
        yield proxy
    finally:
        await proxy.stop()


@dataclass
class Load:
    """What steady load sent through the proxy, and what failed (with why)."""

    sent: int = 0
    failed: int = 0
    failures: list[str] = field(default_factory=list)


async def steady_load(url: str, token: str, clients: int, stop: asyncio.Event, load: Load) -> None:
    """``clients`` clients, each sending the settings query and waiting for its
    answer, again and again until ``stop``; an answer other than 200 with data is
    a failure."""

    async def client() -> None:
        async with httpx.AsyncClient(timeout=30) as http:
            while not stop.is_set():
                why = None
                try:
                    response = await http.post(
                        f"{url}/graphql",
                        json=SETTINGS,
                        headers={"Authorization": f"Bearer {token}"},
                    )
                    if response.status_code != 200 or "errors" in response.json():
                        why = f"{response.status_code}: {response.text[:200]}"
                except httpx.HTTPError as exc:
                    why = f"{type(exc).__name__}: {exc}"
                load.sent += 1
                if why is not None:
                    load.failed += 1
                    load.failures.append(why)

    await asyncio.gather(*(client() for _ in range(clients)))


#: what the nodes of a load test run with: no rate limit. The steady load is 8
#: clients on one token, well past one token's budget per process; a 429 is a
#: refusal the limit is built to give, not a request a restart lost
LOAD_ENV = {"TAILOR_RATE_LIMIT_PER_MINUTE": "0"}


async def restart(node: Node, database_url: str, *args: str, limit: float = 120.0) -> Node:
    """Stop ``node`` (SIGTERM: it drains) and start it again, in its directory on
    its port; returns once it is ready. Its exit status must be 0."""
    status = await node.stop(limit=limit)
    assert status == 0, f"{node.url} exited {status}: {await node.output()}"
    return await start_node(
        node.home, database_url, *args, port=node.port, probe="/readyz", limit=limit, env=LOAD_ENV
    )


async def rolling_restart(
    nodes: list[Node], database_url: str, *args: str, pause: float = 1.0
) -> float:
    """Restart ``nodes`` one after the other (each ready before the next stops);
    seconds it took."""
    started = time.monotonic()
    for i, node in enumerate(nodes):
        nodes[i] = await restart(node, database_url, *args)
        await asyncio.sleep(pause)
    return time.monotonic() - started


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key (PEM files in ``directory``)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path
