"""Lists the web-attack tests walk.  Others extend them as they add pages.

* ``CSRF_EXEMPT``: state-changing routes that are NOT browser forms (no cookie makes
  them act), with the reason.  Every other POST/PUT/PATCH/DELETE route in the
  application must refuse a request without its CSRF token.
* ``XSS_PAGES``: pages that show text a patient or clinician wrote (or a URL carries),
  as path templates over the ids the seeding makes (``{patient}``, ``{client_id}``,
  ``{payload}`` for URL-reflected values), with the role that opens them.
* ``DOWNLOADS``: routes that serve files; path traversal is tried against each.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

CSRF_EXEMPT: dict[str, str] = {
    "/fhir": "FHIR API: bearer tokens only, cookies are never read",
    "/fhir/{path:path}": "FHIR API: bearer tokens only, cookies are never read",
    "/oauth/token": "OAuth token endpoint: client authentication and PKCE, no cookies",
    "/oauth/revoke": "RFC 7009 endpoint: client authentication, no cookies",
    "/oauth/introspect": "RFC 7662 endpoint: client authentication, no cookies",
}

# (name, role that opens it, path template)
XSS_PAGES: list[tuple[str, str, str]] = [
    ("me", "patient", "/me"),
    ("me-security", "patient", "/me/security"),
    ("access-log", "patient", "/me/access-log"),
    ("my-access", "practitioner", "/me/my-access"),
    ("admin-audit", "org_admin", "/admin/audit?actor={payload_q}&patient={patient}"),
    ("login-next", "anonymous", "/login?next={payload_q}"),
    ("reset-token", "anonymous", "/password-reset/{payload_q}"),
    (
        "oauth-consent",
        "patient",
        "/oauth/authorize?response_type=code&client_id={client_id}"
        "&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&scope=launch%2Fpatient%20patient%2F*.rs"
        "&state={payload_q}&aud={base_q}%2Ffhir"
        "&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
    ),
    (
        "oauth-bad-request",
        "patient",
        "/oauth/authorize?client_id={payload_q}&redirect_uri={payload_q}",
    ),
    ("sso-result", "anonymous", "/auth/sso/77/result?error={payload_q}"),
]

DOWNLOADS: list[str] = ["/static/medcard.css", "/audit/audit.css", "/admin/audit/export"]


def state_changing_routes(app: Any) -> Iterator[tuple[str, str]]:
    """(method, path) of every route that takes POST, PUT, PATCH or DELETE."""
    for path, methods in all_routes(app):
        for method in sorted(methods & {"POST", "PUT", "PATCH", "DELETE"}):
            yield method, path


def all_routes(app: Any) -> Iterator[tuple[str, set[str]]]:
    """Every route of the application, included routers flattened (FastAPI 0.165 keeps
    included routers as one entry of ``app.routes``)."""
    for route in app.routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is not None:
            for ctx in contexts():
                yield ctx.path, set(ctx.methods or ())
        elif hasattr(route, "path"):
            yield route.path, set(getattr(route, "methods", None) or ())


XSS = '"><script>window.__xss=1</script><img src=x onerror="window.__xss=2">'
XSS_MARKERS = ("<script>window.__xss", "<img src=x onerror")


def seed_xss(engine: Any, base: str = "http://testserver") -> dict[str, str]:
    """Write the payload everywhere a patient, a clinician or an administrator can: names
    in the record, account display names, an app's name, an audit trail that names
    them.  Returns the ids the XSS_PAGES templates use."""
    from urllib.parse import quote

    from medcard.access.context import AccessContext
    from medcard.access.smart import Scopes
    from medcard.auth.oauth.clients import create_client
    from medcard.fhir.store.repository import Repository

    repo = Repository(engine, AccessContext("system:test", Scopes.parse("system/*.*")))
    with repo.unit_of_work():
        patient = repo.create(
            {
                "resourceType": "Patient",
                "name": [{"family": XSS, "given": [XSS], "text": XSS}],
                "telecom": [{"system": "email", "value": XSS}],
                "gender": "female",
            }
        ).stored
        practitioner = repo.create(
            {"resourceType": "Practitioner", "name": [{"family": XSS, "given": [XSS]}]}
        ).stored
        repo.create(
            {
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": XSS, "coding": [{"system": "urn:x", "code": "x", "display": XSS}]},
                "subject": {"reference": f"Patient/{patient.id}"},
                "valueString": XSS,
                "note": [{"text": XSS}],
            }
        )
    repo.close()
    # The practitioner opens the card, so the patient's access log names them.
    as_doctor = Repository(
        engine,
        AccessContext(f"Practitioner/{practitioner.id}", Scopes.parse("system/*.*"), purpose=XSS),
    )
    as_doctor.read("Patient", patient.id)
    as_doctor.close()
    client, _ = create_client(
        engine, XSS, public=True, scope="launch/patient patient/*.rs",
        redirect_uris=["https://app.example/cb"],
    )  # fmt: skip
    return {
        "patient": patient.id,
        "practitioner": practitioner.id,
        "client_id": client.client_id,
        "payload_q": quote(XSS, safe=""),
        "base_q": quote(base, safe=""),
    }
