"""Signatures: algorithms, verification, immutability of signed versions, corrections."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, update

from medcard import entries, signing
from medcard.db.tables import resources, signing_keys
from medcard.fhir.outcomes import FhirError
from medcard.fhir.store.repository import Repository
from medcard.signing import KeyStore, Status, algorithms
from medcard.signing.keys import KEK_FILE


@pytest.mark.parametrize("name", ["EdDSA", "ES256"])
def test_registered_algorithms_sign_and_verify(name: str) -> None:
    alg = algorithms.get(name)
    pair = alg.generate()
    sig = alg.sign(pair.private, b"payload")
    assert alg.verify(pair.public, b"payload", sig)
    assert not alg.verify(pair.public, b"payloaD", sig)
    assert not alg.verify(alg.generate().public, b"payload", sig)


def test_a_gost_implementation_plugs_in_by_registering() -> None:
    class Fake:
        name = "GOST3410-2012-256"
        title = "ГОСТ Р 34.10-2012"

        def generate(self) -> algorithms.KeyPair:
            return algorithms.KeyPair(b"k", b"k")

        def sign(self, private: bytes, data: bytes) -> bytes:
            return data[::-1]

        def verify(self, public: bytes, data: bytes, signature: bytes) -> bool:
            return signature == data[::-1]

    algorithms.register(Fake())
    assert "GOST3410-2012-256" in algorithms.names()
    assert algorithms.get("GOST3410-2012-256").verify(b"k", b"ab", b"ba")


def _diagnosis(repo: Repository, keys: KeyStore, pid: str) -> entries.Submitted:
    return entries.submit(
        repo, keys, "diagnosis", pid, {"code": "I10", "clinical_status": "active"}, uuid.uuid4().hex
    )


def test_private_keys_are_encrypted_at_rest(
    patient_id: str,
    engine: Engine,
    repo_of: Callable[[str], Repository],
    keys: KeyStore,
    settings: Any,
) -> None:
    _diagnosis(repo_of("doctor"), keys, patient_id)
    with engine.connect() as conn:
        row = conn.execute(signing_keys.select()).one()
    assert row.algorithm == "EdDSA"
    assert row.owner == "Practitioner/prac-77-gp12-therapist-1"
    assert row.private_key.startswith("gAAAAA")  # a Fernet token, not the key
    assert (settings.data_dir / KEK_FILE).stat().st_mode & 0o077 == 0


def test_tampering_with_a_signed_version_is_detected(
    patient_id: str, engine: Engine, repo_of: Callable[[str], Repository], keys: KeyStore
) -> None:
    pid = patient_id
    repo = repo_of("doctor")
    done = _diagnosis(repo, keys, pid)
    assert signing.statuses(repo, keys, pid, done.written)[("Condition", done.main.id)].ok
    forged = done.main.json()
    forged["code"]["coding"][0]["code"] = "I11.9"
    with engine.begin() as conn:  # behind the store's back, as an attacker with the database
        conn.execute(
            update(resources)
            .where(resources.c.id == done.main.id)
            .values(content=orjson.dumps(forged))
        )
    stored = repo.read("Condition", done.main.id)
    # what the page displays no longer matches what was signed
    status = signing.statuses(repo, keys, pid, [stored])[("Condition", done.main.id)]
    assert status.status == Status.INVALID
    assert status.signer == "Practitioner/prac-77-gp12-therapist-1"


def test_signed_entries_refuse_update_and_delete_over_the_api(
    patient_id: str,
    engine: Engine,
    repo_of: Callable[[str], Repository],
    keys: KeyStore,
    api: Callable[..., TestClient],
) -> None:
    client = api()
    pid = patient_id
    done = _diagnosis(repo_of("doctor"), keys, pid)
    body = done.main.json()
    body["note"] = [{"text": "edited in place"}]
    r = client.put(f"/fhir/Condition/{done.main.id}", json=body)
    assert r.status_code == 409
    assert "signed documents are corrected by a new signed version" in r.text
    assert r.json()["resourceType"] == "OperationOutcome"
    assert client.delete(f"/fhir/Condition/{done.main.id}").status_code == 409
    assert done.provenance is not None
    assert client.delete(f"/fhir/Provenance/{done.provenance.id}").status_code == 409
    assert client.get(f"/fhir/Condition/{done.main.id}").json()["meta"]["versionId"] == "1"


def test_a_correction_is_a_new_signed_version(
    patient_id: str, engine: Engine, repo_of: Callable[[str], Repository], keys: KeyStore
) -> None:
    pid = patient_id
    repo = repo_of("doctor")
    done = _diagnosis(repo, keys, pid)
    new = done.main.json()
    new["clinicalStatus"] = {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                "code": "resolved",
            }
        ]
    }
    stored, provenance = signing.correct(
        repo, keys, "Condition", done.main.id, new, "Выздоровление"
    )
    assert stored.version_id == 2
    prov = provenance.json()
    assert prov["entity"][0] == {
        "role": "revision",
        "what": {"reference": f"Condition/{done.main.id}/_history/1"},
    }
    assert prov["reason"][0]["text"] == "Выздоровление"
    assert signing.statuses(repo, keys, pid, [stored])[("Condition", stored.id)].ok
    with pytest.raises(FhirError) as refused:
        signing.correct(repo, keys, "Condition", done.main.id, new, "x")
    assert refused.value.status == 400


def test_only_practitioners_sign(
    patient_id: str, engine: Engine, repo_of: Callable[[str], Repository], keys: KeyStore
) -> None:
    with pytest.raises(entries.FormError):
        _diagnosis(repo_of("registrar"), keys, patient_id)
