"""Pages read the record as the signed-in person, through the same gate as the API."""

from __future__ import annotations

import io
from types import SimpleNamespace
from typing import Any

import pytest
from rich.console import Console
from sqlalchemy import Engine

from medcard.auth import accounts
from medcard.demo.loader import load_demo
from medcard.fhir.outcomes import FhirError
from medcard.fhir.search.params import parse as parse_search
from medcard.web.deps import page_repository


def _request(app: Any) -> Any:
    return SimpleNamespace(app=app)


def test_patient_page_reads_own_card_and_not_another(app: Any, engine: Engine) -> None:
    load_demo(engine, 3, console=Console(file=io.StringIO()))
    patient = accounts.get_by_login(engine, "patient@medcard.example")
    assert patient is not None
    own = patient.fhir_ref.split("/", 1)[1]
    with page_repository(_request(app), patient) as repo:
        assert repo.read("Patient", own).json()["id"] == own
        found = repo.search(parse_search("Patient", []))
        ids = {s.id for s in found.matches}
        assert own in ids
        others = {s.id for s in repo.search(parse_search("Encounter", [])).matches}
        assert others
        for eid in others:
            assert repo.read("Encounter", eid).json()["subject"]["reference"] in {
                f"Patient/{p}" for p in ids
            }
    stranger = next(s for s in ids_of_all_patients(engine) if s not in ids)
    with page_repository(_request(app), patient) as repo, pytest.raises(FhirError):
        repo.read("Patient", stranger)


def ids_of_all_patients(engine: Engine) -> set[str]:
    from medcard.access.context import AccessContext
    from medcard.fhir.store.repository import Repository

    repo = Repository(engine, AccessContext.system())
    try:
        return {s.id for s in repo.search(parse_search("Patient", [])).matches}
    finally:
        repo.close()
