"""Submitting an entry form: validate, write every resource in one transaction, sign.

Double submission: every form carries a random submission key (rendered with the
form); it is stored as an identifier on the entry's main resource and looked up,
inside the write transaction, with a conditional match (serialised on PostgreSQL by
an advisory lock), so a second POST of the same form writes nothing and leads to the
entry the first one made.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from medcard import clock
from medcard.entries.builders import KINDS, EntryContext
from medcard.entries.forms import TZ, Reader
from medcard.entries.problems import Collector, FormError
from medcard.fhir.outcomes import FhirError
from medcard.fhir.store.repository import Repository, Stored
from medcard.signing import KeyStore, sign

SUBMISSION_SYSTEM = "https://medcard.example/fhir/sid/form-submission"
_KEY = re.compile(r"[A-Za-z0-9\-]{16,64}")


@dataclass(frozen=True)
class Submitted:
    main: Stored
    written: list[Stored]
    provenance: Stored | None
    duplicate: bool = False


def author_context(
    repo: Repository, patient_id: str, *, now: dt.datetime | None = None
) -> EntryContext:
    """Who writes (the repository's practitioner, their organisation) about whom."""
    actor = repo.ctx.actor
    if not actor.startswith("Practitioner/"):
        raise FormError.one("", "ws_err_not_practitioner")
    patient = repo.read("Patient", patient_id).json()  # the gate: 404 for no relation
    name = ""
    try:
        prac = repo.read("Practitioner", actor.split("/", 1)[1]).json()
        first: dict[str, Any] = next(iter(prac.get("name") or []), {})
        name = str(first.get("text") or "") or " ".join(
            [str(first.get("family", "")), *[str(g) for g in first.get("given") or []]]
        )
    except FhirError:
        name = actor
    org_ref = org_name = ""
    if repo.ctx.organizations:
        org_id = sorted(repo.ctx.organizations)[0]
        org_ref = f"Organization/{org_id}"
        try:
            org_name = str(repo.read("Organization", org_id).json().get("name", ""))
        except FhirError:
            org_name = ""
    return EntryContext(
        repo,
        patient_id,
        patient,
        actor,
        name.strip(),
        org_ref,
        org_name,
        now or clock.now().astimezone(TZ),
    )


def submit(
    repo: Repository,
    keys: KeyStore,
    kind: str,
    patient_id: str,
    form: Mapping[str, str],
    submission_key: str,
    *,
    now: dt.datetime | None = None,
) -> Submitted:
    """Build, write and sign one entry; FormError when the form needs fixing."""
    if kind not in KINDS:
        raise FormError.one("", "ws_err_unknown_kind")
    if not _KEY.fullmatch(submission_key or ""):
        raise FormError.one("", "ws_err_submission")
    ctx = author_context(repo, patient_id, now=now)
    errs = Collector()
    resources = KINDS[kind].build(Reader(form, errs, ctx.now), ctx)
    main = resources[0]
    main.setdefault("identifier", []).append({"system": SUBMISSION_SYSTEM, "value": submission_key})
    key = keys.signing_key(ctx.practitioner)
    with repo.unit_of_work():
        earlier = repo.conditional_match(
            main["resourceType"], f"identifier={SUBMISSION_SYSTEM}|{submission_key}", "Submission"
        )
        if earlier:
            return Submitted(earlier[0], [], None, duplicate=True)
        written = [repo.create(res, rid=res["id"]).stored for res in resources]
        provenance = sign(repo, key, written, signer_name=ctx.practitioner_name)
    return Submitted(written[0], written, provenance)
