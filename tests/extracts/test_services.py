"""Requesting, building, listing, downloading and verifying extracts (no HTTP)."""

from __future__ import annotations

import base64
import datetime as dt
import io
import re
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from joserfc.jwk import ECKey
from pypdf import PdfReader
from sqlalchemy import Engine, func, select

from medcard.access.context import AccessContext
from medcard.auth.tokens import load_or_create_key
from medcard.config import Settings
from medcard.db.tables import resources
from medcard.extracts import jobs as extract_jobs
from medcard.extracts import model, services, verification
from medcard.extracts.render import Period
from medcard.fhir.store.repository import Repository
from medcard.records import load_card
from tests.extracts.conftest import patient_of

ALL = [
    "visits",
    "labs",
    "protocols",
    "imaging",
    "vaccinations",
    "exams",
    "referrals",
    "documents",
    "prescriptions",
    "diagnoses",
    "allergies",
    "measurements",
]
TODAY = dt.date(2030, 1, 1)


def _request(engine: Engine, pid: str, sections: list[str], start: str = "", end: str = "") -> str:
    repo = Repository(engine, extract_jobs.acting_for(pid))
    try:
        req = services.parse_request(sections, start, end, "ru", TODAY)
        return services.request_extract(repo, pid, req, base_url="https://medcard.example")
    finally:
        repo.close()


def _doc(engine: Engine, doc_id: str) -> dict[str, Any]:
    repo = Repository(engine, AccessContext.system())
    try:
        return repo.read("DocumentReference", doc_id).json()
    finally:
        repo.close()


def _files(engine: Engine, pid: str, doc_id: str) -> tuple[bytes, bytes]:
    repo = Repository(engine, extract_jobs.acting_for(pid))
    try:
        pdf = services.extract_file(repo, pid, doc_id, "pdf")
        bundle = services.extract_file(repo, pid, doc_id, "json")
    finally:
        repo.close()
    assert pdf.content_type == "application/pdf"
    assert bundle.content_type == "application/fhir+json"
    return pdf.data, bundle.data


def _key(settings: Settings) -> ECKey:
    return load_or_create_key(settings.signing_key_path)


def _text(pdf: bytes) -> str:
    """The pages' text with line breaks as spaces (long titles wrap)."""
    return " ".join(" ".join(p.extract_text().split()) for p in PdfReader(io.BytesIO(pdf)).pages)


def _count(engine: Engine, rtype: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(resources)
                .where(resources.c.resource_type == rtype)
            ).scalar_one()
        )


def test_whole_card_extract_has_the_patient_sections_and_a_document_bundle(
    engine: Engine, demo: None, inline_jobs: Settings
) -> None:
    pid = patient_of(engine, "patient")
    doc_id = _request(engine, pid, ALL)
    doc = _doc(engine, doc_id)
    assert doc["docStatus"] == "final"
    assert model.state_of(doc) == (model.READY, "")
    pdf, raw_bundle = _files(engine, pid, doc_id)

    # The attachments carry sizes and hashes of exactly the bytes handed out.
    pdf_att, json_att = (c["attachment"] for c in doc["content"])
    assert pdf_att["size"] == len(pdf)
    assert model.extension(pdf_att, model.EXT_SHA256)[0]["valueString"] == verification.sha256_hex(
        pdf
    )
    assert json_att["size"] == len(raw_bundle)

    # The PDF: Cyrillic text, the patient's identifiers, every section, the code on each page.
    repo = Repository(engine, AccessContext.system())
    card = load_card(repo, pid)
    repo.close()
    code = model.code_of(doc)
    reader = PdfReader(io.BytesIO(pdf))
    text = _text(pdf)
    assert "Выписка из электронной медицинской карты" in text
    # issued in the patient's region's time, the zone named (issue 14 item 10)
    assert re.search(r"\d\d\.\d\d\.\d{4} \d\d:\d\d \(МСК(\+\d)?\)", text), text[:400]
    assert " UTC" not in text
    family = card.patient["name"][0]["family"]
    assert family in text
    snils = next(i["value"] for i in card.patient["identifier"] if i["system"].endswith("100.3"))
    assert f"{snils[:3]}-{snils[3:6]}-{snils[6:9]} {snils[9:]}" in text
    for title in ("Приёмы", "Анализы", "Прививки", "Диагнозы"):
        assert title in text
    for page in reader.pages:
        assert verification.pretty(code) in page.extract_text()
    assert f"Страница {len(reader.pages)} из {len(reader.pages)}" in text
    vaccination = card.section("vaccinations")[0]
    assert " ".join(vaccination.title.split()) in text

    # The Bundle: a FHIR document, Composition first, every listed entry inside.
    bundle = orjson.loads(raw_bundle)
    assert bundle["type"] == "document"
    assert bundle["identifier"]["value"] == code
    composition = bundle["entry"][0]["resource"]
    assert composition["resourceType"] == "Composition"
    assert [s["code"]["coding"][0]["code"] for s in composition["section"]] == ALL
    urls = {e["fullUrl"] for e in bundle["entry"]}
    for section in composition["section"]:
        for ref in section.get("entry", []):
            assert ref["reference"] in urls
    # Earlier extracts (this one, now in the card's documents) are not part of it.
    listed = sum(1 for k in ALL for e in card.section(k) if not model.is_extract(e.resource))
    assert sum(len(s.get("entry", [])) for s in composition["section"]) == listed

    # The list shows it ready.
    repo = Repository(engine, extract_jobs.acting_for(pid))
    items = services.list_extracts(repo, pid)
    repo.close()
    assert [(i.id, i.state, i.sections) for i in items] == [(doc_id, model.READY, tuple(ALL))]


def test_sections_and_period_limit_what_the_extract_contains(
    engine: Engine, demo: None, inline_jobs: Settings
) -> None:
    pid = patient_of(engine, "patient")
    repo = Repository(engine, AccessContext.system())
    card = load_card(repo, pid)
    repo.close()
    visits = [e for e in card.section("visits") if e.day]
    assert len(visits) >= 2
    day = visits[len(visits) // 2].day
    doc_id = _request(engine, pid, ["visits"], start=day, end=day)
    _pdf, raw = _files(engine, pid, doc_id)
    composition = orjson.loads(raw)["entry"][0]["resource"]
    assert [s["code"]["coding"][0]["code"] for s in composition["section"]] == ["visits"]
    expected = {f"https://medcard.example/fhir/{e.ref}" for e in visits if e.day == day}
    assert {r["reference"] for r in composition["section"][0]["entry"]} == expected
    assert composition["event"][0]["period"] == {"start": day, "end": day}


def test_the_extract_files_stay_inside_the_patients_card(
    engine: Engine, demo: None, inline_jobs: Settings, client: TestClient, token: Callable[..., str]
) -> None:
    pid = patient_of(engine, "patient")
    other = patient_of(engine, "parent")
    doc_id = _request(engine, pid, ["diagnoses"])
    doc = _doc(engine, doc_id)
    binary_id = model.attachment_binary(doc, 0)

    # Through the FHIR API: the patient reads their Binary, another patient cannot even find it.
    own = {"Authorization": f"Bearer {token('patient/*.rs', patient=pid)}"}
    theirs = {"Authorization": f"Bearer {token('patient/*.rs', patient=other)}"}
    got = client.get(
        f"/fhir/Binary/{binary_id}", headers={**own, "Accept": "application/fhir+json"}
    )
    assert got.status_code == 200
    assert base64.b64decode(got.json()["data"])[:5] == b"%PDF-"
    assert client.get(f"/fhir/Binary/{binary_id}", headers=theirs).status_code == 404
    found = client.get("/fhir/Binary", headers={**theirs, "Accept": "application/fhir+json"})
    assert found.status_code == 200
    assert not found.json().get("entry")
    assert client.get(f"/fhir/DocumentReference/{doc_id}", headers=theirs).status_code == 404

    # Through the services: another card's extract is "not found", and so is a wrong pairing.
    stranger = Repository(engine, extract_jobs.acting_for(other))
    with pytest.raises(services.NotFound):
        services.extract_file(stranger, pid, doc_id, "pdf")
    with pytest.raises(services.NotFound):
        services.extract_file(stranger, other, doc_id, "pdf")
    with pytest.raises(services.NotFound):
        services.list_extracts(stranger, pid)
    before = _count(engine, "DocumentReference")
    with pytest.raises(services.NotFound):
        services.request_extract(
            stranger,
            pid,
            services.parse_request(["labs"], "", "", "ru", TODAY),
            base_url="https://x",
        )
    stranger.close()
    assert _count(engine, "DocumentReference") == before


def test_verification_accepts_the_genuine_files_and_rejects_altered_ones(
    engine: Engine, demo: None, inline_jobs: Settings
) -> None:
    pid = patient_of(engine, "patient")
    doc_id = _request(engine, pid, ["vaccinations", "allergies"], start="2015-01-01")
    pdf, bundle = _files(engine, pid, doc_id)
    code = model.code_of(_doc(engine, doc_id))
    key = _key(inline_jobs)

    by_code = verification.check(engine, key, verification.pretty(code).lower())
    assert by_code.verdict == verification.Verdict.GENUINE
    assert by_code.record is not None
    assert by_code.record.sections == ("vaccinations", "allergies")
    assert by_code.record.start == "2015-01-01"
    assert all(c.isalpha() or c in ". " for c in by_code.record.initials)

    assert verification.check(engine, key, "", pdf).matched == "pdf"
    assert verification.check(engine, key, "", bundle).matched == "bundle"

    altered = bytearray(pdf)
    altered[len(altered) // 2] ^= 0x20
    assert (
        verification.check(engine, key, "", bytes(altered)).verdict == verification.Verdict.ALTERED
    )
    edited = bundle.replace(b'"status"', b'"Status"', 1)
    assert verification.check(engine, key, "", edited).verdict == verification.Verdict.ALTERED

    typo = code[:3] + ("2" if code[3] != "2" else "3") + code[4:]
    assert verification.check(engine, key, typo).verdict == verification.Verdict.MALFORMED
    unknown = verification.new_code()
    assert verification.check(engine, key, unknown).verdict == verification.Verdict.UNKNOWN
    assert verification.check(engine, key, "", b"%PDF-1.7\n%%EOF").verdict == (
        verification.Verdict.NO_CODE
    )


def test_an_edited_verification_record_is_detected(
    engine: Engine, demo: None, inline_jobs: Settings
) -> None:
    """Someone with database access swaps the PDF hash for a forged file's: the server's
    signature no longer matches, and the page says the record itself is damaged."""
    pid = patient_of(engine, "patient")
    doc_id = _request(engine, pid, ["allergies"])
    doc = _doc(engine, doc_id)
    code = model.code_of(doc)
    key = _key(inline_jobs)
    jws = model.extension(doc, model.EXT_VERIFICATION)[0]["valueString"]
    header, payload, signature = jws.split(".")
    record = orjson.loads(base64.urlsafe_b64decode(payload + "=="))
    record["pdf"] = "0" * 64
    forged = base64.urlsafe_b64encode(orjson.dumps(record)).rstrip(b"=").decode()
    for ext in doc["extension"]:
        if ext["url"] == model.EXT_VERIFICATION:
            ext["valueString"] = f"{header}.{forged}.{signature}"
    repo = Repository(engine, AccessContext.system())
    with repo.unit_of_work():
        repo.update("DocumentReference", doc_id, doc)
    repo.close()
    assert verification.check(engine, key, code).verdict == verification.Verdict.RECORD_ALTERED


def test_a_failing_build_ends_failed_with_its_reason_and_nothing_half_made(
    engine: Engine, demo: None, inline_jobs: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts: list[int] = []

    def broken(*_args: Any, **_kw: Any) -> bytes:
        attempts.append(1)
        raise RuntimeError("font cache unreadable")

    monkeypatch.setattr(extract_jobs, "render_pdf", broken)
    pid = patient_of(engine, "patient")
    doc_id = _request(engine, pid, ["labs"])
    doc = _doc(engine, doc_id)
    assert attempts
    assert doc["docStatus"] == "preliminary"
    state, reason = model.state_of(doc)
    assert state == model.FAILED
    assert "font cache unreadable" in reason
    assert _count(engine, "Binary") == 0
    code = model.code_of(doc)
    assert verification.check(engine, _key(inline_jobs), code).verdict == (
        verification.Verdict.NOT_READY
    )
    repo = Repository(engine, extract_jobs.acting_for(pid))
    with pytest.raises(services.NotReady):
        services.extract_file(repo, pid, doc_id, "pdf")
    repo.close()

    # Built again later (the queue's retry), it completes and the failure is gone.
    monkeypatch.undo()
    extract_jobs.build(
        engine, _key(inline_jobs), doc_id=doc_id, patient_id=pid, base_url="https://x"
    )
    assert model.state_of(_doc(engine, doc_id)) == (model.READY, "")


def test_a_queue_that_refuses_the_job_marks_the_extract_failed_at_once(
    engine: Engine, demo: None, inline_jobs: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(**_kw: Any) -> None:
        raise ConnectionError("redis unreachable")

    monkeypatch.setattr(extract_jobs, "build_extract", refuse)
    pid = patient_of(engine, "patient")
    doc_id = _request(engine, pid, ["labs"])
    state, reason = model.state_of(_doc(engine, doc_id))
    assert state == model.FAILED
    assert "redis unreachable" in reason


def test_a_build_that_died_with_its_worker_is_shown_failed_not_building() -> None:
    created = dt.datetime(2025, 1, 1, 12, tzinfo=dt.UTC)
    doc = services.new_document(
        "p1", services.ExtractRequest(("labs",), Period()), verification.new_code(), created
    )
    assert model.state_of(doc, created + dt.timedelta(minutes=1))[0] == model.BUILDING
    assert model.state_of(doc, created + model.STALE_AFTER + dt.timedelta(seconds=1)) == (
        model.FAILED,
        "timeout",
    )


@pytest.mark.parametrize(
    ("sections", "start", "end", "error"),
    [
        ([], "", "", "extracts_error_no_sections"),
        (["labs", "passwords"], "", "", "extracts_error_sections"),
        (["labs"], "2024-13-01", "", "extracts_error_date"),
        (["labs"], "1812-09-07", "", "extracts_error_date"),
        (["labs"], "2024-06-01", "2024-01-01", "extracts_error_order"),
        (["labs"], "2031-01-01", "", "extracts_error_future"),
    ],
)
def test_bad_requests_are_refused_with_a_reason(
    sections: list[str], start: str, end: str, error: str
) -> None:
    with pytest.raises(services.RequestError) as exc:
        services.parse_request(sections, start, end, "ru", TODAY)
    assert exc.value.key == error


def test_sections_come_out_in_the_cards_order_without_repeats() -> None:
    req = services.parse_request(["labs", "visits", "labs"], "", "2024-01-01", "en", TODAY)
    assert req.sections == ("visits", "labs")
    assert req.period == Period(None, dt.date(2024, 1, 1))
    assert req.lang == "en"


def test_only_extracts_are_listed(engine: Engine, demo: None, inline_jobs: Settings) -> None:
    pid = patient_of(engine, "patient")
    repo = Repository(engine, AccessContext.system())
    with repo.unit_of_work():
        repo.create(
            {
                "resourceType": "DocumentReference",
                "status": "current",
                "type": {"text": "Справка для бассейна"},
                "subject": {"reference": f"Patient/{pid}"},
                "content": [{"attachment": {"contentType": "text/plain", "data": "0J/RgNC40LI="}}],
            }
        )
    repo.close()
    doc_id = _request(engine, pid, ["labs"])
    repo = Repository(engine, extract_jobs.acting_for(pid))
    listed = services.list_extracts(repo, pid)
    repo.close()
    assert [i.id for i in listed] == [doc_id]


def test_a_finished_extract_is_the_systems_and_the_patient_cannot_alter_it(
    engine: Engine, demo: None, inline_jobs: Settings
) -> None:
    from medcard.access.policy import entered_by_patient
    from medcard.fhir.outcomes import FhirError

    pid = patient_of(engine, "patient")
    patient = Repository(engine, extract_jobs.acting_for(pid))
    try:
        req = services.parse_request(["labs"], "", "", "ru", dt.date(2026, 11, 26))
        doc_id = services.request_extract(patient, pid, req, base_url="http://testserver")
        doc = patient.read("DocumentReference", doc_id).json()
        assert doc["docStatus"] == "final"
        assert not entered_by_patient(doc)
        for att in doc["content"]:
            binary = patient.read("Binary", att["attachment"]["url"].split("/")[1]).json()
            assert not entered_by_patient(binary)
        with pytest.raises(FhirError), patient.unit_of_work():
            patient.update("DocumentReference", doc_id, {**doc, "description": "поддельная"})
    finally:
        patient.close()
