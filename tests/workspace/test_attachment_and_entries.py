"""Attachment (find or create, duplicates, move, detach) and entry forms' bad input."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

import pytest
from sqlalchemy import Engine, func, select

from medcard import attachment, entries
from medcard.db.tables import resources
from medcard.entries import FormError
from medcard.entries.forms import TZ
from medcard.fhir.store.repository import Repository
from medcard.signing import KeyStore

PERSON = {
    "family": "Орлов",
    "given": "Илья",
    "middle": "Сергеевич",
    "birth_date": "1979-11-02",
    "gender": "male",
    "snils": "112-233-445 95",
}


def _keys(exc: pytest.ExceptionInfo[FormError]) -> dict[str, str]:
    return {p.field: p.key for p in exc.value.problems}


def test_invalid_identifiers_and_dates_are_refused() -> None:
    with pytest.raises(FormError) as bad:
        attachment.parse_person(
            {**PERSON, "snils": "112-233-445 00", "enp": "123", "birth_date": "2999-01-01"}
        )
    assert _keys(bad) == {
        "snils": "ws_err_snils",
        "enp": "ws_err_enp",
        "birth_date": "ws_err_future_date",
    }
    with pytest.raises(FormError) as none:
        attachment.parse_person({**PERSON, "snils": ""})
    assert _keys(none) == {"snils": "ws_err_need_identifier"}


def test_attach_find_duplicates_move_detach(
    demo: None, repo_of: Callable[[str], Repository]
) -> None:
    repo = repo_of("registrar")
    person = attachment.parse_person(PERSON)
    first = attachment.attach(repo, "org-77-gp12", person=person)
    assert first.created
    # the same SNILS finds the same card: attaching again here is refused
    with pytest.raises(FormError) as again:
        attachment.attach(repo, "org-77-gp12", person=person)
    assert _keys(again) == {"organization": "ws_err_already_attached"}
    # same name and birth date with other documents: a possible duplicate, confirmed explicitly
    twin = attachment.parse_person({**PERSON, "snils": "", "passport": "4510 123456"})
    with pytest.raises(FormError) as dup:
        attachment.attach(repo, "org-77-gp12", person=twin)
    assert _keys(dup) == {"confirm_new": "ws_err_possible_duplicate"}
    second = attachment.attach(repo, "org-77-gp12", person=twin, confirm_new=True)
    assert second.created
    assert second.patient_id != first.patient_id
    # SNILS of one card and passport of the other: refused
    both = attachment.parse_person({**PERSON, "passport": "4510 123456"})
    with pytest.raises(FormError) as conflict:
        attachment.attach(repo, "org-77-gp12", person=both)
    assert _keys(conflict) == {"snils": "ws_err_identifiers_conflict"}
    # move to another polyclinic, then detach
    other = next(o for o, _ in entries.organizations(repo, "polyclinic") if o != "org-77-gp12")
    moved = attachment.attach(repo, other, patient_id=first.patient_id)
    assert moved.moved_from == "Organization/org-77-gp12"
    attachment.detach(repo, first.patient_id, "Смена места жительства")
    history = attachment.history(repo, first.patient_id)
    assert [a.status for a in history] == ["finished", "finished"]
    assert history[0].end_reason == "Смена места жительства"
    assert repo.read("Patient", first.patient_id).json().get("managingOrganization") is None
    with pytest.raises(FormError):
        attachment.attach(repo, "org-77-ckdl", patient_id=first.patient_id)  # a lab


def _count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(resources)).scalar_one())


GOOD = {
    "visit": {
        "date": "2025-02-03T10:00",
        "visit_kind": "visit",
        "complaints": "Кашель",
        "examination": "Зев гиперемирован",
        "diagnosis": "J06.9",
    },
    "diagnosis": {"code": "I10", "clinical_status": "active", "onset": "2020-01-01"},
    "allergy": {
        "substance": "Пенициллины",
        "category": "medication",
        "criticality": "high",
        "reaction": "Крапивница",
    },
    "prescription": {
        "medication": "C09AA02",
        "dose": "По 1 таблетке 2 раза в день",
        "frequency": "2",
        "quantity": "60",
        "reason": "I10",
    },
    "imaging": {
        "service": "A06.09.005",
        "modality": "CT",
        "body_site": "органы грудной полости",
        "date": "2025-03-01T09:00",
        "findings": "Без очагов",
        "conclusion": "Норма",
    },
    "vaccination": {
        "vaccine": "flu",
        "date": "2025-10-01T10:00",
        "lot": "А123-45",
        "dose_number": "1",
    },
    "exam": {
        "exam_kind": "dispanserization",
        "stage": "1",
        "date": "2025-04-01T09:00",
        "sbp": "120",
        "dbp": "80",
        "height": "180",
        "weight": "80",
        "health_group": "II",
        "findings": "Факторы риска: гиподинамия",
    },
    "referral": {
        "referral_kind": "consultation",
        "service": "B01.015.001",
        "performer": "org-77-gp12",
        "priority": "routine",
        "reason": "I10",
    },
    "certificate": {
        "document_type": "pool",
        "issued": "2025-05-01",
        "conclusion": "Противопоказаний нет",
    },
    "lab_order": {"panel": "cbc", "performer": "org-77-ckdl", "priority": "routine"},
}


def test_every_entry_type_is_written_and_signed(
    patient_id: str, repo_of: Callable[[str], Repository], keys: KeyStore
) -> None:
    repo = repo_of("doctor")
    for kind, form in GOOD.items():
        done = entries.submit(repo, keys, kind, patient_id, form, uuid.uuid4().hex)
        assert done.provenance is not None, kind
        targets = {
            t["reference"].rsplit("/_history/", 1)[0] for t in done.provenance.json()["target"]
        }
        assert {f"{s.resource_type}/{s.id}" for s in done.written} <= targets
    order = entries.open_orders(repo, patient_id, "108252007")[0]
    done = entries.submit(
        repo,
        keys,
        "lab_result",
        patient_id,
        {
            "order": order["id"],
            "panel": "cbc",
            "collected": dt.datetime.now(TZ).strftime("%Y-%m-%dT%H:%M"),
            "value_hgb": "118",
            "unit_hgb": "г/л",
            "value_wbc": "5,2",
        },
        uuid.uuid4().hex,
    )
    report, *observations = done.written
    assert [o.json()["interpretation"][0]["coding"][0]["code"] for o in observations] == ["L", "N"]
    assert report.json()["basedOn"] == [{"reference": f"ServiceRequest/{order['id']}"}]


@pytest.mark.parametrize(
    ("kind", "change", "field", "key"),
    [
        ("visit", {"date": "2099-01-01T10:00"}, "date", "ws_err_future_date"),
        ("visit", {"diagnosis": "Z99.99"}, "diagnosis", "ws_err_icd_unknown"),
        ("visit", {"diagnosis": "J06"}, "diagnosis", "ws_err_icd_not_leaf"),
        ("visit", {"date": "1900-01-01T10:00"}, "date", "ws_err_before_birth"),
        ("prescription", {"medication": "аспирин-форте"}, "medication", "ws_err_code_unknown"),
        ("imaging", {"modality": "MR"}, "modality", "ws_err_modality"),
        ("vaccination", {"next_due": "2025-09-01"}, "next_due", "ws_err_due_before_given"),
        ("exam", {"dbp": "130"}, "dbp", "ws_err_bp_order"),
        ("certificate", {"valid_to": "2026-05-01"}, "valid_to", "ws_err_valid_too_long"),
        ("referral", {"performer": "org-77-ckdl"}, "performer", "ws_err_unknown_org"),
    ],
)
def test_bad_input_is_refused_with_what_to_fix_and_nothing_saved(
    patient_id: str,
    repo_of: Callable[[str], Repository],
    keys: KeyStore,
    engine: Engine,
    kind: str,
    change: dict[str, str],
    field: str,
    key: str,
) -> None:
    before = _count(engine)
    with pytest.raises(FormError) as refused:
        entries.submit(
            repo_of("doctor"), keys, kind, patient_id, {**GOOD[kind], **change}, uuid.uuid4().hex
        )
    assert _keys(refused).get(field) == key
    assert _count(engine) == before


def test_lab_results_check_units_and_the_order_date(
    patient_id: str, repo_of: Callable[[str], Repository], keys: KeyStore, engine: Engine
) -> None:
    repo = repo_of("doctor")
    entries.submit(repo, keys, "lab_order", patient_id, GOOD["lab_order"], uuid.uuid4().hex)
    order = entries.open_orders(repo, patient_id, "108252007")[0]
    before = _count(engine)
    with pytest.raises(FormError) as refused:
        entries.submit(
            repo,
            keys,
            "lab_result",
            patient_id,
            {
                "order": order["id"],
                "panel": "cbc",
                "collected": "2020-01-01T09:00",
                "value_hgb": "130",
                "unit_hgb": "ммоль/л",
            },
            uuid.uuid4().hex,
        )
    assert _keys(refused) == {"collected": "ws_err_result_before_order", "unit_hgb": "ws_err_unit"}
    assert _count(engine) == before


def test_double_submission_writes_once(
    patient_id: str, repo_of: Callable[[str], Repository], keys: KeyStore, engine: Engine
) -> None:
    repo = repo_of("doctor")
    key = uuid.uuid4().hex
    first = entries.submit(repo, keys, "allergy", patient_id, GOOD["allergy"], key)
    after_first = _count(engine)
    second = entries.submit(repo, keys, "allergy", patient_id, GOOD["allergy"], key)
    assert second.duplicate
    assert second.main.id == first.main.id
    assert _count(engine) == after_first
