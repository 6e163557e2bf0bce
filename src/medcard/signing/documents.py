"""Signing finished documents, verifying them, and correcting them by a new signed version.

A signature is a FHIR ``Provenance`` (R4 provenance.html, signature element) made in
the same transaction as what it signs:

* ``target``: every signed resource at its exact version (``Type/id/_history/N``), plus
  the Patient unversioned, because R4 files a Provenance in a patient's compartment
  only through ``target.where(resolve() is Patient)``;
* ``activity`` v3 DocumentCompletion ``LA`` (legally authenticated);
* ``signature``: ASTM E1762 author's signature; ``data`` is a compact JWS with a
  detached payload (RFC 7515 appendix F) whose header names the algorithm (``alg``)
  and the author's key (``kid``).  The payload is the canonical JSON (sorted keys,
  no whitespace, UTF-8) of the signer, the time and each target version without its
  server-set ``meta.versionId``/``meta.lastUpdated``.

Once signed, the store refuses to update or delete the resource (409); a correction
goes through :func:`correct`, which writes the new version and signs it in one
transaction, with ``entity`` role ``revision`` naming the version it replaces.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson

from medcard.clock import format_instant, now_micros
from medcard.fhir.outcomes import FhirError, bad_request, forbidden
from medcard.fhir.search.params import parse
from medcard.fhir.store.repository import (
    SIGNATURE_TYPE_CODE,
    SIGNATURE_TYPE_SYSTEM,
    Repository,
    Stored,
)
from medcard.signing import algorithms
from medcard.signing.keys import KeyStore, SigningKey

ACTIVITY_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-DocumentCompletion"
PARTICIPANT_TYPE = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
SIG_FORMAT = "application/jose"
TARGET_FORMAT = "application/fhir+json"


class Status(StrEnum):
    VALID = "valid"  # the signature verifies against the exact stored version
    INVALID = "invalid"  # content or signature do not match: tampered or corrupted
    ALTERED = "altered"  # signed, but the current version is not the signed one
    UNKNOWN_KEY = "unknown-key"  # the key that made it is not known here
    UNSIGNED = "unsigned"


@dataclass(frozen=True)
class Verification:
    status: Status
    signer: str = ""
    signer_name: str = ""
    when: str = ""
    algorithm: str = ""
    provenance_id: str = ""

    @property
    def ok(self) -> bool:
        return self.status == Status.VALID


UNSIGNED = Verification(Status.UNSIGNED)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def canonical(signer: str, when: str, targets: Iterable[tuple[str, dict[str, Any]]]) -> bytes:
    """The bytes a signature covers: stable across storage, key order and whitespace."""
    items = []
    for ref, content in sorted(targets, key=lambda t: t[0]):
        body = dict(content)
        meta = dict(body.pop("meta", None) or {})
        meta.pop("versionId", None)
        meta.pop("lastUpdated", None)
        if meta:
            body["meta"] = meta
        items.append({"reference": ref, "resource": body})
    return orjson.dumps(
        {"signer": signer, "when": when, "targets": items}, option=orjson.OPT_SORT_KEYS
    )


def versioned(stored: Stored) -> str:
    return f"{stored.resource_type}/{stored.id}/_history/{stored.version_id}"


def sign(
    repo: Repository,
    key: SigningKey,
    entries: list[Stored],
    *,
    signer_name: str = "",
    reason: str = "",
    revision_of: list[str] | None = None,
) -> Stored:
    """Sign ``entries`` (just written in this unit of work) as the repository's practitioner.

    ``key`` is ``KeyStore.signing_key(actor)``, fetched before the unit of work begins
    (SQLite has one writer: the key store must not open a second transaction inside).
    """
    signer = repo.ctx.actor
    if not signer.startswith("Practitioner/") or key.owner != signer:
        raise forbidden("Only a practitioner signs medical documents, with their own key")
    if not entries:
        raise bad_request("Nothing to sign")
    patients = {e.patient_id for e in entries}
    if len(patients) != 1 or "" in patients:
        raise bad_request("A signed document belongs to exactly one patient's card")
    alg = algorithms.get(key.algorithm)
    when = format_instant(now_micros())
    targets = [(versioned(e), e.json()) for e in entries]
    header = _b64url(orjson.dumps({"alg": alg.name, "kid": key.kid}, option=orjson.OPT_SORT_KEYS))
    payload = _b64url(canonical(signer, when, targets))
    signature = alg.sign(key.private, f"{header}.{payload}".encode())
    jws = f"{header}..{_b64url(signature)}"
    who: dict[str, Any] = {"reference": signer}
    if signer_name:
        who["display"] = signer_name
    agent: dict[str, Any] = {
        "type": {"coding": [{"system": PARTICIPANT_TYPE, "code": "author", "display": "Author"}]},
        "who": who,
    }
    if repo.ctx.organizations:
        agent["onBehalfOf"] = {"reference": f"Organization/{sorted(repo.ctx.organizations)[0]}"}
    provenance: dict[str, Any] = {
        "resourceType": "Provenance",
        "target": [{"reference": ref} for ref, _ in targets]
        + [{"reference": f"Patient/{patients.pop()}"}],
        "recorded": when,
        "activity": {
            "coding": [
                {"system": ACTIVITY_SYSTEM, "code": "LA", "display": "legally authenticated"}
            ]
        },
        "agent": [agent],
        "signature": [
            {
                "type": [
                    {
                        "system": SIGNATURE_TYPE_SYSTEM,
                        "code": SIGNATURE_TYPE_CODE,
                        "display": "Author's Signature",
                    }
                ],
                "when": when,
                "who": dict(who),
                "targetFormat": TARGET_FORMAT,
                "sigFormat": SIG_FORMAT,
                "data": base64.b64encode(jws.encode()).decode(),
            }
        ],
    }
    if reason:
        provenance["reason"] = [{"text": reason}]
    if revision_of:
        provenance["entity"] = [
            {"role": "revision", "what": {"reference": ref}} for ref in revision_of
        ]
    return repo.create(provenance).stored


def verify(
    repo: Repository,
    keys: KeyStore,
    provenance: dict[str, Any],
    known: dict[str, dict[str, Any]] | None = None,
) -> Verification:
    """Check one signature Provenance against the stored versions it names."""
    known = known or {}
    sig = next(iter(provenance.get("signature") or []), None)
    if not isinstance(sig, dict):
        return UNSIGNED
    signer = str((sig.get("who") or {}).get("reference") or "")
    name = str((sig.get("who") or {}).get("display") or "")
    when = str(sig.get("when") or "")
    base = Verification(Status.INVALID, signer, name, when, provenance_id=provenance.get("id", ""))
    try:
        jws = base64.b64decode(sig.get("data") or "").decode()
        header_b64, empty, sig_b64 = jws.split(".")
        header = orjson.loads(_unb64url(header_b64))
        signature = _unb64url(sig_b64)
    except (ValueError, orjson.JSONDecodeError):
        return base
    if empty or not isinstance(header, dict):
        return base
    public = keys.public_key(str(header.get("kid", "")))
    if public is None:
        return Verification(Status.UNKNOWN_KEY, signer, name, when, str(header.get("alg", "")))
    if public.owner != signer or public.algorithm != header.get("alg"):
        return base
    targets = []
    for t in provenance.get("target") or []:
        ref = str(t.get("reference") or "")
        parts = ref.split("/")
        if len(parts) != 4 or parts[2] != "_history":
            continue
        content = known.get(ref)
        if content is None:
            try:
                content = repo.vread(parts[0], parts[1], parts[3]).json()
            except FhirError:
                return base
        targets.append((ref, content))
    payload = _b64url(canonical(signer, when, targets))
    alg = algorithms.get(public.algorithm)
    ok = alg.verify(public.public, f"{header_b64}.{payload}".encode(), signature)
    return Verification(
        Status.VALID if ok else Status.INVALID,
        signer,
        name,
        when,
        alg.title,
        str(provenance.get("id", "")),
    )


def signatures_of(repo: Repository, patient_id: str) -> list[Stored]:
    """Every signature Provenance in one card."""
    req = parse(
        "Provenance",
        [
            ("patient", f"Patient/{patient_id}"),
            ("signature-type", f"{SIGNATURE_TYPE_SYSTEM}|{SIGNATURE_TYPE_CODE}"),
            ("_count", "1000"),
        ],
    )
    return repo.search(req).matches


def as_shown(resource: dict[str, Any], patient_id: str) -> Stored:
    """The version of a resource as a page shows it (from its meta), for :func:`statuses`."""
    version = str((resource.get("meta") or {}).get("versionId", "1"))
    return Stored(
        str(resource["resourceType"]),
        str(resource["id"]),
        int(version) if version.isdigit() else 1,
        0,
        orjson.dumps(resource),
        False,
        patient_id,
    )


def statuses(
    repo: Repository, keys: KeyStore, patient_id: str, entries: Iterable[Stored]
) -> dict[tuple[str, str], Verification]:
    """The signature status of each entry as displayed (its current version)."""
    entries = list(entries)
    by_target: dict[tuple[str, str], list[tuple[int, dict[str, Any]]]] = {}
    for prov in signatures_of(repo, patient_id):
        body = prov.json()
        for t in body.get("target") or []:
            parts = str(t.get("reference") or "").split("/")
            if len(parts) == 4 and parts[2] == "_history" and parts[3].isdigit():
                by_target.setdefault((parts[0], parts[1]), []).append((int(parts[3]), body))
    known = {versioned(e): e.json() for e in entries}
    checked: dict[str, Verification] = {}
    out: dict[tuple[str, str], Verification] = {}
    for e in entries:
        sigs = by_target.get((e.resource_type, e.id))
        if not sigs:
            out[(e.resource_type, e.id)] = UNSIGNED
            continue
        current = [body for version, body in sigs if version == e.version_id]
        if not current:
            latest = max(sigs, key=lambda s: s[0])[1]
            who = (latest.get("signature") or [{}])[0].get("who") or {}
            out[(e.resource_type, e.id)] = Verification(
                Status.ALTERED, str(who.get("reference", "")), str(who.get("display", ""))
            )
            continue
        body = current[-1]
        pid = str(body.get("id", ""))
        if pid not in checked:
            checked[pid] = verify(repo, keys, body, known)
        out[(e.resource_type, e.id)] = checked[pid]
    return out


def correct(
    repo: Repository,
    keys: KeyStore,
    rtype: str,
    rid: str,
    new_content: dict[str, Any],
    reason: str,
    *,
    signer_name: str = "",
) -> tuple[Stored, Stored]:
    """Replace a signed version by a new one, signed in the same transaction."""
    reason = " ".join(reason.split())
    if len(reason) < 5:
        raise bad_request("State what the correction changes and why (at least 5 characters)")
    key = keys.signing_key(repo.ctx.actor)
    with repo.unit_of_work():
        current = repo.read(rtype, rid)
        repo.signed_corrections.add((rtype, rid))
        try:
            stored = repo.update(
                rtype, rid, {**new_content, "id": rid}, if_match=current.etag
            ).stored
        finally:
            repo.signed_corrections.discard((rtype, rid))
        provenance = sign(
            repo,
            key,
            [stored],
            signer_name=signer_name,
            reason=reason,
            revision_of=[versioned(current)],
        )
    return stored, provenance
