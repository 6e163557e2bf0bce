"""The examination form takes minors' health groups I–V (514н) and adults' I–IIIб (404н)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from medcard import attachment, entries
from medcard.entries import FormError
from medcard.fhir.store.repository import Repository
from medcard.signing import KeyStore

EXAM = {
    "exam_kind": "child-prof-exam",
    "date": "2025-04-01T09:00",
    "height": "140",
    "weight": "35",
    "findings": "Жалоб нет",
}


def _child(repo: Repository) -> str:
    person = attachment.parse_person(
        {
            "family": "Орлова",
            "given": "Мария",
            "middle": "Ильинична",
            "birth_date": "2015-06-02",
            "gender": "female",
            "snils": "112-233-445 95",
        }
    )
    return attachment.attach(repo, "org-77-gp12", person=person).patient_id


@pytest.mark.parametrize("group", ["I", "II", "III", "IV", "V"])
def test_514n_minor_is_given_any_health_group_i_to_v(
    demo: None, repo_of: Callable[[str], Repository], keys: KeyStore, group: str
) -> None:
    pid = _child(repo_of("registrar"))
    done = entries.submit(
        repo_of("doctor"), keys, "exam", pid, {**EXAM, "health_group": group}, uuid.uuid4().hex
    )
    values = [
        r.json()["valueCodeableConcept"]["coding"][0]["code"]
        for r in done.written
        if r.resource_type == "Observation" and "valueCodeableConcept" in r.json()
    ]
    assert values == [group]


@pytest.mark.parametrize("group", ["IIIa", "IIIb"])
def test_minor_is_not_given_an_adult_group(
    demo: None, repo_of: Callable[[str], Repository], keys: KeyStore, group: str
) -> None:
    pid = _child(repo_of("registrar"))
    with pytest.raises(FormError) as refused:
        entries.submit(
            repo_of("doctor"), keys, "exam", pid, {**EXAM, "health_group": group}, uuid.uuid4().hex
        )
    assert {p.field: p.key for p in refused.value.problems} == {
        "health_group": "ws_err_health_group_age"
    }


@pytest.mark.parametrize("group", ["IV", "V", "III"])
def test_404n_adult_is_not_given_a_minors_group(
    patient_id: str, repo_of: Callable[[str], Repository], keys: KeyStore, group: str
) -> None:
    form = {**EXAM, "exam_kind": "dispanserization", "stage": "1", "health_group": group}
    with pytest.raises(FormError) as refused:
        entries.submit(repo_of("doctor"), keys, "exam", patient_id, form, uuid.uuid4().hex)
    assert {p.field: p.key for p in refused.value.problems} == {
        "health_group": "ws_err_health_group_age"
    }
