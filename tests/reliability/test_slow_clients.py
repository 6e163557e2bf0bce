"""Slow clients: connections that trickle headers or bodies must not starve anyone else,
and idle keep-alive connections are closed.  Run against a real ``uvicorn`` process.

uvicorn has no timeout for a request whose headers never finish, so production runs
behind a TLS-terminating proxy with its own header and body timeouts (README,
"Reliability"); what the server itself guarantees is tested here.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from reliability.procs import Server, migrate, system_token


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("slow")
    url = f"sqlite:///{data / 'medcard.sqlite3'}"
    migrate(url, data)
    srv = Server(Path(data), url)
    srv.start()
    yield srv
    srv.kill()


def _connect(srv: Server) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    s.settimeout(10)
    return s


def _timed_get(srv: Server, path: str, token: str = "") -> float:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    began = time.monotonic()
    r = httpx.get(srv.base + path, headers=headers, timeout=10)
    assert r.status_code in (200, 404), r.text
    return time.monotonic() - began


def test_clients_trickling_headers_do_not_starve_others(server: Server) -> None:
    token = system_token(server.data_dir)
    slow = []
    try:
        for i in range(200):
            s = _connect(server)
            s.sendall(f"GET /fhir/Patient/{i} HTTP/1.1\r\nHost: x\r\nX-Slow: ".encode())
            slow.append(s)
        for _ in range(3):
            for s in slow:
                s.sendall(b"a")
            assert _timed_get(server, "/healthz") < 2.0
            assert _timed_get(server, "/fhir/Patient/none", token) < 2.0
    finally:
        for s in slow:
            s.close()


def test_clients_trickling_bodies_hold_no_worker_thread_or_database_connection(
    server: Server,
) -> None:
    token = system_token(server.data_dir)
    slow = []
    try:
        for _ in range(60):  # more than the thread pool (40) and the DB pool (20) together
            s = _connect(server)
            s.sendall(
                b"POST /fhir/Patient HTTP/1.1\r\nHost: x\r\nContent-Type: application/fhir+json\r\n"
                + f"Authorization: Bearer {token}\r\nContent-Length: 100000\r\n\r\n".encode()
                + b'{"resourceType":"Patient","name":[{"family":"'
            )
            slow.append(s)
        time.sleep(0.5)
        for _ in range(5):
            assert _timed_get(server, "/fhir/Patient/none", token) < 2.0
        r = httpx.post(
            server.base + "/fhir/Patient",
            json={"resourceType": "Patient", "gender": "male"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert r.status_code == 201
    finally:
        for s in slow:
            s.close()


def test_an_idle_keep_alive_connection_is_closed(server: Server) -> None:
    s = _connect(server)
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        while b'"ok"' not in answer:
            answer += s.recv(4096)
        assert answer.startswith(b"HTTP/1.1 200")
        began = time.monotonic()
        assert s.recv(100) == b""  # the server hung up
        assert time.monotonic() - began < 8
    finally:
        s.close()


def test_a_client_that_disconnects_mid_request_leaves_the_server_well(server: Server) -> None:
    token = system_token(server.data_dir)
    for _ in range(50):
        s = _connect(server)
        s.sendall(
            b"POST /fhir/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/fhir+json\r\n"
            + f"Authorization: Bearer {token}\r\nContent-Length: 5000\r\n\r\n".encode()
            + b'{"resourceType":"Bundle","type":"transaction","entry":['
        )
        s.close()
    assert _timed_get(server, "/fhir/Patient/none", token) < 2.0
    assert "Exception in ASGI application" not in server.log_tail(10**7)
