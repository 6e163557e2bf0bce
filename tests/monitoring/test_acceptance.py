"""A doctor accepts a patient's diary reading into the record («Принять в карту»)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from medcard import clock
from medcard.access.policy import entered_by_patient
from medcard.db.tables import audit_log
from tests.regions.world import World


def _when(minutes_ago: int) -> str:
    return (clock.now() - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _resources(world: World, rtype: str) -> list[dict[str, Any]]:
    params = {"patient": world.p77, "_count": "100"}
    r = world.system.get(f"/fhir/{rtype}", params=params)
    return [e["resource"] for e in r.json().get("entry", [])]


def _readings(world: World) -> list[dict[str, Any]]:
    world.anna.http.post(
        f"/card/{world.p77}/diary",
        data={"csrf_token": world.anna.csrf, "pulse": "72", "when": _when(30)},
    )
    world.anna.http.post(
        f"/card/{world.p77}/diary",
        data={
            "csrf_token": world.anna.csrf,
            "systolic": "150",
            "diastolic": "95",
            "when": _when(20),
        },
    )
    obs = _resources(world, "Observation")
    assert len(obs) == 2
    assert all(entered_by_patient(o) for o in obs)
    return obs


def _accept(world: World, reading_id: str) -> Any:
    return world.doctor.http.post(
        f"/card/{world.p77}/diary/{reading_id}/accept", data={"csrf_token": world.doctor.csrf}
    )


def test_doctor_accepts_a_reading_as_own_observation_with_provenance(world: World) -> None:
    readings = _readings(world)
    bp = next(o for o in readings if "component" in o)
    pulse = next(o for o in readings if "component" not in o)
    page = world.doctor.http.get(f"/card/{world.p77}/diary")
    assert page.status_code == 200
    assert page.text.count("Принять в карту") == 2
    assert "Внесено пациентом" in page.text

    r = _accept(world, bp["id"])
    assert r.status_code == 303, r.text
    obs = {o["id"]: o for o in _resources(world, "Observation")}
    assert len(obs) == 3
    copy = next(o for i, o in obs.items() if i not in (bp["id"], pulse["id"]))
    assert not entered_by_patient(copy)
    assert copy["performer"][0]["reference"] == "Practitioner/doc-77"
    assert copy["derivedFrom"] == [{"reference": f"Observation/{bp['id']}"}]
    assert copy["component"] == bp["component"]
    assert copy["effectiveDateTime"] == bp["effectiveDateTime"]
    assert "identifier" not in copy
    # the patient's reading is left as it was, still patient-entered
    assert obs[bp["id"]] == bp
    assert entered_by_patient(obs[pulse["id"]])

    (prov,) = _resources(world, "Provenance")
    assert {"reference": f"Observation/{copy['id']}"} in prov["target"]
    assert prov["entity"] == [{"role": "source", "what": {"reference": f"Observation/{bp['id']}"}}]
    assert prov["agent"][0]["who"]["reference"] == "Practitioner/doc-77"
    assert prov["activity"]["coding"][0]["code"] == "CREATE"

    # both writes are one audited act of the doctor's (one transaction)
    with world.engine.connect() as conn:
        rows = conn.execute(
            select(audit_log.c.actor, audit_log.c.detail, audit_log.c.patient_id).where(
                audit_log.c.interaction == "create",
                audit_log.c.detail.contains(f"Provenance/{prov['id']}"),
            )
        ).all()
    ((actor, detail, patient),) = rows
    assert actor == "Practitioner/doc-77"
    assert patient == world.p77
    assert f"Observation/{copy['id']}" in detail

    # accepting again makes nothing new; the button is gone for this reading only
    assert _accept(world, bp["id"]).status_code == 303
    assert len(_resources(world, "Observation")) == 3
    assert len(_resources(world, "Provenance")) == 1
    page = world.doctor.http.get(f"/card/{world.p77}/diary")
    assert page.text.count("Принять в карту") == 1

    # the patient sees the reading as accepted; the other stays only patient-entered
    page = world.anna.http.get(f"/card/{world.p77}/diary")
    assert page.status_code == 200
    assert page.text.count("Принято врачом") == 1
    assert "Принять в карту" not in page.text
    row = page.text.split(f'id="reading-{bp["id"]}"', 1)[1].split("</tr>", 1)[0]
    assert "Принято врачом" in row
    row = page.text.split(f'id="reading-{pulse["id"]}"', 1)[1].split("</tr>", 1)[0]
    assert "Внесено пациентом" in row
    assert "Принято врачом" not in row
    assert f'id="reading-{copy["id"]}"' not in page.text  # charted and listed once


def test_only_a_doctor_accepts_and_only_patient_readings(world: World) -> None:
    readings = _readings(world)
    r = world.anna.http.post(
        f"/card/{world.p77}/diary/{readings[0]['id']}/accept", data={"csrf_token": world.anna.csrf}
    )
    assert r.status_code == 403
    _accept(world, readings[0]["id"])
    copy = next(o for o in _resources(world, "Observation") if not entered_by_patient(o))
    # a clinician's own Observation is not a diary reading to accept
    r = _accept(world, copy["id"])
    assert r.status_code == 400
    assert "только показание дневника, внесённое этим пациентом" in r.text
    assert len(_resources(world, "Observation")) == 3
    # another patient cannot accept anything
    r = world.boris.http.post(
        f"/card/{world.p77}/diary/{readings[0]['id']}/accept", data={"csrf_token": world.boris.csrf}
    )
    assert r.status_code == 403
    assert _accept(world, "no-such-reading").status_code == 404
