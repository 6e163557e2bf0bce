"""National SSO tests run against a real, independent OpenID Connect provider.

``provider/`` holds panva's certified ``oidc-provider`` (npm, pinned by
package-lock.json) and a small ``server.mjs`` configuring it like a national identity
provider: one confidential and one public client, PKCE required, a ``snils`` scope
and claim, and the test people below.  The session fixture installs it with
``npm ci`` when ``node_modules`` is missing, starts it on a free loopback port and
stops it at the end; without Node.js and npm the tests fail, saying so.

Our side is a real uvicorn server on loopback (like ``live_server``), built from the
session's database with the provider configured for two regions.  Tests drive both
with one httpx client, as a browser would: our login redirect, the provider's sign-in
and consent forms, and the redirect back to our callback.
"""

from __future__ import annotations

import fcntl
import hashlib
import html
import json
import os
import queue
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest
import uvicorn
from sqlalchemy import Engine

from medcard.access.context import AccessContext
from medcard.config import Settings, SsoProvider
from medcard.fhir import local
from medcard.identifiers import SNILS_SYSTEM, format_snils, make_snils
from medcard.web.app import create_app

PROVIDER_DIR = Path(__file__).parent / "provider"
CLIENT_ID = "medcard"
CLIENT_SECRET = "medcard-test-secret"
PUBLIC_CLIENT_ID = "medcard-public"
CONFIDENTIAL_REGION = "77"  # confidential client: client_secret_basic + PKCE
PUBLIC_REGION = "50"  # public client: PKCE alone

MATCHED_SNILS = make_snils("112233445")
UNKNOWN_SNILS = make_snils("223344556")
DUPLICATE_SNILS = make_snils("334455667")
USERINFO_SNILS = make_snils("445566778")

# The people the provider knows; the login typed into its form becomes the ID token's sub.
PEOPLE: dict[str, dict[str, Any]] = {
    # SNILS as printed on the card: the relying party must normalise it.
    "ivanova": {
        "snils": format_snils(MATCHED_SNILS),
        "family_name": "Иванова",
        "given_name": "Мария",
        "middle_name": "Петровна",
        "birthdate": "1984-03-12",
    },
    "petrov": {"snils": UNKNOWN_SNILS, "family_name": "Петров", "given_name": "Олег"},
    "sidorov": {"snils": DUPLICATE_SNILS, "family_name": "Сидоров", "given_name": "Павел"},
    # A provider that releases SNILS only at its userinfo endpoint.
    "kuznetsova": {
        "snils": USERINFO_SNILS,
        "snils_only_in_userinfo": True,
        "family_name": "Кузнецова",
        "given_name": "Анна",
    },
    "nosnils": {"family_name": "Без", "given_name": "СНИЛС"},
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    pytest.fail(f"{url} did not answer within {seconds} s", pytrace=False)


@pytest.fixture(scope="session")
def sso_port() -> int:
    return _free_port()


def _install_provider(npm: str) -> None:
    """``npm ci`` once, also when several pytest-xdist workers start together."""
    marker = PROVIDER_DIR / "node_modules" / "oidc-provider" / "package.json"
    if marker.is_file():
        return
    digest = hashlib.sha256(str(PROVIDER_DIR).encode()).hexdigest()[:12]
    lock_path = Path(tempfile.gettempdir()) / f"medcard-sso-npm-{digest}.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.is_file():
            return
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=PROVIDER_DIR,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if done.returncode != 0:
            pytest.fail(
                f"npm ci in {PROVIDER_DIR} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}",
                pytrace=False,
            )


@pytest.fixture(scope="session")
def oidc_issuer(sso_port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start the npm oidc-provider on loopback; its issuer URL."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail(
            "tests/sso start a real OpenID Connect provider (npm oidc-provider) and need "
            "Node.js 18+ and npm on PATH: apt-get install -y nodejs npm",
            pytrace=False,
        )
    _install_provider(npm)
    callbacks = [
        f"http://127.0.0.1:{sso_port}/auth/sso/{region}/callback"
        for region in (CONFIDENTIAL_REGION, PUBLIC_REGION)
    ]
    env = {
        **os.environ,
        "REDIRECT_URIS": json.dumps(callbacks),
        "CLIENT_ID": CLIENT_ID,
        "CLIENT_SECRET": CLIENT_SECRET,
        "PUBLIC_CLIENT_ID": PUBLIC_CLIENT_ID,
        "PEOPLE": json.dumps(PEOPLE, ensure_ascii=False),
        "PORT": "0",
    }
    log_path = tmp_path_factory.mktemp("oidc-provider") / "provider.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [node, "server.mjs"],
            cwd=PROVIDER_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    lines: queue.Queue[str] = queue.Queue()

    def drain() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)

    drainer = threading.Thread(target=drain, daemon=True)
    drainer.start()
    try:
        try:
            first = lines.get(timeout=30)
        except queue.Empty:
            first = ""
        if not first.strip():
            pytest.fail(
                f"the OpenID Connect provider did not start:\n{log_path.read_text()}",
                pytrace=False,
            )
        issuer = str(json.loads(first)["issuer"])
        _wait_http(issuer + "/.well-known/openid-configuration")
        yield issuer
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        drainer.join(timeout=5)  # ends at the pipe's end of file
        assert proc.stdout is not None
        proc.stdout.close()


@pytest.fixture(scope="session")
def sso_settings(settings: Settings, oidc_issuer: str) -> Settings:
    return Settings(
        data_dir=settings.data_dir,
        database_url=settings.database_url,
        sso_providers={
            CONFIDENTIAL_REGION: SsoProvider(
                name="Госуслуги",
                issuer=oidc_issuer,
                client_id=CLIENT_ID,
                client_secret=CLIENT_SECRET,
            ),
            PUBLIC_REGION: SsoProvider(
                name="Госуслуги", issuer=oidc_issuer, client_id=PUBLIC_CLIENT_ID
            ),
        },
    )


@pytest.fixture(scope="session")
def sso_server(sso_settings: Settings, engine: Engine, sso_port: int) -> Iterator[str]:
    """Our app, with the provider configured, on a real uvicorn server (as live_server)."""
    app = create_app(sso_settings, engine)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=sso_port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{sso_port}"
    _wait_http(url + "/healthz")
    yield url
    server.should_exit = True
    thread.join(timeout=5)


@pytest.fixture
def browser(sso_server: str) -> Iterator[httpx.Client]:
    """A cookie-keeping client that follows no redirect by itself: tests look at each hop."""
    with httpx.Client(timeout=15, follow_redirects=False) as client:
        yield client


@pytest.fixture(scope="module")
def standin_app(settings: Settings, engine: Engine) -> Iterator[str]:
    """Our app with the demo's stand-in identity provider on, as ``serve --demo`` runs it
    (MEDCARD_STANDIN_IDP, the port it listens on), on a real uvicorn server."""
    port = _free_port()
    demo_settings = Settings(
        data_dir=settings.data_dir,
        database_url=settings.database_url,
        billing_sweep=False,
        standin_idp=True,
        port=port,
    )
    app = create_app(demo_settings, engine)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    _wait_http(url + "/healthz")
    yield url
    server.should_exit = True
    thread.join(timeout=5)


# -- driving the flow ---------------------------------------------------------------------


@dataclass
class Started:
    authorize_url: str  # where our login sent the browser
    login_cookie: str  # our signed state cookie, as the browser holds it


def start_login(browser: httpx.Client, app: str, region: str = CONFIDENTIAL_REGION) -> Started:
    resp = browser.get(f"{app}/auth/sso/{region}/login")
    assert resp.status_code == 303, resp.text
    cookie = browser.cookies.get("medcard_sso", path="/auth/sso/")
    assert cookie, "the login sets a state cookie"
    return Started(resp.headers["location"], cookie)


_FORM = re.compile(r'<form[^>]*action="([^"]+)"[^>]*method="post"', re.I)
_PROMPT = re.compile(r'name="prompt" value="(\w+)"')
_ABORT = re.compile(r'<a href="([^"]*/abort)"')


def forget_provider_session(browser: httpx.Client) -> None:
    """Sign out at the provider (drop its cookies), so the next login shows its form."""
    for cookie in list(browser.cookies.jar):
        if cookie.name.startswith(("_session", "_interaction")):
            browser.cookies.delete(cookie.name, domain=cookie.domain, path=cookie.path)


def at_provider(
    browser: httpx.Client, url: str, app: str, login: str, *, cancel: bool = False
) -> str:
    """Go through the provider's pages as a person would (sign in, consent, or cancel);
    return the URL it sends the browser back to, without visiting it.

    The provider's own session is dropped first: otherwise it would sign in again
    whoever signed in last, without showing its form (single sign-on at work).
    """
    forget_provider_session(browser)
    signed_in_as = ""
    for _ in range(20):
        if url.startswith(app):
            assert cancel or signed_in_as == login, "the provider showed no sign-in form"
            return url
        resp = browser.get(url)
        if resp.is_redirect:
            url = urljoin(url, resp.headers["location"])
            continue
        assert resp.status_code == 200, f"{url}: {resp.status_code} {resp.text[:500]}"
        if cancel:
            abort = _ABORT.search(resp.text)
            assert abort, resp.text[:500]
            url = urljoin(url, html.unescape(abort.group(1)))
            continue
        form, prompt = _FORM.search(resp.text), _PROMPT.search(resp.text)
        assert form, resp.text[:500]
        assert prompt, resp.text[:500]
        data = {"prompt": prompt.group(1)}
        if prompt.group(1) == "login":
            data |= {"login": login, "password": "any password will do"}
            signed_in_as = login
        resp = browser.post(urljoin(url, html.unescape(form.group(1))), data=data)
        assert resp.is_redirect, f"{resp.status_code} {resp.text[:500]}"
        url = urljoin(url, resp.headers["location"])
    raise AssertionError("the provider never sent the browser back")


def sign_in(
    browser: httpx.Client, app: str, login: str, region: str = CONFIDENTIAL_REGION
) -> httpx.Response:
    """The whole round trip; the response of our callback."""
    started = start_login(browser, app, region)
    callback = at_provider(browser, started.authorize_url, app, login)
    return browser.get(callback)


def create_patient(engine: Engine, snils: str, family: str = "Иванова") -> str:
    resp = local.call(
        engine,
        AccessContext.system("system:test"),
        "POST",
        "Patient",
        {
            "resourceType": "Patient",
            "identifier": [{"system": SNILS_SYSTEM, "value": snils}],
            "name": [{"family": family, "given": ["Мария"]}],
            "gender": "female",
            "birthDate": "1984-03-12",
        },
    )
    assert resp.status == 201, resp.body
    body = resp.body if isinstance(resp.body, dict) else json.loads(resp.body)
    return str(body["id"])
