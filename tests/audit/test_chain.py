"""The hash chain: entries are sealed as requests flush them, and any change, deletion or
reordering of a sealed entry is found by verify; the database refuses such changes too."""

from __future__ import annotations

import hashlib
import threading
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import DBAPIError

from medcard.access.context import AccessContext
from medcard.audit import chain, recorder
from medcard.audit.recorder import AuditBuffer
from medcard.db.tables import audit_log
from tests.audit.conftest import FHIR, Entry, Record, Tamper, audit_rows


def _ten(record: Record) -> None:
    for i in range(5):
        record(
            Entry("Practitioner/p1", f"pat{i}", purpose="TREAT"),
            Entry("Practitioner/p1", f"pat{i}", "search", "Observation", emergency=i == 2),
        )


def test_entries_are_sealed_in_order_as_they_are_flushed(engine: Engine, record: Record) -> None:
    _ten(record)
    rows = audit_rows(engine)
    assert [r.chain_seq for r in rows] == list(range(1, 11))
    previous = chain.GENESIS
    for row in rows:
        assert row.hash == chain.link(previous, row)
        previous = row.hash
    verdict = chain.verify(engine)
    assert verdict.ok, verdict.problem
    assert (verdict.checked, verdict.unsealed, verdict.head_hash) == (10, 0, rows[-1].hash)


def test_link_format_is_pinned() -> None:
    """sha256(previous hash hex + canonical JSON: sorted keys, no spaces, empty values out)."""
    entry = {
        "id": 7,
        "recorded": 1_700_000_000_000_000,
        "actor": "Practitioner/p1",
        "client_id": "",
        "action": "R",
        "interaction": "read",
        "resource_type": "Patient",
        "resource_id": "pat1",
        "patient_id": "pat1",
        "outcome": "0",
        "detail": "",
        "request_id": "r1",
        "purpose": "",
        "emergency": True,
        "organization": "Organization/о1",
        "chain_seq": 3,
    }
    text = (
        '{"action":"R","actor":"Practitioner/p1","chain_seq":3,"emergency":true,"id":7,'
        '"interaction":"read","organization":"Organization/о1","outcome":"0",'
        '"patient_id":"pat1","recorded":1700000000000000,"request_id":"r1",'
        '"resource_id":"pat1","resource_type":"Patient"}'
    )
    assert chain.canonical(entry) == text.encode()
    expected = hashlib.sha256(("ab" * 32 + text).encode()).hexdigest()
    assert chain.link("ab" * 32, entry) == expected


def test_entries_of_a_write_are_sealed_after_its_commit(client: TestClient, engine: Engine) -> None:
    r = client.post(
        "/fhir/Patient", json={"resourceType": "Patient"}, headers={"Content-Type": FHIR}
    )
    assert r.status_code == 201
    rows = audit_rows(engine, interaction="create")
    assert len(rows) == 1
    assert rows[0].chain_seq is not None
    assert chain.verify(engine).ok


def test_unsealed_entries_are_sealed_by_the_next_seal(
    engine: Engine, record: Record, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recorder, "SEAL_ON_FLUSH", False)
    _ten(record)
    assert all(r.chain_seq is None for r in audit_rows(engine))
    verdict = chain.verify(engine)
    assert verdict.ok
    assert (verdict.checked, verdict.unsealed) == (0, 10)
    assert chain.seal(engine, batch=4) == 4  # a bounded batch per call
    assert chain.seal_all(engine) == 6
    assert chain.seal_all(engine) == 0
    assert chain.verify(engine).checked == 10


def test_a_request_seals_an_earlier_backlog_a_batch_at_a_time(
    engine: Engine, record: Record, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recorder, "SEAL_ON_FLUSH", False)
    for _ in range(3):
        _ten(record)
    monkeypatch.setattr(recorder, "SEAL_ON_FLUSH", True)
    monkeypatch.setattr(chain, "SEAL_BATCH", 8)
    record(Entry("Practitioner/p1", "pat9"))
    verdict = chain.verify(engine)
    assert verdict.ok
    assert (verdict.checked, verdict.unsealed) == (8, 23)


# -- tampering ---------------------------------------------------------------------------


def test_verify_finds_a_changed_entry(engine: Engine, record: Record, tamper: Tamper) -> None:
    _ten(record)
    tamper("UPDATE audit_log SET actor = 'Practitioner/someone-else' WHERE chain_seq = 4")
    verdict = chain.verify(engine)
    assert not verdict.ok
    assert verdict.broken_seq == 4
    assert verdict.checked == 3
    assert "does not match its hash" in verdict.problem


@pytest.mark.parametrize(
    "change",
    [
        "emergency = {false}",
        "purpose = 'HPAYMT'",
        "recorded = recorded + 1",
        "organization = 'Organization/x'",
        "hash = '{zeros}'",
    ],
)
def test_verify_finds_any_changed_field(
    engine: Engine, record: Record, tamper: Tamper, change: str
) -> None:
    _ten(record)  # entry 6 (chain_seq 6) is the emergency search
    false = "false" if engine.dialect.name == "postgresql" else "0"
    tamper(f"UPDATE audit_log SET {change.format(false=false, zeros='0' * 64)} WHERE chain_seq = 6")
    verdict = chain.verify(engine)
    assert not verdict.ok
    assert verdict.broken_seq in (6, 7)  # a rewritten hash shows at the next link


def test_verify_finds_a_deleted_entry(engine: Engine, record: Record, tamper: Tamper) -> None:
    _ten(record)
    tamper("DELETE FROM audit_log WHERE chain_seq = 5")
    verdict = chain.verify(engine)
    assert not verdict.ok
    assert verdict.broken_seq == 5
    assert "missing" in verdict.problem


def test_verify_finds_reordered_entries(engine: Engine, record: Record, tamper: Tamper) -> None:
    _ten(record)
    tamper("UPDATE audit_log SET chain_seq = -1 WHERE chain_seq = 3")
    tamper("UPDATE audit_log SET chain_seq = 3 WHERE chain_seq = 4")
    tamper("UPDATE audit_log SET chain_seq = 4 WHERE chain_seq = -1")
    verdict = chain.verify(engine)
    assert not verdict.ok
    assert verdict.broken_seq == 3


def test_verify_finds_swapped_contents(engine: Engine, record: Record, tamper: Tamper) -> None:
    """Swapping what two entries say (ids, places and hashes kept) breaks both links."""
    _ten(record)
    a, b = audit_rows(engine)[1:3]
    tamper(
        f"UPDATE audit_log SET patient_id = '{b.patient_id}', resource_type = '{b.resource_type}' "
        f"WHERE id = {a.id}"
    )
    tamper(
        f"UPDATE audit_log SET patient_id = '{a.patient_id}', resource_type = '{a.resource_type}' "
        f"WHERE id = {b.id}"
    )
    assert chain.verify(engine).broken_seq == a.chain_seq


def test_verify_finds_an_entry_taken_out_of_the_chain(
    engine: Engine, record: Record, tamper: Tamper
) -> None:
    _ten(record)
    tamper("UPDATE audit_log SET chain_seq = NULL, hash = NULL WHERE chain_seq = 2")
    assert chain.verify(engine).broken_seq == 2
    # ...and sealing it again (at the end of the chain) does not repair the gap
    chain.seal_all(engine)
    assert chain.verify(engine).broken_seq == 2


def test_an_anchor_reveals_a_removed_tail_or_a_rewritten_chain(
    engine: Engine, record: Record, tamper: Tamper
) -> None:
    _ten(record)
    anchor = chain.parse_anchor(chain.verify(engine).head)
    assert chain.verify(engine, expect=anchor).ok
    # Removing the newest entries leaves a valid (shorter) chain: only the anchor shows it.
    tamper("DELETE FROM audit_log WHERE chain_seq = 10")
    assert chain.verify(engine).ok
    short = chain.verify(engine, expect=anchor)
    assert not short.ok
    assert "before the anchor" in short.problem
    # Re-hashing everything after a change also passes on its own, never with the anchor.
    tamper("UPDATE audit_log SET actor = 'Practitioner/x' WHERE chain_seq = 1")
    tamper("UPDATE audit_log SET chain_seq = NULL, hash = NULL")
    chain.seal_all(engine)
    record(Entry("Practitioner/p1", "pat1"))
    assert chain.verify(engine).ok
    rewritten = chain.verify(engine, expect=anchor)
    assert not rewritten.ok
    assert "anchor" in rewritten.problem


def test_parse_anchor_refuses_garbage() -> None:
    with pytest.raises(ValueError, match="SEQ:HASH"):
        chain.parse_anchor("12:abc")


# -- concurrency -------------------------------------------------------------------------


def test_concurrent_flushes_make_one_unbroken_chain(engine: Engine) -> None:
    threads, rounds = 8, 25
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def work(n: int) -> None:
        try:
            start.wait()
            for i in range(rounds):
                buffer = AuditBuffer(AccessContext.system(f"system:t{n}"))
                buffer.add("read", "Patient", f"p{n}-{i}", f"p{n}-{i}")
                buffer.add("search", "Observation", patient_id=f"p{n}-{i}")
                if i % 5 == 0:  # some as writes do: inside a transaction, sealed after it
                    with engine.begin() as conn:
                        buffer.flush(conn)
                buffer.flush_separately(engine)
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not errors
    total = threads * rounds * 2
    verdict = chain.verify(engine)
    assert verdict.ok, verdict.problem
    assert verdict.checked + verdict.unsealed == total
    if engine.dialect.name == "sqlite":
        assert verdict.unsealed == 0  # sealed inside each inserting transaction
    # PostgreSQL requests do not queue for the sealers' lock: what a running sealer
    # missed waits for the next seal.
    chain.seal_all(engine)
    assert chain.verify(engine).checked == total
    with engine.connect() as conn:
        seqs = conn.execute(select(audit_log.c.chain_seq).order_by(audit_log.c.chain_seq)).scalars()
        assert list(seqs) == list(range(1, total + 1))


def test_concurrent_sealers_never_fork_the_chain(
    engine: Engine, record: Record, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recorder, "SEAL_ON_FLUSH", False)
    for _ in range(20):
        _ten(record)
    barrier = threading.Barrier(6)
    sealed: list[int] = []

    def work() -> None:
        barrier.wait()
        sealed.append(chain.seal_all(engine, batch=7))

    workers = [threading.Thread(target=work) for _ in range(6)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert sum(sealed) == 200
    verdict = chain.verify(engine)
    assert verdict.ok
    assert verdict.checked == 200


# -- the database refuses changes --------------------------------------------------------


def _refused(engine: Engine, stmt: Any) -> bool:
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(stmt)
    return True


def test_database_refuses_to_change_a_sealed_entry(engine: Engine, record: Record) -> None:
    _ten(record)
    assert _refused(engine, update(audit_log).where(audit_log.c.chain_seq == 3).values(actor="x"))
    assert _refused(
        engine,
        update(audit_log).where(audit_log.c.chain_seq == 3).values(chain_seq=None, hash=None),
    )
    assert _refused(engine, update(audit_log).where(audit_log.c.chain_seq == 3).values(hash="0"))
    assert chain.verify(engine).ok


def test_database_lets_an_unsealed_entry_be_sealed_but_not_changed(
    engine: Engine, record: Record, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recorder, "SEAL_ON_FLUSH", False)
    record(Entry("Practitioner/p1", "pat1"))
    unsealed = audit_log.c.chain_seq.is_(None)
    assert _refused(engine, update(audit_log).where(unsealed).values(actor="Practitioner/p2"))
    assert _refused(
        engine, update(audit_log).where(unsealed).values(chain_seq=1, hash="0" * 64, detail="x")
    )
    assert chain.seal_all(engine) == 1
    assert chain.verify(engine).ok


def test_database_refuses_to_delete_entries(engine: Engine, record: Record) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite row triggers cannot tell a reset from a deletion; the chain does")
    _ten(record)
    assert _refused(engine, audit_log.delete().where(audit_log.c.chain_seq == 3))
    assert _refused(engine, audit_log.delete().where(audit_log.c.chain_seq < 10))
    assert chain.verify(engine).checked == 10
    # Only emptying the whole log (a test or demo reset) is let through.
    with engine.begin() as conn:
        conn.execute(audit_log.delete())
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(audit_log)).scalar_one() == 0


def test_a_transaction_is_one_audit_entry_per_patient(client: Any, engine: Any) -> None:
    """One act, one entry: a Bundle of many resources of one card is audited once."""
    from sqlalchemy import select as sql_select

    from medcard.db.tables import audit_log as log
    from tests import factories

    entries = [
        {
            "fullUrl": "urn:uuid:7a1f0c7e-0000-4000-8000-000000000001",
            "resource": factories.patient(),
            "request": {"method": "POST", "url": "Patient"},
        }
    ]
    for i in range(5):
        obs = factories.observation("x", value=120.0 + i)
        obs["subject"] = {"reference": "urn:uuid:7a1f0c7e-0000-4000-8000-000000000001"}
        entries.append({"resource": obs, "request": {"method": "POST", "url": "Observation"}})
    r = client.post(
        "/fhir", json={"resourceType": "Bundle", "type": "transaction", "entry": entries}
    )
    assert r.status_code == 200, r.text
    with engine.connect() as conn:
        rows = conn.execute(
            sql_select(log.c.interaction, log.c.detail).where(log.c.interaction == "create")
        ).all()
    assert len(rows) == 1
    assert rows[0].detail.startswith("6 resources: ")
