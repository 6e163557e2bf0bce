"""Family history: the patient records relatives with ICD-10 conditions; clinicians see
the entries labelled as patient-entered and confirm them into their own record."""

from __future__ import annotations

from typing import Any

from medcard.family_history import icd10
from tests.regions.world import World


def _add(world: World, **data: str) -> Any:
    return world.anna.http.post(
        f"/card/{world.p77}/family", data={"csrf_token": world.anna.csrf, **data}
    )


def _fmh(world: World) -> list[dict[str, Any]]:
    r = world.system.get("/fhir/FamilyMemberHistory", params={"patient": world.p77})
    return [e["resource"] for e in r.json().get("entry", [])]


def test_icd10_type_ahead_finds_codes_and_russian_names(world: World) -> None:
    assert icd10.search("I10")[0] == ("I10", "Эссенциальная [первичная] гипертензия")
    assert ("E11", "Сахарный диабет 2 типа") in icd10.search("диабет")
    assert icd10.title("i211") is not None
    assert icd10.title("Z99.99") is None
    r = world.anna.http.get(f"/card/{world.p77}/family/icd10", params={"q": "инфаркт"})
    assert r.status_code == 200
    assert {"code": "I21", "title": "Острый инфаркт миокарда"} in r.json()


def test_patient_records_a_deceased_father_with_coded_conditions(world: World) -> None:
    r = _add(
        world,
        relationship="FTH",
        living="deceased",
        death_age="61",
        code_1="I21 Острый инфаркт миокарда",
        onset_1="58",
        cause="1",
        code_2="E11",
        onset_2="45",
    )
    assert r.status_code == 303, r.text
    (fmh,) = _fmh(world)
    assert fmh["relationship"]["coding"][0]["code"] == "FTH"
    assert fmh["sex"]["coding"][0]["code"] == "male"
    assert fmh["deceasedAge"]["value"] == 61
    first, second = fmh["condition"]
    assert first["code"]["coding"][0] == {
        "system": "http://hl7.org/fhir/sid/icd-10",
        "code": "I21",
        "display": "Острый инфаркт миокарда",
    }
    assert first["onsetAge"] == {
        "value": 58,
        "unit": "лет",
        "system": "http://unitsofmeasure.org",
        "code": "a",
    }
    assert first["contributedToDeath"] is True
    assert "contributedToDeath" not in second
    assert fmh["meta"]["tag"][0]["code"] == "patient"
    page = world.anna.http.get(f"/card/{world.p77}/family")
    assert "Отец" in page.text
    assert "Внесено пациентом" in page.text
    assert "причина смерти" in page.text


def test_bad_input_is_explained_and_nothing_stored(world: World) -> None:
    r = _add(world, relationship="MTH", code_1="гипертензия")
    assert r.status_code == 400
    assert "не найден" in r.text
    assert "Возможно, вы имели в виду" in r.text
    assert "I10" in r.text
    r = _add(world, relationship="MTH", code_1="I10", onset_1="300")
    assert r.status_code == 400
    assert "от 0 до 120" in r.text
    r = _add(world, relationship="MTH", living="living", code_1="I10", cause="1")
    assert r.status_code == 400
    assert "только для умерших" in r.text
    r = _add(world, relationship="COUSIN")
    assert r.status_code == 400
    assert _fmh(world) == []


def test_clinician_sees_patient_entries_and_confirms_one(world: World) -> None:
    _add(world, relationship="MTH", code_1="C50", onset_1="52")
    (original,) = _fmh(world)
    doc = world.doctor
    page = doc.http.get(f"/card/{world.p77}/family")
    assert page.status_code == 200
    assert "Внесено пациентом" in page.text
    assert "Подтвердить в карту" in page.text
    r = doc.http.post(
        f"/card/{world.p77}/family/{original['id']}/confirm", data={"csrf_token": doc.csrf}
    )
    assert r.status_code == 303, r.text
    entries = {e["id"]: e for e in _fmh(world)}
    assert len(entries) == 2
    copy = next(e for i, e in entries.items() if i != original["id"])
    assert "tag" not in copy.get("meta", {})  # the clinician's own entry
    assert copy["extension"][0]["valueReference"] == {
        "reference": f"FamilyMemberHistory/{original['id']}"
    }
    assert copy["condition"] == original["condition"]
    # Confirming twice makes no second copy; the page shows the entry as confirmed.
    doc.http.post(
        f"/card/{world.p77}/family/{original['id']}/confirm", data={"csrf_token": doc.csrf}
    )
    assert len(_fmh(world)) == 2
    page = world.anna.http.get(f"/card/{world.p77}/family")
    assert "Подтверждено врачом" in page.text
    assert "Запись врача" in page.text
    # The patient cannot delete the clinician's entry, only their own.
    r = world.anna.http.post(
        f"/card/{world.p77}/family/{copy['id']}/delete", data={"csrf_token": world.anna.csrf}
    )
    assert r.status_code == 403
    r = world.anna.http.post(
        f"/card/{world.p77}/family/{original['id']}/delete", data={"csrf_token": world.anna.csrf}
    )
    assert r.status_code == 303
    assert [e["id"] for e in _fmh(world)] == [copy["id"]]


def test_another_patients_family_history_is_not_found(world: World) -> None:
    assert world.boris.http.get(f"/card/{world.p77}/family").status_code == 404
    r = world.boris.http.post(
        f"/card/{world.p77}/family",
        data={"csrf_token": world.boris.csrf, "relationship": "MTH"},
    )
    assert r.status_code == 404
    assert _fmh(world) == []
