"""Crash consistency: kill the server (and PostgreSQL) mid-write, restart, and check
the store against what the clients were told.

Client threads send transaction Bundles (a Patient and its Observations, every entry
with ``ifNoneExist`` on its own identifier) and updates (each client owns a few
"counter" Patients: created with a conditional update, then updated with ``If-Match``).
Every request and every acknowledgement goes to the client's log.  A killer thread
SIGKILLs the server at random moments (on PostgreSQL it also stops the database with
``pg_ctl -m immediate`` about half the time), restarts it, and the clients retry what
got no answer, exactly as a careful integrator would.  After the last crash the store
is checked against the log:

* every acknowledged write is there, with the id and version the client was given;
* no Bundle is partly stored (all of its entries or none);
* no identifier is stored twice (retries of ``If-None-Exist`` and conditional updates
  made no duplicates);
* history is consistent: versions 1..N without gaps, the current row equals the last
  version, ``meta.versionId`` matches, and the search index finds every current resource.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from reliability.procs import PrivatePostgres, Server, migrate, system_token
from sqlalchemy import Engine, create_engine, func, select

from medcard.db.tables import resource_versions, resources, sp_token

SYS_PATIENT = "urn:medcard:reliability:patient"
SYS_OBS = "urn:medcard:reliability:observation"
SYS_COUNTER = "urn:medcard:reliability:counter"
FHIR = "application/fhir+json"


@dataclass
class CrashConfig:
    kills: int = 50
    clients: int = 4
    obs_per_bundle: int = 3
    counters_per_client: int = 2
    min_gap: float = 0.15  # seconds of load between a restart and the next kill
    max_gap: float = 1.0
    db_kill_probability: float = 0.5  # PostgreSQL only
    seed: int = 8
    min_bundles: int = 0  # keep going after the kills until this many Bundles are acknowledged


@dataclass
class CrashReport:
    backend: str
    kills: int = 0
    db_kills: int = 0
    bundles_acked: int = 0
    bundle_attempts: int = 0
    bundles_deduplicated: int = 0  # a retry that found the Bundle already stored
    updates_acked: int = 0
    update_attempts: int = 0
    updates_confirmed_by_read: int = 0  # a retried If-Match update got 412: it had applied
    retries: int = 0
    http_5xx: Counter[int] = field(default_factory=Counter)
    restart_seconds: list[float] = field(default_factory=list)
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        restart = max(self.restart_seconds, default=0.0)
        return (
            f"{self.backend}: {self.kills} server kills ({self.db_kills} with the database "
            f"stopped immediately), {self.bundles_acked} Bundles acknowledged "
            f"({self.bundle_attempts} sends, {self.bundles_deduplicated} retries found "
            f"the Bundle stored), {self.updates_acked} updates acknowledged "
            f"({self.updates_confirmed_by_read} confirmed by a 412 and a read), "
            f"{self.retries} retries, 503s {self.http_5xx.get(503, 0)}, "
            f"other 5xx {sum(n for s, n in self.http_5xx.items() if s != 503)}, "
            f"slowest restart {restart:.1f} s, {self.seconds:.0f} s; "
            f"{len(self.problems)} problems"
        )


class _Gate:
    """Whether the server is up; clients wait here after a failed request."""

    def __init__(self) -> None:
        self.up = threading.Event()
        self.stop = threading.Event()
        self.generation = 0


class _Client(threading.Thread):
    def __init__(
        self, n: int, base: str, token: str, gate: _Gate, cfg: CrashConfig, report: CrashReport
    ) -> None:
        super().__init__(name=f"crash-client-{n}", daemon=True)
        self.n = n
        self.fhir = base + "/fhir"
        self.gate = gate
        self.cfg = cfg
        self.report = report
        self.rnd = random.Random(cfg.seed * 1000 + n)  # noqa: S311 - workload, not security
        self.http = httpx.Client(
            headers={"Authorization": f"Bearer {token}", "Content-Type": FHIR, "Accept": FHIR},
            timeout=httpx.Timeout(30, connect=2),
        )
        self.log: list[dict[str, Any]] = []
        self.counters: dict[str, dict[str, Any]] = {}  # key -> id, version, value
        self.error: BaseException | None = None
        self.lock = threading.Lock()
        self.attempts = 0

    # -- transport with retries ------------------------------------------------------

    def send(self, method: str, url: str, **kw: Any) -> httpx.Response:
        """Until the server gives a definite answer: retry on a dropped connection or 503.
        ``self.attempts`` says how many tries it took."""
        attempt = 0
        while True:
            attempt += 1
            self.attempts = attempt
            if attempt > 1000:
                raise RuntimeError(f"{method} {url}: no answer after 1000 attempts")
            if not self.gate.up.wait(timeout=120):
                raise RuntimeError("the server did not come back in 120 s")
            try:
                r = self.http.request(method, url, **kw)
            except httpx.TransportError:
                self._retry_pause()
                continue
            if r.status_code >= 500:
                with self.lock:
                    self.report.http_5xx[r.status_code] += 1
                if r.status_code != 503:
                    self.report.problems.append(f"{method} {url}: {r.status_code} {r.text[:300]}")
                self._retry_pause()
                continue
            if r.status_code == 409:  # a concurrent writer: retry, as the outcome says
                self._retry_pause()
                continue
            return r

    def _retry_pause(self) -> None:
        with self.lock:
            self.report.retries += 1
        time.sleep(0.05 + self.rnd.random() * 0.1)

    # -- operations -----------------------------------------------------------------

    def run(self) -> None:
        try:
            seq = 0
            while not self.gate.stop.is_set():
                seq += 1
                if self.rnd.random() < 0.6:
                    self.bundle(f"c{self.n}-{seq}")
                else:
                    self.counter_step()
        except BaseException as exc:  # reported by the driver
            self.error = exc
        finally:
            self.http.close()

    def bundle(self, key: str) -> None:
        cfg = self.cfg
        patient_url = f"urn:uuid:{uuid.uuid4()}"
        entries: list[dict[str, Any]] = [
            {
                "fullUrl": patient_url,
                "resource": {
                    "resourceType": "Patient",
                    "identifier": [{"system": SYS_PATIENT, "value": key}],
                    "name": [{"family": "Испытуемая", "given": ["Вера", key]}],
                    "gender": "female",
                    "birthDate": "1984-03-0" + str(1 + self.rnd.randrange(9)),
                },
                "request": {
                    "method": "POST",
                    "url": "Patient",
                    "ifNoneExist": f"identifier={SYS_PATIENT}|{key}",
                },
            }
        ]
        for i in range(cfg.obs_per_bundle):
            okey = f"{key}-{i}"
            entries.append(
                {
                    "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                    "resource": {
                        "resourceType": "Observation",
                        "status": "final",
                        "identifier": [{"system": SYS_OBS, "value": okey}],
                        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                        "subject": {"reference": patient_url},
                        "effectiveDateTime": "2025-01-15T10:00:00+03:00",
                        "valueQuantity": {
                            "value": 60 + i,
                            "unit": "/min",
                            "system": "http://unitsofmeasure.org",
                            "code": "/min",
                        },
                    },
                    "request": {
                        "method": "POST",
                        "url": "Observation",
                        "ifNoneExist": f"identifier={SYS_OBS}|{okey}",
                    },
                }
            )
        body = orjson.dumps({"resourceType": "Bundle", "type": "transaction", "entry": entries})
        self.log.append({"op": "bundle-sent", "key": key})
        r = self.send("POST", self.fhir + "/", content=body)
        sends = self.attempts
        with self.lock:
            self.report.bundle_attempts += sends
        if r.status_code != 200:
            self.report.problems.append(f"Bundle {key}: {r.status_code} {r.text[:300]}")
            return
        out = r.json()
        ids = [e["response"]["location"].split("/")[1] for e in out["entry"]]
        statuses = [e["response"]["status"] for e in out["entry"]]
        if sends > 1 and all(s.startswith("200") for s in statuses):
            with self.lock:
                self.report.bundles_deduplicated += 1
        if len({s[:3] for s in statuses}) > 1:
            self.report.problems.append(f"Bundle {key}: mixed entry statuses {statuses}")
        self.log.append({"op": "bundle-ack", "key": key, "ids": ids, "statuses": statuses})
        with self.lock:
            self.report.bundles_acked += 1

    def counter_step(self) -> None:
        key = f"c{self.n}-counter-{self.rnd.randrange(self.cfg.counters_per_client)}"
        state = self.counters.get(key)
        value = 0 if state is None else state["value"] + 1
        body: dict[str, Any] = {
            "resourceType": "Patient",
            "identifier": [{"system": SYS_COUNTER, "value": key}],
            "name": [{"family": "Счётчик", "given": [key, str(value)]}],
            "gender": "male",
        }
        self.log.append({"op": "update-sent", "key": key, "value": value})
        with self.lock:
            self.report.update_attempts += 1
        if state is None:
            # a conditional update creates the counter once, however often it is retried
            r = self.send(
                "PUT", f"{self.fhir}/Patient", params={"identifier": f"{SYS_COUNTER}|{key}"},
                content=orjson.dumps(body),
            )  # fmt: skip
            if r.status_code not in (200, 201):
                self.report.problems.append(f"counter {key} create: {r.status_code} {r.text[:300]}")
                return
            stored = r.json()
        else:
            body["id"] = state["id"]
            url = f"{self.fhir}/Patient/{state['id']}"
            r = self.send(
                "PUT", url, content=orjson.dumps(body),
                headers={"If-Match": f'W/"{state["version"]}"'},
            )  # fmt: skip
            if r.status_code == 412:
                # The first try applied before the crash took the answer: read to confirm.
                current = self.send("GET", url).json()
                if current["name"][0]["given"][1] != str(value):
                    self.report.problems.append(
                        f"counter {key}: 412 at version {state['version']} but the stored "
                        f"value is {current['name'][0]['given'][1]}, not ours ({value})"
                    )
                    return
                stored = current
                with self.lock:
                    self.report.updates_confirmed_by_read += 1
            elif r.status_code != 200:
                self.report.problems.append(f"counter {key} update: {r.status_code} {r.text[:300]}")
                return
            else:
                stored = r.json()
        version = int(stored["meta"]["versionId"])
        self.counters[key] = {"id": stored["id"], "version": version, "value": value}
        self.log.append(
            {"op": "update-ack", "key": key, "id": stored["id"], "version": version, "value": value}
        )
        with self.lock:
            self.report.updates_acked += 1


def run_crash(
    backend: str, work_dir: Path, cfg: CrashConfig, *, progress: Any = None
) -> CrashReport:
    """``backend``: "sqlite" or "postgresql" (a private cluster, stopped at random)."""
    report = CrashReport(backend)
    work_dir.mkdir(parents=True, exist_ok=True)
    pg: PrivatePostgres | None = None
    if backend == "postgresql":
        pg = PrivatePostgres().init()
        url = pg.create_database("medcard")
    else:
        url = f"sqlite:///{work_dir / 'medcard.sqlite3'}"
    began = time.monotonic()
    server = Server(work_dir, url)
    clients: list[_Client] = []
    try:
        migrate(url, work_dir)
        token = system_token(work_dir)
        report.restart_seconds.append(server.start())
        gate = _Gate()
        gate.up.set()
        clients = [_Client(i, server.base, token, gate, cfg, report) for i in range(cfg.clients)]
        for c in clients:
            c.start()
        rnd = random.Random(cfg.seed)  # noqa: S311 - timing of faults, not security

        def crash() -> None:
            gate.up.clear()
            server.kill()
            report.kills += 1
            if pg is not None and rnd.random() < cfg.db_kill_probability:
                pg.stop("immediate")
                report.db_kills += 1
                pg.start()
            report.restart_seconds.append(_start(server))
            gate.up.set()

        while report.kills < cfg.kills or report.bundles_acked < cfg.min_bundles:
            time.sleep(cfg.min_gap + rnd.random() * (cfg.max_gap - cfg.min_gap))
            if any(c.error for c in clients):
                break
            crash()
            if progress is not None:
                progress(report)
        gate.stop.set()
        for c in clients:
            c.join(timeout=180)
            if c.error is not None:
                report.problems.append(f"{c.name} failed: {c.error!r}")
            elif c.is_alive():
                report.problems.append(f"{c.name} did not finish")
        # One more crash after the last acknowledgement: everything must survive it.
        crash()
        server.kill()
        _write_log(work_dir, clients)
        report.problems.extend(verify(url, work_dir, clients, cfg))
        escaped = server.log_tail(10**9).count("Exception in ASGI application")
        if escaped:
            report.problems.append(f"{escaped} errors escaped the application (server log)")
    finally:
        server.kill()
        if pg is not None:
            pg.destroy()
    report.seconds = time.monotonic() - began
    return report


def _start(server: Server) -> float:
    """Start the server; a start that fails is retried (the code on disk may be caught
    mid-edit in a shared checkout), up to five times."""
    for attempt in range(5):
        try:
            return server.start()
        except RuntimeError:
            if attempt == 4:
                raise
            time.sleep(5)
    raise AssertionError("unreachable")


def _write_log(work_dir: Path, clients: list[_Client]) -> None:
    with (work_dir / "client-log.jsonl").open("w") as f:
        for c in clients:
            for entry in c.log:
                f.write(json.dumps({"client": c.n, **entry}, ensure_ascii=False) + "\n")


def _engine(url: str) -> Engine:
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return create_engine(url)


def verify(url: str, work_dir: Path, clients: list[_Client], cfg: CrashConfig) -> list[str]:
    """Compare the store with the clients' log; every line returned is a violation."""
    problems: list[str] = []
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            current = {
                (t, i): (v, bool(d), c)
                for t, i, v, d, c in conn.execute(
                    select(
                        resources.c.resource_type,
                        resources.c.id,
                        resources.c.version_id,
                        resources.c.deleted,
                        resources.c.content,
                    )
                )
            }
            versions: dict[tuple[str, str], dict[int, tuple[bool, bytes]]] = defaultdict(dict)
            for t, i, v, d, c in conn.execute(
                select(
                    resource_versions.c.resource_type,
                    resource_versions.c.id,
                    resource_versions.c.version_id,
                    resource_versions.c.deleted,
                    resource_versions.c.content,
                )
            ):
                versions[(t, i)][v] = (bool(d), c)
            indexed = {
                (t, i)
                for t, i, _n in conn.execute(
                    select(sp_token.c.resource_type, sp_token.c.resource_id, func.count())
                    .where(sp_token.c.param == "identifier")
                    .group_by(sp_token.c.resource_type, sp_token.c.resource_id)
                )
            }
    finally:
        engine.dispose()

    # History: versions 1..N, the current row is the last version, meta agrees.
    for key, (version, deleted, content) in current.items():
        hist = versions.get(key, {})
        if sorted(hist) != list(range(1, version + 1)):
            problems.append(f"{key}: history versions {sorted(hist)}, current {version}")
            continue
        if hist[version] != (deleted, content):
            problems.append(f"{key}: the current row differs from version {version}")
        for v, (_d, c) in hist.items():
            meta = orjson.loads(c).get("meta", {})
            if not _d and meta.get("versionId") != str(v):
                problems.append(f"{key} version {v}: meta.versionId {meta.get('versionId')}")
        if not deleted and key[0] in ("Patient", "Observation") and key not in indexed:
            problems.append(f"{key}: not in the identifier search index")
    for key in versions.keys() - current.keys():
        problems.append(f"{key}: versions without a current row")

    # Identifiers: each stored once.
    by_ident: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    docs: dict[tuple[str, str], dict[str, Any]] = {}
    for key, (_v, deleted, content) in current.items():
        if deleted or key[0] not in ("Patient", "Observation"):
            continue
        doc = orjson.loads(content)
        docs[key] = doc
        for ident in doc.get("identifier", []):
            by_ident[(ident.get("system", ""), ident.get("value", ""))].append(key)
    for ident, keys in by_ident.items():
        if len(keys) > 1:
            problems.append(f"identifier {ident} stored {len(keys)} times: {keys}")

    # Bundles: acknowledged ones whole, with the ids given; none partly stored.
    sent: set[str] = set()
    acked: dict[str, list[str]] = {}
    for c in clients:
        for entry in c.log:
            if entry["op"] == "bundle-sent":
                sent.add(entry["key"])
            elif entry["op"] == "bundle-ack":
                acked[entry["key"]] = entry["ids"]
    for key in sorted(sent):
        wanted = [(SYS_PATIENT, key)] + [(SYS_OBS, f"{key}-{i}") for i in range(cfg.obs_per_bundle)]
        found = [by_ident.get(w, []) for w in wanted]
        present = sum(1 for f in found if f)
        if present not in (0, len(wanted)):
            problems.append(f"Bundle {key} is partly stored: {present} of {len(wanted)} entries")
        if key in acked:
            if present != len(wanted):
                problems.append(f"acknowledged Bundle {key} is missing ({present} entries)")
                continue
            got = [f[0][1] for f in found]
            if got != acked[key]:
                problems.append(f"Bundle {key}: stored ids {got}, acknowledged {acked[key]}")
            pid = got[0]
            for f in found[1:]:
                subject = docs[f[0]].get("subject", {}).get("reference")
                if subject != f"Patient/{pid}":
                    problems.append(f"Bundle {key}: {f[0]} points at {subject}, not Patient/{pid}")
    for system, value in by_ident:
        if system == SYS_PATIENT and value not in sent:
            problems.append(f"Patient {value} stored but never sent")

    # Counters: every acknowledged version holds what was written; nothing went back.
    for c in clients:
        last: dict[str, dict[str, Any]] = {}
        for entry in c.log:
            if entry["op"] != "update-ack":
                continue
            key = ("Patient", entry["id"])
            hist = versions.get(key, {})
            got = hist.get(entry["version"])
            if got is None:
                problems.append(f"counter {entry['key']} version {entry['version']} is missing")
                continue
            value = orjson.loads(got[1])["name"][0]["given"][1]
            if value != str(entry["value"]):
                problems.append(
                    f"counter {entry['key']} version {entry['version']} holds {value}, "
                    f"acknowledged {entry['value']}"
                )
            last[entry["key"]] = entry
        for ckey, entry in last.items():
            stored = by_ident.get((SYS_COUNTER, ckey), [])
            if len(stored) != 1:
                problems.append(f"counter {ckey}: {len(stored)} resources")
                continue
            now = int(docs[stored[0]]["name"][0]["given"][1])
            if now < entry["value"]:
                problems.append(f"counter {ckey} went back: {now} < {entry['value']}")
    return problems
