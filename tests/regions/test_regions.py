"""Regions as configuration: a patient's region follows the attachment polyclinic, a
disabled feature disappears from that region's pages and is refused by its APIs, and
region admins change the configuration on an audited page."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from medcard.auth import accounts
from medcard.db.tables import audit_log
from medcard.demo.regions import seed_demo_regions
from medcard.regions.config import changes, get_region
from medcard.regions.features import ALL_FEATURES, Feature
from medcard.regions.gate import patient_region
from medcard.regions.lookup import region_of_patient
from tests.regions.world import FHIR, PASSWORD, World, csrf_of, person, set_features


def _reading(pid: str, value: int = 72) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
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
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": "2026-11-20T08:00:00+03:00",
        "valueQuantity": {
            "value": value,
            "unit": "/min",
            "system": "http://unitsofmeasure.org",
            "code": "/min",
        },
    }


def _family(pid: str) -> dict[str, Any]:
    return {
        "resourceType": "FamilyMemberHistory",
        "status": "partial",
        "patient": {"reference": f"Patient/{pid}"},
        "relationship": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "MTH"}
            ]
        },
    }


def test_region_follows_the_attachment_polyclinic(world: World, client: TestClient) -> None:
    assert region_of_patient(world.engine, world.p77) == "77"
    assert region_of_patient(world.engine, world.p78) == "78"
    # Re-attached to the 78 polyclinic: now region 78.
    patient = client.get(f"/fhir/Patient/{world.p77}").json()
    patient["managingOrganization"] = {"reference": "Organization/poly-78"}
    assert (
        client.put(
            f"/fhir/Patient/{world.p77}", json=patient, headers={"Content-Type": FHIR}
        ).status_code
        == 200
    )
    assert region_of_patient(world.engine, world.p77) == "78"
    assert region_of_patient(world.engine, "no-such-patient") is None


def test_same_page_two_regions_feature_present_and_absent(world: World) -> None:
    set_features(world.engine, "78", ALL_FEATURES - {Feature.DIARY})
    on = world.anna.http.get(f"/card/{world.p77}/diary")
    assert on.status_code == 200, on.text
    assert "Дневник самочувствия" in on.text
    assert 'action="/card/' in on.text  # the entry form is there
    off = world.boris.http.get(f"/card/{world.p78}/diary")
    assert off.status_code == 403
    assert "Раздел «Дневник самочувствия» отключён в вашем регионе (г. Санкт-Петербург)" in off.text
    assert 'name="systolic"' not in off.text
    # The family page of region 78 no longer links to the diary; region 77's does.
    assert (
        f'href="/card/{world.p78}/diary"'
        not in world.boris.http.get(f"/card/{world.p78}/family").text
    )
    assert (
        f'href="/card/{world.p77}/diary"' in world.anna.http.get(f"/card/{world.p77}/family").text
    )


def test_disabled_feature_is_refused_by_the_api_with_a_reason(
    world: World, token: Any, engine: Engine
) -> None:
    set_features(engine, "78", ALL_FEATURES - {Feature.DIARY, Feature.FAMILY_HISTORY})
    boris = world.bearer(token("patient/*.cruds", patient=world.p78, extra={"role": "patient"}))
    anna = world.bearer(token("patient/*.cruds", patient=world.p77, extra={"role": "patient"}))
    r = world.system.post("/fhir/Observation", json=_reading(world.p78), headers=boris)
    assert r.status_code == 403, r.text
    issue = r.json()["issue"][0]
    assert issue["code"] == "forbidden"
    assert "The well-being diary is turned off in region 78" in issue["diagnostics"]
    r = world.system.post("/fhir/FamilyMemberHistory", json=_family(world.p78), headers=boris)
    assert r.status_code == 403
    assert "Family history is turned off in region 78" in r.json()["issue"][0]["diagnostics"]
    # Region 77 keeps both.
    assert (
        world.system.post("/fhir/Observation", json=_reading(world.p77), headers=anna).status_code
        == 201
    )
    assert (
        world.system.post(
            "/fhir/FamilyMemberHistory", json=_family(world.p77), headers=anna
        ).status_code
        == 201
    )
    # The refusal is audited as a denial.
    with engine.connect() as conn:
        denied = conn.execute(
            select(audit_log).where(audit_log.c.outcome == "4", audit_log.c.patient_id == world.p78)
        ).all()
    assert any("turned off" in row.detail for row in denied)
    # A clinician's own record is not a region feature: system writes pass.
    assert world.system.post("/fhir/Observation", json=_reading(world.p78)).status_code == 201


def test_unconfigured_region_keeps_every_feature(world: World, client: TestClient) -> None:
    r = client.post(
        "/fhir/Patient",
        json={"resourceType": "Patient", "name": [{"family": "Без прикрепления"}]},
        headers={"Content-Type": FHIR},
    )
    pid = r.json()["id"]
    region = patient_region(world.engine, pid)
    assert region.code is None
    assert region.enabled(Feature.DIARY)


def _region_admin(world: World, region: str) -> Any:
    account = accounts.create_account(
        world.engine, f"ra{region}@example.ru", PASSWORD, "region_admin", region=region
    )
    return person(world.app, world.engine, account)


def test_region_admin_changes_own_region_audited(world: World) -> None:
    admin = _region_admin(world, "78")
    with admin.http:
        assert admin.http.get("/admin/regions").status_code == 200
        form = admin.http.get("/admin/regions/78")
        assert form.status_code == 200
        assert 'value="diary" checked' in form.text
        data = {
            "csrf_token": csrf_of(form.text),
            "name": "г. Санкт-Петербург",
            "time_zone": "Europe/Moscow",
            "feature": ["family-history", "sso", "registration", "extracts"],
            "sso_provider": "78",
            "document_request_days": "10",
            "organizations": "poly-78\norg-78-gp1",
        }
        r = admin.http.post("/admin/regions/78", data=data)
        assert r.status_code == 303, r.text
        config = get_region(world.engine, "78")
        assert config is not None
        assert not config.enabled(Feature.DIARY)
        assert config.enabled(Feature.FAMILY_HISTORY)
        assert config.settings.document_request_days == 10
        assert config.settings.organizations == ("poly-78", "org-78-gp1")
        log = changes(world.engine, "78")
        assert "diary" in log[0].before["settings"]["features"]
        assert "diary" not in log[0].after["settings"]["features"]
        page = admin.http.get("/admin/regions/78?notice=saved")
        assert "Настройки региона сохранены" in page.text
        # Someone else's region: refused; bad input: a readable page, nothing saved.
        assert admin.http.get("/admin/regions/77").status_code == 403
        bad = admin.http.post("/admin/regions/78", data={**data, "time_zone": "Mars/Olympus"})
        assert bad.status_code == 400
        assert "Неизвестный часовой пояс" in bad.text
    with world.engine.connect() as conn:
        rows = conn.execute(
            select(audit_log).where(audit_log.c.interaction == "region-change")
        ).all()
    assert any("region 78: disabled diary" in r.detail for r in rows)
    assert any(r.actor == admin.account.actor for r in rows)
    # The diary of region 78 is now gone from its pages.
    assert world.boris.http.get(f"/card/{world.p78}/diary").status_code == 403


def test_patients_and_doctors_cannot_administer_regions(world: World) -> None:
    assert world.anna.http.get("/admin/regions/77").status_code == 403
    assert (
        world.doctor.http.post(
            "/admin/regions/77", data={"csrf_token": world.doctor.csrf}
        ).status_code
        == 403
    )


def test_demo_seed_keeps_existing_configuration(engine: Engine) -> None:
    first = seed_demo_regions(engine)
    assert [r.code for r in first] == ["77", "78", "66"]
    assert "org-77-gp12" in first[0].settings.organizations
    set_features(engine, "77", {Feature.SSO})
    again = seed_demo_regions(engine)
    assert again[0].settings.features == frozenset({Feature.SSO})
