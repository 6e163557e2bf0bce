"""The synthetic population: deterministic, valid FHIR, coherent references, no future."""

from __future__ import annotations

import base64
import datetime as dt
import re
import statistics
from collections.abc import Iterator
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from medcard import identifiers as ids
from medcard.demo import catalogs as cat
from medcard.demo.population import (
    DEFAULT_TODAY,
    patient_bundle,
    patient_bundle_with_resources,
    patient_bundles,
    reference_bundle,
)
from medcard.terminology.nsi import mkb10

Resource = dict[str, Any]

SAMPLE_SIZE = 40

# Required bindings of the FHIR R4 elements the generator fills, by path
# (list indices dropped).  fhir.resources does not check these.
HUMAN_NAME_USE = {"usual", "official", "temp", "nickname", "anonymous", "old", "maiden"}
ANYWHERE: dict[tuple[str, ...], set[str]] = {
    ("identifier", "use"): {"usual", "official", "temp", "secondary", "old"},
    ("name", "use"): HUMAN_NAME_USE,
    ("telecom", "system"): {"phone", "fax", "email", "pager", "url", "sms", "other"},
    ("telecom", "use"): {"home", "work", "temp", "old", "mobile"},
    ("address", "use"): {"home", "work", "temp", "old", "billing"},
    ("address", "type"): {"postal", "physical", "both"},
    ("repeat", "periodUnit"): {"s", "min", "h", "d", "wk", "mo", "a"},
}
EXACT: dict[str, set[str]] = {
    "Bundle.type": {"transaction"},
    "Bundle.entry.request.method": {"POST", "PUT"},
    "Patient.gender": {"male", "female", "other", "unknown"},
    "Practitioner.gender": {"male", "female", "other", "unknown"},
    "Encounter.status": {
        "planned",
        "arrived",
        "triaged",
        "in-progress",
        "onleave",
        "finished",
        "cancelled",
        "entered-in-error",
        "unknown",
    },
    "Condition.clinicalStatus.coding.code": {
        "active",
        "recurrence",
        "relapse",
        "inactive",
        "remission",
        "resolved",
    },
    "Condition.verificationStatus.coding.code": {
        "unconfirmed",
        "provisional",
        "differential",
        "confirmed",
        "refuted",
        "entered-in-error",
    },
    "AllergyIntolerance.clinicalStatus.coding.code": {"active", "inactive", "resolved"},
    "AllergyIntolerance.verificationStatus.coding.code": {
        "unconfirmed",
        "confirmed",
        "refuted",
        "entered-in-error",
    },
    "AllergyIntolerance.type": {"allergy", "intolerance"},
    "AllergyIntolerance.category": {"food", "medication", "environment", "biologic"},
    "AllergyIntolerance.criticality": {"low", "high", "unable-to-assess"},
    "AllergyIntolerance.reaction.severity": {"mild", "moderate", "severe"},
    "Observation.status": {
        "registered",
        "preliminary",
        "final",
        "amended",
        "corrected",
        "cancelled",
        "entered-in-error",
        "unknown",
    },
    "DiagnosticReport.status": {
        "registered",
        "partial",
        "preliminary",
        "final",
        "amended",
        "corrected",
        "appended",
        "cancelled",
        "entered-in-error",
        "unknown",
    },
    "ImagingStudy.status": {"registered", "available", "cancelled", "entered-in-error", "unknown"},
    "Immunization.status": {"completed", "entered-in-error", "not-done"},
    "MedicationRequest.status": {
        "active",
        "on-hold",
        "cancelled",
        "completed",
        "entered-in-error",
        "stopped",
        "draft",
        "unknown",
    },
    "MedicationRequest.intent": {
        "proposal",
        "plan",
        "order",
        "original-order",
        "reflex-order",
        "filler-order",
        "instance-order",
        "option",
    },
    "ServiceRequest.status": {
        "draft",
        "active",
        "on-hold",
        "revoked",
        "completed",
        "entered-in-error",
        "unknown",
    },
    "ServiceRequest.intent": {
        "proposal",
        "plan",
        "directive",
        "order",
        "original-order",
        "reflex-order",
        "filler-order",
        "instance-order",
        "option",
    },
    "ServiceRequest.priority": {"routine", "urgent", "asap", "stat"},
    "DocumentReference.status": {"current", "superseded", "entered-in-error"},
    "DocumentReference.docStatus": {"preliminary", "final", "amended", "entered-in-error"},
    "Coverage.status": {"active", "cancelled", "draft", "entered-in-error"},
    "Location.status": {"active", "suspended", "inactive"},
    "Location.mode": {"instance", "kind"},
    "CodeSystem.status": {"draft", "active", "retired", "unknown"},
    "CodeSystem.content": {"not-present", "example", "fragment", "complete", "supplement"},
}
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2}))?$")
VALIDITY_ENDS = ("dispenseRequest.validityPeriod.end", "context.period.end")


def _walk(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, (*path, key))
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item, path)
    else:
        yield path, node


def _references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("reference"), str):
            yield node["reference"]
        for value in node.values():
            yield from _references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _references(item)


def _resources(bundle: Resource) -> list[Resource]:
    return [entry["resource"] for entry in bundle["entry"]]


@pytest.fixture(scope="module")
def reference() -> Resource:
    return reference_bundle(seed=1)


@pytest.fixture(scope="module")
def reference_ids(reference: Resource) -> set[str]:
    return {f"{r['resourceType']}/{r['id']}" for r in _resources(reference)}


@pytest.fixture(scope="module")
def sample() -> list[Resource]:
    return list(patient_bundles(SAMPLE_SIZE, seed=1))


@pytest.fixture(scope="module")
def big() -> Resource:
    return patient_bundle_with_resources(1000, seed=1)


# --- determinism --------------------------------------------------------------------


def test_same_seed_gives_the_same_population() -> None:
    assert reference_bundle(seed=5) == reference_bundle(seed=5)
    assert list(patient_bundles(4, seed=5)) == list(patient_bundles(4, seed=5))
    assert patient_bundle_with_resources(200, seed=5) == patient_bundle_with_resources(200, seed=5)


def test_other_seed_gives_other_people_but_the_same_reference_ids() -> None:
    one, two = reference_bundle(seed=1), reference_bundle(seed=2)
    assert one != two
    assert [r.get("id") for r in _resources(one)] == [r.get("id") for r in _resources(two)]
    assert list(patient_bundles(2, seed=1)) != list(patient_bundles(2, seed=2))


def test_patient_does_not_depend_on_where_the_chunk_starts(sample: list[Resource]) -> None:
    assert list(patient_bundles(3, seed=1, start_index=5)) == sample[5:8]
    assert patient_bundle(7, seed=1) == sample[7]


# --- FHIR validity --------------------------------------------------------------------


def _validate(bundle: Resource) -> None:
    get_fhir_model_class("Bundle").model_validate(bundle)
    for resource in _resources(bundle):
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)


def test_reference_bundle_validates_with_r4b_models(reference: Resource) -> None:
    _validate(reference)


def test_patient_bundles_validate_with_r4b_models(sample: list[Resource]) -> None:
    for bundle in sample:
        _validate(bundle)


def test_large_patient_validates_with_r4b_models(big: Resource) -> None:
    _validate(big)


def _binding_violations(bundle: Resource) -> list[str]:
    problems = (
        [f"Bundle.type={bundle['type']}"] if bundle["type"] not in EXACT["Bundle.type"] else []
    )
    for entry in bundle["entry"]:
        if entry["request"]["method"] not in EXACT["Bundle.entry.request.method"]:
            problems.append(f"Bundle.entry.request.method={entry['request']['method']}")
        resource = entry["resource"]
        for path, value in _walk(resource):
            key = ".".join((resource["resourceType"], *path))
            if key in EXACT and value not in EXACT[key]:
                problems.append(f"{key}={value}")
            for suffix, allowed in ANYWHERE.items():
                if path[-len(suffix) :] == suffix and value not in allowed:
                    problems.append(f"{key}={value}")
    return problems


def test_codes_with_required_bindings_are_valid(
    reference: Resource, sample: list[Resource], big: Resource
) -> None:
    for bundle in (reference, *sample, big):
        assert _binding_violations(bundle) == []


def test_status_and_class_codes_are_used_as_expected(sample: list[Resource]) -> None:
    classes = set()
    for bundle in sample:
        for resource in _resources(bundle):
            if resource["resourceType"] == "Encounter":
                assert resource["class"]["system"] == cat.V3_ACT_CODE
                classes.add(resource["class"]["code"])
    assert "AMB" in classes
    assert classes <= {"AMB", "HH", "IMP"}


# --- identifiers ---------------------------------------------------------------------


def test_patient_identifiers_are_valid(sample: list[Resource]) -> None:
    passports = 0
    for bundle in sample:
        patient = bundle["entry"][0]["resource"]
        assert patient["resourceType"] == "Patient"
        by_system = {i["system"]: i["value"] for i in patient["identifier"]}
        assert ids.validate_snils(by_system[ids.SNILS_SYSTEM]) == by_system[ids.SNILS_SYSTEM]
        assert ids.validate_enp(by_system[ids.ENP_SYSTEM]) == by_system[ids.ENP_SYSTEM]
        born = dt.date.fromisoformat(patient["birthDate"])
        age = (
            DEFAULT_TODAY.year
            - born.year
            - ((DEFAULT_TODAY.month, DEFAULT_TODAY.day) < (born.month, born.day))
        )
        if ids.PASSPORT_SYSTEM in by_system:
            passports += 1
            assert age >= 14
            ids.validate_passport(by_system[ids.PASSPORT_SYSTEM])
        elif age >= 15:
            pytest.fail(f"adult without a passport: {patient['birthDate']}")
    assert passports > 0


def test_patients_have_sex_consistent_patronymics(sample: list[Resource]) -> None:
    for bundle in sample:
        patient = bundle["entry"][0]["resource"]
        patronymic = patient["name"][0]["given"][1]
        ending = ("ич",) if patient["gender"] == "male" else ("на", "зы")
        assert patronymic.endswith(ending), patronymic


def test_practitioner_and_organization_identifiers_are_valid(reference: Resource) -> None:
    for resource in _resources(reference):
        for identifier in resource.get("identifier", []):
            if identifier["system"] == ids.SNILS_SYSTEM:
                ids.validate_snils(identifier["value"])
            elif identifier["system"] == ids.OGRN_SYSTEM:
                assert ids.is_valid_ogrn(identifier["value"])
            elif identifier["system"] == ids.MO_REGISTRY_SYSTEM:
                assert re.fullmatch(
                    r"1\.2\.643\.5\.1\.13\.13\.12\.2\.7[78]\.\d+", identifier["value"]
                )


# --- reference data ------------------------------------------------------------------------


def test_reference_data_covers_both_regions_and_every_organization_kind(
    reference: Resource,
) -> None:
    organizations = [r for r in _resources(reference) if r["resourceType"] == "Organization"]
    seen: dict[str, set[str]] = {"77": set(), "78": set()}
    for org in organizations:
        region = org["extension"][0]["valueCoding"]["code"]
        assert org["extension"][0]["url"] == cat.REGION_EXTENSION_URL
        assert org["address"][0]["state"] == cat.REGION_BY_CODE[region].name
        kinds = [
            c["code"]
            for t in org["type"]
            for c in t["coding"]
            if c["system"] == cat.ORG_KIND_SYSTEM
        ]
        seen[region].update(kinds)
    for kinds in seen.values():
        assert kinds == set(cat.ORG_KINDS)
    polyclinics = [o for o in organizations if "Городская поликлиника № 12 ДЗМ" in o["name"]]
    assert polyclinics
    assert all(e["request"]["method"] == "PUT" for e in reference["entry"])


def test_practitioners_have_roles_with_the_required_specialties(reference: Resource) -> None:
    roles = [r for r in _resources(reference) if r["resourceType"] == "PractitionerRole"]
    specialties = {c["code"] for r in roles for s in r["specialty"] for c in s["coding"]}
    assert specialties == set(cat.SPECIALTIES)
    practitioners = {r["id"] for r in _resources(reference) if r["resourceType"] == "Practitioner"}
    assert {r["practitioner"]["reference"].split("/")[1] for r in roles} == practitioners


def test_reference_bundle_references_resolve_inside_it(
    reference: Resource, reference_ids: set[str]
) -> None:
    assert set(_references(reference)) <= reference_ids


# --- references and dates in patient bundles ---------------------------------------------


def _unresolved(bundle: Resource, reference_ids: set[str]) -> set[str]:
    local = {entry["fullUrl"] for entry in bundle["entry"]}
    return {ref for ref in _references(bundle) if ref not in local and ref not in reference_ids}


def test_every_reference_resolves_in_the_bundle_or_the_reference_data(
    sample: list[Resource], big: Resource, reference_ids: set[str]
) -> None:
    for bundle in (*sample, big):
        assert _unresolved(bundle, reference_ids) == set()


def test_references_resolve_against_reference_data_of_another_seed(sample: list[Resource]) -> None:
    other = {f"{r['resourceType']}/{r['id']}" for r in _resources(reference_bundle(seed=3))}
    assert _unresolved(sample[0], other) == set()


def test_clinical_resources_point_at_their_patient(sample: list[Resource]) -> None:
    for bundle in sample:
        patient_url = bundle["entry"][0]["fullUrl"]
        assert patient_url.startswith("urn:uuid:")
        for entry in bundle["entry"][1:]:
            resource = entry["resource"]
            assert entry["request"] == {"method": "POST", "url": resource["resourceType"]}
            owner = resource.get("subject") or resource.get("patient") or resource["beneficiary"]
            assert owner == {"reference": patient_url}


def _dates(bundle: Resource) -> Iterator[tuple[str, str]]:
    for path, value in _walk(bundle):
        if isinstance(value, str) and DATE.match(value):
            yield ".".join(path), value


def test_no_dates_in_the_future(sample: list[Resource], big: Resource) -> None:
    for bundle in (*sample, big):
        for path, value in _dates(bundle):
            day = dt.date.fromisoformat(value[:10])
            if path.endswith(VALIDITY_ENDS):
                assert day <= DEFAULT_TODAY + dt.timedelta(days=3700), path
            else:
                assert day < DEFAULT_TODAY, f"{path}={value}"
            if "T" in value:
                assert value.endswith("+03:00"), f"{path}={value}"


def test_today_can_be_moved() -> None:
    today = dt.date(2024, 3, 1)
    bundle = patient_bundle(0, seed=1, today=today)
    for path, value in _dates(bundle):
        if not path.endswith(VALIDITY_ENDS):
            assert dt.date.fromisoformat(value[:10]) < today


# --- clinical content ---------------------------------------------------------------------


def test_resource_counts_vary_around_a_realistic_mean(sample: list[Resource]) -> None:
    sizes = [len(bundle["entry"]) for bundle in sample]
    assert 60 <= statistics.mean(sizes) <= 130
    assert min(sizes) < 40
    assert max(sizes) > 150


def test_population_has_every_card_section(sample: list[Resource]) -> None:
    types = {r["resourceType"] for bundle in sample for r in _resources(bundle)}
    assert types >= {
        "Patient",
        "Encounter",
        "Condition",
        "AllergyIntolerance",
        "Observation",
        "DiagnosticReport",
        "ImagingStudy",
        "Immunization",
        "ServiceRequest",
        "DocumentReference",
        "MedicationRequest",
        "Coverage",
    }


def test_conditions_use_current_nsi_mkb10_codes(sample: list[Resource]) -> None:
    for bundle in sample:
        for resource in _resources(bundle):
            if resource["resourceType"] == "Condition":
                coding = resource["code"]["coding"][0]
                assert coding["system"] == cat.ICD10_SYSTEM
                entry = mkb10().get(coding["code"])
                assert entry is not None
                assert entry.actual
                assert entry.leaf


def test_catalog_codes_are_current_nsi_mkb10_codes() -> None:
    codes = [c.code for c in cat.CONDITIONS] + list(cat.LONG_TAIL_ICD10)
    assert len(set(codes)) == len(codes)
    for code in (*codes, "Z00.0", "Z00.1", "Z02.7"):
        entry = mkb10().get(code)
        assert entry is not None, code
        assert entry.actual, code
        assert entry.leaf, code
    assert all(m in cat.MEDICATIONS for c in cat.CONDITIONS for m in c.meds)


def test_lab_results_carry_units_ranges_and_matching_interpretation(
    sample: list[Resource],
) -> None:
    flags = set()
    for bundle in sample:
        for resource in _resources(bundle):
            if resource["resourceType"] != "Observation" or "referenceRange" not in resource:
                continue
            value = resource["valueQuantity"]
            assert value["system"] == cat.UCUM_SYSTEM
            assert resource["code"]["coding"][0]["system"] == cat.LOINC_SYSTEM
            rng = resource["referenceRange"][0]
            low, high = rng.get("low", {"value": 0})["value"], rng["high"]["value"]
            flag = resource["interpretation"][0]["coding"][0]["code"]
            expected = "L" if value["value"] < low else "H" if value["value"] > high else "N"
            assert flag == expected
            flags.add(flag)
    assert flags == {"L", "N", "H"}


def test_lab_and_imaging_reports_are_categorised(sample: list[Resource]) -> None:
    categories = set()
    for bundle in sample:
        for resource in _resources(bundle):
            if resource["resourceType"] == "DiagnosticReport":
                codes = {c["code"] for c in resource["category"][0]["coding"]}
                categories.add(frozenset(codes))
                if "imaging" in codes:
                    assert resource["conclusion"]
                    assert resource["imagingStudy"]
    assert categories == {frozenset({"LAB", "laboratory"}), frozenset({"RAD", "imaging"})}


def test_imaging_studies_use_dicom_modalities(sample: list[Resource]) -> None:
    modalities = {
        m["code"]
        for bundle in sample
        for r in _resources(bundle)
        if r["resourceType"] == "ImagingStudy"
        for m in r["modality"]
    }
    assert modalities <= {"CT", "US", "MR", "DX"}
    assert {"US", "DX"} <= modalities


def test_children_get_the_national_calendar(sample: list[Resource]) -> None:
    seen: set[str] = set()
    children = 0
    for bundle in sample:
        patient = bundle["entry"][0]["resource"]
        if not "2012-01-01" <= patient["birthDate"] <= "2024-06-01":  # two years old or more
            continue
        children += 1
        doses: dict[str, list[tuple[str, int]]] = {}
        for r in _resources(bundle):
            if r["resourceType"] == "Immunization":
                key = next(
                    c["code"]
                    for c in r["vaccineCode"]["coding"]
                    if c["system"] == cat.VACCINE_SYSTEM
                )
                dose = r["protocolApplied"][0]["doseNumberPositiveInt"]
                doses.setdefault(key, []).append((r["occurrenceDateTime"], dose))
        calendar = {k: v for k, v in doses.items() if k != "flu"}
        assert sum(len(v) for v in calendar.values()) >= 10  # a few may be skipped
        for given in calendar.values():
            assert [d for _, d in sorted(given)] == sorted(d for _, d in given)
        seen.update(doses)
    assert children
    assert seen >= {"hepb", "bcg", "pcv", "dtp", "ipv", "opv", "mmr"}


def test_dispanserization_records_a_health_group(sample: list[Resource]) -> None:
    groups = set()
    for bundle in sample:
        for resource in _resources(bundle):
            if (
                resource["resourceType"] == "Observation"
                and resource["code"]["coding"][0]["code"] == "health-group"
            ):
                groups.add(resource["valueCodeableConcept"]["coding"][0]["code"])
    assert groups <= set(cat.HEALTH_GROUPS)
    assert {"I", "II", "IIIa"} <= groups


def test_documents_carry_russian_text_and_validity(sample: list[Resource]) -> None:
    seen = set()
    for bundle in sample:
        for resource in _resources(bundle):
            if resource["resourceType"] != "DocumentReference":
                continue
            attachment = resource["content"][0]["attachment"]
            assert attachment["contentType"].startswith("text/plain")
            text = base64.b64decode(attachment["data"]).decode("utf-8")
            assert "Пациент:" in text
            code = resource["type"]["coding"][0]["code"]
            seen.add(code)
            period = resource["context"]["period"]
            assert period["start"] <= period["end"]
            if cat.DOCUMENTS[code].valid_days:
                assert "Действительна до" in text
    assert {"consult", "pool"} <= seen


def test_prescriptions_are_atc_coded_and_active_only_while_valid(sample: list[Resource]) -> None:
    statuses = set()
    for bundle in sample:
        for resource in _resources(bundle):
            if resource["resourceType"] != "MedicationRequest":
                continue
            assert resource["medicationCodeableConcept"]["coding"][0]["system"] == cat.ATC_SYSTEM
            assert resource["dosageInstruction"][0]["text"]
            end = resource["dispenseRequest"]["validityPeriod"]["end"]
            statuses.add(resource["status"])
            if resource["status"] == "active":
                assert end >= DEFAULT_TODAY.isoformat()
    assert statuses == {"active", "completed"}


def test_referrals_are_orders_to_organizations(sample: list[Resource]) -> None:
    for bundle in sample:
        for resource in _resources(bundle):
            if resource["resourceType"] == "ServiceRequest":
                assert resource["intent"] == "order"
                assert resource["performer"][0]["reference"].startswith("Organization/")


# --- the large card ---------------------------------------------------------------------


def test_a_patient_with_about_a_thousand_resources_can_be_made(big: Resource) -> None:
    assert 1000 <= len(big["entry"]) < 1100
    assert big["entry"][0]["resource"]["resourceType"] == "Patient"


@pytest.mark.parametrize("target", [50, 300])
def test_large_card_size_follows_the_target(target: int) -> None:
    bundle = patient_bundle_with_resources(target, seed=2)
    assert target <= len(bundle["entry"]) < target + 100
