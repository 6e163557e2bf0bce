"""Issue 14 item 8: the production front (deploy/nginx, started by scripts/front.sh)
cuts off a client that sends its request one byte a second, while others are served."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def front(live_server: str, tmp_path: Path) -> Iterator[str]:
    if not os.access(NGINX, os.X_OK):
        pytest.fail("nginx is not installed (scripts/setup.sh test installs it)")
    port = _free_port()
    env = {
        **os.environ,
        "MEDCARD_FRONT_PORT": str(port),
        "MEDCARD_UPSTREAMS": live_server.removeprefix("http://"),
        "MEDCARD_FRONT_PREFIX": str(tmp_path / "nginx"),
        "MEDCARD_NGINX": NGINX,
    }
    script = str(ROOT / "scripts" / "front.sh")
    up = subprocess.run(
        [script, "up"], check=False, env=env, capture_output=True, text=True, timeout=30
    )
    assert up.returncode == 0, up.stderr + up.stdout
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(50):
            try:
                if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield url
    finally:
        subprocess.run([script, "down"], check=False, env=env, capture_output=True, timeout=30)


def test_a_slow_client_is_cut_off_while_others_are_served(front: str) -> None:
    port = int(front.rsplit(":", 1)[1])
    slow = socket.create_connection(("127.0.0.1", port), timeout=30)
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"a" * 40
    started = time.monotonic()
    cut = False
    try:
        for byte in request:
            try:
                slow.sendall(bytes([byte]))
            except OSError:
                cut = True
                break
            # the others are served meanwhile
            assert httpx.get(front + "/healthz", timeout=5).status_code == 200
            slow.settimeout(1.0)
            try:
                if slow.recv(1024) == b"":
                    cut = True
                    break
            except TimeoutError:
                pass
            if time.monotonic() - started > 25:
                break
    finally:
        slow.close()
    waited = time.monotonic() - started
    assert cut, f"the slow client was still connected after {waited:.0f} s"
    # client_header_timeout 10s in deploy/nginx/medcard.conf
    assert 9 <= waited <= 20


def test_the_front_refuses_an_oversized_body_before_the_app(front: str) -> None:
    r = httpx.post(
        front + "/fhir/Patient",
        content=b"x" * (17 * 1024 * 1024),
        headers={"Content-Type": "application/fhir+json"},
        timeout=30,
    )
    assert r.status_code == 413


def test_requests_pass_through_the_front_to_the_app(front: str) -> None:
    r = httpx.get(front + "/fhir/Patient", timeout=5)
    assert r.status_code == 401  # through to the app, which answers as it would directly
    assert r.json()["resourceType"] == "OperationOutcome"
