"""The well-being diary: entry, plausibility, flags and targets, CSV import, apps."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from medcard import clock
from medcard.auth.oauth.clients import create_client
from medcard.fhir.search.params import parse
from medcard.monitoring.readings import READING_ID_SYSTEM
from tests.oauth.conftest import Browser, authorize, exchange
from tests.regions.world import FHIR, World


def _now_local(minutes_ago: int = 0) -> str:
    return (clock.now() - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _observations(world: World, pid: str) -> list[dict[str, Any]]:
    r = world.system.get("/fhir/Observation", params={"patient": pid, "_count": "100"})
    return [e["resource"] for e in r.json().get("entry", [])]


def _post(world: World, data: dict[str, str]) -> Any:
    return world.anna.http.post(
        f"/card/{world.p77}/diary", data={"csrf_token": world.anna.csrf, **data}
    )


def test_entry_stores_patient_reported_observations_with_loinc_and_ucum(world: World) -> None:
    r = _post(
        world,
        {
            "systolic": "128",
            "diastolic": "82",
            "pulse": "71",
            "glucose": "99",
            "glucose_unit": "mg/dL",
            "weight": "80",
            "height": "180",
            "temperature": "36,7",
            "spo2": "97",
            "steps": "8000",
            "sleep": "7.5",
            "wellbeing": "8",
            "note": "после прогулки",
            "when": _now_local(5),
        },
    )
    assert r.status_code == 303, r.text
    obs = _observations(world, world.p77)
    codes = {o["code"]["coding"][0]["code"]: o for o in obs}
    assert set(codes) >= {
        "85354-9",
        "8867-4",
        "15074-8",
        "29463-7",
        "8302-2",
        "39156-5",
        "8310-5",
        "59408-5",
        "55423-8",
        "93832-4",
        "wellbeing",
    }
    bp = codes["85354-9"]
    assert [c["code"]["coding"][0]["code"] for c in bp["component"]] == ["8480-6", "8462-4"]
    assert bp["component"][0]["valueQuantity"] == {
        "value": 128,
        "unit": "мм рт. ст.",
        "system": "http://unitsofmeasure.org",
        "code": "mm[Hg]",
    }
    assert codes["15074-8"]["valueQuantity"]["code"] == "mmol/L"
    assert abs(codes["15074-8"]["valueQuantity"]["value"] - 5.5) < 0.01  # 99 mg/dL
    assert codes["39156-5"]["valueQuantity"]["value"] == 24.7  # 80 / 1.8²
    assert codes["wellbeing"]["valueInteger"] == 8
    assert codes["wellbeing"]["note"] == [{"text": "после прогулки"}]
    for o in obs:
        assert {
            "system": "https://medcard.example/fhir/CodeSystem/entered-by",
            "code": "patient",
            "display": "Внесено пациентом",
        } in o["meta"]["tag"]
        assert o["identifier"][0]["system"] == READING_ID_SYSTEM
    # The same form sent twice (a double click) stores nothing new.
    page = world.anna.http.get(f"/card/{world.p77}/diary")
    assert page.status_code == 200
    assert "<svg" in page.text
    assert "Артериальное давление" in page.text


def test_double_submit_is_not_stored_twice(world: World) -> None:
    form = {"systolic": "120", "diastolic": "80", "when": _now_local(3)}
    assert _post(world, form).headers["location"].endswith("notice=saved")
    assert _post(world, form).headers["location"].endswith("notice=duplicate")
    assert len(_observations(world, world.p77)) == 1


def test_impossible_values_wrong_units_and_future_times_are_refused(world: World) -> None:
    r = _post(world, {"systolic": "20", "diastolic": "10", "when": _now_local()})
    assert r.status_code == 400
    assert "Значение 20 невозможно (допустимо 50–300 мм рт. ст.)" in r.text
    r = _post(world, {"temperature": "60", "when": _now_local()})
    assert r.status_code == 400
    assert "Значение 60 невозможно" in r.text
    future = (clock.now() + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    r = _post(world, {"pulse": "70", "when": future})
    assert r.status_code == 400
    assert "Время измерения в будущем" in r.text
    r = _post(world, {"systolic": "120", "when": _now_local()})
    assert r.status_code == 400
    assert "нужны оба значения" in r.text
    assert _observations(world, world.p77) == []


def test_fhir_api_refuses_implausible_readings_and_wrong_units(world: World, token: Any) -> None:
    headers = world.bearer(
        token("patient/Observation.c", patient=world.p77, extra={"role": "patient"})
    )

    def obs(code: str, value: float, unit: str, when: str = "2026-11-20T08:00:00+03:00") -> Any:
        body = {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "subject": {"reference": f"Patient/{world.p77}"},
            "effectiveDateTime": when,
            "valueQuantity": {
                "value": value,
                "unit": unit,
                "system": "http://unitsofmeasure.org",
                "code": unit,
            },
        }
        return world.system.post("/fhir/Observation", json=body, headers=headers)

    r = obs("8310-5", 60, "Cel")
    assert r.status_code == 422
    assert "not physiologically possible" in r.json()["issue"][0]["diagnostics"]
    r = obs("8310-5", 36.6, "kg")
    assert r.status_code == 422
    assert "unit 'kg' is not accepted" in r.text
    r = obs("8867-4", 70, "/min", when=(clock.now() + timedelta(days=1)).isoformat())
    assert r.status_code == 422
    assert "in the future" in r.text
    assert obs("8310-5", 98.6, "[degF]").status_code == 201  # Fahrenheit is a unit we accept
    # Someone else's diary: the gate refuses.
    other = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": f"Patient/{world.p78}"},
        "effectiveDateTime": "2026-11-20T08:00:00+03:00",
        "valueQuantity": {"value": 70, "unit": "/min"},
    }
    assert world.system.post("/fhir/Observation", json=other, headers=headers).status_code == 403


def test_physician_targets_flags_and_alert_list(world: World) -> None:
    doc = world.doctor
    page = doc.http.get(f"/card/{world.p77}/diary")
    assert page.status_code == 200
    assert 'name="systolic"' not in page.text
    r = doc.http.post(
        f"/card/{world.p77}/diary/targets",
        data={"csrf_token": doc.csrf, "metric": "systolic", "low": "100", "high": "130"},
    )
    assert r.status_code == 303, r.text
    goals = world.system.get("/fhir/Goal", params={"patient": world.p77}).json()["entry"]
    assert goals[0]["resource"]["target"][0]["detailRange"]["high"]["value"] == 130
    assert goals[0]["resource"]["expressedBy"] == {"reference": "Practitioner/doc-77"}
    bad = doc.http.post(
        f"/card/{world.p77}/diary/targets",
        data={"csrf_token": doc.csrf, "metric": "systolic", "low": "150", "high": "130"},
    )
    assert bad.status_code == 400
    # 175 is far above the personal 130 (+40 margin would be 170): flagged.
    _post(world, {"systolic": "175", "diastolic": "85", "when": _now_local(10)})
    _post(world, {"systolic": "125", "diastolic": "80", "when": _now_local(20)})
    mine = world.anna.http.get(f"/card/{world.p77}/diary")
    assert "Показания далеко от целевых значений" in mine.text
    assert "175/85" in mine.text
    assert "назначена врачом" in mine.text
    assert 'data-flag="far"' in mine.text
    alerts = doc.http.get("/diary/alerts")
    assert alerts.status_code == 200
    assert "Иванова" in alerts.text
    assert "175/85" in alerts.text
    assert "125/80" not in alerts.text
    # Patients do not set targets or see the physicians' list.
    assert (
        world.anna.http.post(
            f"/card/{world.p77}/diary/targets",
            data={"csrf_token": world.anna.csrf, "metric": "systolic", "low": "1", "high": "300"},
        ).status_code
        == 403
    )
    assert world.anna.http.get("/diary/alerts").status_code == 403


CSV = """Date;Time;Systolic (mmHg);Diastolic (mmHg);Pulse (bpm);Device
20.11.2026;08:00;135;85;72;Omron M3
20.11.2026;20:00;20;10;70;Omron M3
21.11.2026;08:05;128;;70;Omron M3
2099-01-01;08:00;120;80;60;Omron M3
22.11.2026;08:00;abc;80;60;Omron M3
23.11.2026;08:10;122;79;66;Omron M3
"""


def _upload(world: World, data: bytes, name: str = "omron.csv") -> Any:
    return world.anna.http.post(
        f"/card/{world.p77}/diary/import",
        data={"csrf_token": world.anna.csrf, "device": ""},
        files={"file": (name, data, "text/csv")},
    )


def test_csv_import_saves_valid_rows_and_reports_bad_ones(world: World) -> None:
    r = _upload(world, CSV.encode())
    assert r.status_code == 200, r.text
    assert "Сохранено показаний: 4; уже были: 0; отклонено строк: 4." in r.text
    assert "Значение 20 невозможно" in r.text  # line 3
    assert "нужны оба значения" in r.text  # line 4
    assert "Время измерения в будущем" in r.text  # line 5
    assert "не является числом" in r.text  # line 6
    obs = _observations(world, world.p77)
    assert len(obs) == 4  # two rows x (BP panel + pulse)
    assert {o["extension"][0]["valueString"] for o in obs} == {"Omron M3"}
    # The same export uploaded again (a retry): nothing is stored twice.
    again = _upload(world, CSV.encode())
    assert "Сохранено показаний: 0; уже были: 2; отклонено строк: 4." in again.text
    assert len(_observations(world, world.p77)) == 4


def test_csv_in_the_wrong_format_is_refused_as_a_whole(world: World) -> None:
    r = _upload(world, b"name,amount\nmilk,2\n")
    assert r.status_code == 400
    assert "нет столбца с датой" in r.text
    r = _upload(world, b"date,colour\n2026-11-20,red\n")
    assert r.status_code == 400
    assert "нет столбцов с показаниями" in r.text
    r = _upload(world, b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe")
    assert r.status_code == 400
    assert _observations(world, world.p77) == []


def test_app_uploads_over_fhir_with_a_real_oauth_flow(world: World, app: Any) -> None:
    diary, _ = create_client(
        world.engine,
        "Дневник давления",
        public=True,
        redirect_uris=["https://diary.example/callback"],
        scope="launch/patient offline_access patient/Observation.c patient/Observation.rs",
    )
    browser = Browser(world.anna.http, world.anna.csrf, world.anna.account)
    api = TestClient(app, base_url="http://testserver", follow_redirects=False)
    auth = authorize(browser, diary.client_id, scope="launch/patient patient/Observation.c")
    tok = exchange(api, diary.client_id, auth)
    assert tok.status_code == 200, tok.text
    assert tok.json()["scope"] == "patient/Observation.c launch/patient"
    headers = world.bearer(tok.json()["access_token"])
    reading = {
        "resourceType": "Observation",
        "identifier": [
            {"system": "https://diary.example/readings", "value": "dev1-2026-11-25T07:00"}
        ],
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
        "subject": {"reference": f"Patient/{world.p77}"},
        "effectiveDateTime": "2026-11-25T07:00:00+03:00",
        "component": [
            {
                "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                "valueQuantity": {
                    "value": 131,
                    "unit": "mmHg",
                    "system": "http://unitsofmeasure.org",
                    "code": "mm[Hg]",
                },
            },
            {
                "code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
                "valueQuantity": {
                    "value": 84,
                    "unit": "mmHg",
                    "system": "http://unitsofmeasure.org",
                    "code": "mm[Hg]",
                },
            },
        ],
    }
    first = api.post("/fhir/Observation", json=reading, headers=headers)
    assert first.status_code == 201, first.text
    # The app retried (its token may create, not search): refused as a duplicate.
    retry = api.post("/fhir/Observation", json=reading, headers=headers)
    assert retry.status_code == 409, retry.text
    assert first.json()["id"] in retry.json()["issue"][0]["diagnostics"]
    # An app that may also search uses conditional create and gets the stored reading.
    auth_cs = authorize(
        browser, diary.client_id, scope="launch/patient patient/Observation.cs", state="s1"
    )
    cs = world.bearer(exchange(api, diary.client_id, auth_cs).json()["access_token"])
    cond = {
        **cs,
        "If-None-Exist": "identifier=https://diary.example/readings|dev1-2026-11-25T07:00",
    }
    again = api.post("/fhir/Observation", json=reading, headers=cond)
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"]
    stored = _observations(world, world.p77)
    assert len(stored) == 1
    assert stored[0]["meta"]["tag"][0]["code"] == "patient"
    # An impossible reading from the app is refused with the reason.
    bad = {
        **reading,
        "identifier": [],
        "component": [
            reading["component"][0] | {"valueQuantity": {"value": 20, "unit": "mm[Hg]"}},
            reading["component"][1],
        ],
    }
    r = api.post("/fhir/Observation", json=bad, headers=headers)
    assert r.status_code == 422
    assert "Systolic blood pressure 20" in r.text
    # A token without the scope cannot write at all.
    auth2 = authorize(
        browser, diary.client_id, scope="launch/patient patient/Observation.rs", state="s2"
    )
    read_only = exchange(api, diary.client_id, auth2).json()["access_token"]
    r = api.post("/fhir/Observation", json=reading, headers=world.bearer(read_only))
    assert r.status_code == 403
    assert "scope" in r.json()["issue"][0]["diagnostics"]
    api.close()


def test_readings_query_helper_uses_the_diary_codes(world: World) -> None:
    # A clinician-entered pulse shows in the diary, unlabelled as patient-entered.
    body = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": f"Patient/{world.p77}"},
        "effectiveDateTime": (clock.now() - timedelta(hours=1)).isoformat(),
        "valueQuantity": {"value": 64, "unit": "/min"},
    }
    assert (
        world.system.post(
            "/fhir/Observation", json=body, headers={"Content-Type": FHIR}
        ).status_code
        == 201
    )
    assert parse("Observation", [("patient", world.p77)]).resource_type == "Observation"
    page = world.anna.http.get(f"/card/{world.p77}/diary?period=day")
    assert page.status_code == 200
    assert "Пульс: 64 уд/мин" in page.text
