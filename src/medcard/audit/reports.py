"""Reading the audit log for people: who opened a card, one's own access history, reports.

Framework-free: the pages, the CLI and tests call these.  Every query is a filter on
indexed columns (patient, actor, time) and returns rows newest first for pages, or
streams them oldest first for exports.

Names shown for actors come from the record itself (Practitioner, Organization read
through the FHIR core as ``system:audit``, so those look-ups pass the same gate and
leave their own audit entries) and from sign-in accounts; a :class:`Directory` caches
them for one page.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from sqlalchemy import ColumnElement, Engine, Row, false, func, or_, select

from medcard.audit.events import organization_ref, to_audit_event
from medcard.db.tables import accounts, audit_log, oauth_clients
from medcard.ru_dates import parse_day

PAGE_SIZE = 50
EXPORT_CHUNK = 1000


def moscow() -> tzinfo:
    try:
        return ZoneInfo("Europe/Moscow")
    except ZoneInfoNotFoundError:  # no tz database: Moscow has kept UTC+3 since 2014
        return timezone(timedelta(hours=3), "MSK")


def organization_forms(value: str) -> tuple[str, ...]:
    """Both ways an organisation may be written in an entry: ``Organization/x`` and ``x``."""
    ref = organization_ref(value.strip())
    return (ref, ref.split("/", 1)[1])


@dataclass(frozen=True)
class AuditFilter:
    """Which entries; every given criterion must hold.

    ``within_organization`` is a limit imposed by the reader's role (an organisation's
    administrator sees only entries made for that organisation), unlike
    ``organization``, which the reader chose.
    """

    patient_ids: frozenset[str] = frozenset()
    actors: frozenset[str] = frozenset()
    organization: str = ""
    within_organization: str | None = None
    since: int | None = None  # microseconds, inclusive
    until: int | None = None  # microseconds, exclusive
    emergency_only: bool = False

    def conditions(self) -> list[ColumnElement[bool]]:
        c = audit_log.c
        conds: list[ColumnElement[bool]] = []
        if self.patient_ids:
            conds.append(c.patient_id.in_(sorted(self.patient_ids)))
        if self.actors:
            conds.append(c.actor.in_(sorted(self.actors)))
        if self.organization:
            conds.append(c.organization.in_(organization_forms(self.organization)))
        if self.within_organization is not None:
            if self.within_organization:
                conds.append(c.organization.in_(organization_forms(self.within_organization)))
            else:
                conds.append(false())  # an administrator of no organisation sees nothing
        if self.since is not None:
            conds.append(c.recorded >= self.since)
        if self.until is not None:
            conds.append(c.recorded < self.until)
        if self.emergency_only:
            conds.append(c.emergency.is_(True))
        return conds


def count(engine: Engine, flt: AuditFilter) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(audit_log).where(*flt.conditions())
            ).scalar_one()
        )


def page(
    engine: Engine, flt: AuditFilter, *, limit: int = PAGE_SIZE, offset: int = 0
) -> list[Row[Any]]:
    """Newest first."""
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(audit_log)
                .where(*flt.conditions())
                .order_by(audit_log.c.recorded.desc(), audit_log.c.id.desc())
                .limit(limit)
                .offset(offset)
            ).all()
        )


def stream(engine: Engine, flt: AuditFilter, *, chunk: int = EXPORT_CHUNK) -> Iterator[Row[Any]]:
    """Every matching entry, oldest id first, a chunk per query (keyset paging)."""
    last = 0
    while True:
        with engine.connect() as conn:
            rows = conn.execute(
                select(audit_log)
                .where(*flt.conditions(), audit_log.c.id > last)
                .order_by(audit_log.c.id)
                .limit(chunk)
            ).all()
        yield from rows
        if len(rows) < chunk:
            return
        last = int(rows[-1].id)


# -- export formats --------------------------------------------------------------------


def ndjson_lines(rows: Iterable[Row[Any]]) -> Iterator[bytes]:
    """AuditEvent resources, one JSON document per line (FHIR bulk data NDJSON)."""
    for row in rows:
        yield orjson.dumps(to_audit_event(row)) + b"\n"


CSV_COLUMNS = (
    "id",
    "recorded",
    "actor",
    "client_id",
    "organization",
    "action",
    "interaction",
    "resource_type",
    "resource_id",
    "patient_id",
    "outcome",
    "purpose",
    "emergency",
    "detail",
    "request_id",
    "chain_seq",
    "hash",
)


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    # A spreadsheet runs a cell that starts like a formula: keep it text.
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def csv_lines(rows: Iterable[Row[Any]]) -> Iterator[bytes]:
    """CSV with a header; instants as UTC ISO 8601, so any spreadsheet sorts them."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_COLUMNS)
    yield buf.getvalue().encode()
    for row in rows:
        buf.seek(0)
        buf.truncate()
        m = row._mapping
        values = []
        for name in CSV_COLUMNS:
            value = m[name]
            if name == "recorded":
                value = datetime.fromtimestamp(value / 1_000_000, UTC).isoformat(
                    timespec="milliseconds"
                )
            elif name == "emergency":
                value = "1" if value else "0"
            values.append(_cell(value))
        writer.writerow(values)
        yield buf.getvalue().encode()


# -- dates -----------------------------------------------------------------------------


def day_start(day: date, tz: tzinfo) -> int:
    """Microseconds at local midnight starting ``day``."""
    return int(datetime.combine(day, time(0), tz).timestamp() * 1_000_000)


def period(since: str, until: str, tz: tzinfo) -> tuple[int | None, int | None]:
    """Inclusive local dates (ДД.ММ.ГГГГ or ISO; empty for open) as [since, until) µs."""
    low = day_start(parse_day(since), tz) if since else None
    high = day_start(parse_day(until) + timedelta(days=1), tz) if until else None
    return low, high


# -- who is who ------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    """An actor as shown to people: a name, a kind (role key), a detail (specialty)."""

    kind: str  # patient | practitioner | registrar | org_admin | ... | system | client | unknown
    name: str = ""
    detail: str = ""
    fhir_ref: str = ""


def human_name(resource: dict[str, Any]) -> str:
    """Russian order: family, given names (the second given name is the patronymic)."""
    names = resource.get("name") or []
    if not isinstance(names, list) or not names:
        return ""
    official = next((n for n in names if n.get("use") == "official"), names[0])
    if official.get("text"):
        return str(official["text"])
    parts = [official.get("family", ""), *official.get("given", [])]
    return " ".join(str(p) for p in parts if p)


def _qualification(resource: dict[str, Any]) -> str:
    for q in resource.get("qualification") or []:
        code = q.get("code") or {}
        text = code.get("text") or next(
            (c.get("display") for c in code.get("coding") or [] if c.get("display")), ""
        )
        if text:
            return str(text)
    return ""


_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_ELEMENTS = {"Practitioner": "name,qualification", "Organization": "name"}
_LOOKUP_CHUNK = 100


@dataclass
class Directory:
    """Names for actors and organisations, looked up once per page.

    :meth:`prefetch` resolves a whole page with one accounts query and one FHIR search
    per resource type; anything not prefetched is read on first use.
    """

    engine: Engine
    _people: dict[str, Person] = field(default_factory=dict)
    _resources: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    _apps: dict[str, str] = field(default_factory=dict)

    def prefetch(self, rows: Iterable[Row[Any]]) -> None:
        rows = list(rows)
        self._fetch_apps({r.client_id for r in rows if r.client_id})
        wanted = {r.actor for r in rows} - self._people.keys()
        account_ids = [a.split("/", 1)[1] for a in wanted if a.startswith("Account/")]
        refs = [a for a in wanted if a.startswith(("Practitioner/", "Patient/"))]
        if account_ids or refs:
            with self.engine.connect() as conn:
                found = conn.execute(
                    select(
                        accounts.c.id, accounts.c.role, accounts.c.display_name, accounts.c.fhir_ref
                    ).where(or_(accounts.c.id.in_(account_ids), accounts.c.fhir_ref.in_(refs)))
                ).all()
            for acc in found:
                person = Person(acc.role, acc.display_name, fhir_ref=acc.fhir_ref)
                if f"Account/{acc.id}" in wanted:
                    self._people[f"Account/{acc.id}"] = person
                if acc.fhir_ref in wanted and acc.fhir_ref not in self._people:
                    self._people[acc.fhir_ref] = person
        for actor in wanted - self._people.keys():
            self._people[actor] = _kind_of(actor)
        practitioners = {
            p.fhir_ref.split("/", 1)[1]
            for p in self._people.values()
            if p.kind == "practitioner" and p.fhir_ref.startswith("Practitioner/")
        }
        self._fetch("Practitioner", practitioners)
        orgs = {organization_ref(r.organization).split("/", 1)[1] for r in rows if r.organization}
        self._fetch("Organization", orgs)

    def _fetch(self, resource_type: str, ids: Iterable[str]) -> None:
        """Read resources of one type by id, through the FHIR core (gate and audit)."""
        from medcard.access.context import AccessContext
        from medcard.fhir import local

        todo = sorted(
            i
            for i in ids
            if f"{resource_type}/{i}" not in self._resources and _FHIR_ID.fullmatch(i)
        )
        ctx = AccessContext.system("system:audit")
        for start in range(0, len(todo), _LOOKUP_CHUNK):
            chunk = todo[start : start + _LOOKUP_CHUNK]
            query = (
                f"_id={','.join(chunk)}&_count={len(chunk)}&_elements={_ELEMENTS[resource_type]}"
            )
            resp = local.call(self.engine, ctx, "GET", f"{resource_type}?{query}")
            if resp.status == 200:
                for entry in orjson.loads(resp.body_bytes()).get("entry") or []:
                    resource = entry.get("resource") or {}
                    self._resources[f"{resource_type}/{resource.get('id')}"] = resource
            for rid in chunk:
                self._resources.setdefault(f"{resource_type}/{rid}", None)

    def _resource(self, reference: str) -> dict[str, Any] | None:
        resource_type, _, rid = reference.partition("/")
        if reference not in self._resources and resource_type in _ELEMENTS:
            self._fetch(resource_type, [rid])
        return self._resources.get(reference)

    def person(self, actor: str) -> Person:
        if actor not in self._people:
            self._people[actor] = _kind_of(actor)
        person = self._people[actor]
        if person.kind == "practitioner" and person.fhir_ref.startswith("Practitioner/"):
            resource = self._resource(person.fhir_ref)
            if resource is not None:
                return Person(
                    "practitioner",
                    human_name(resource) or person.name,
                    _qualification(resource),
                    fhir_ref=person.fhir_ref,
                )
        return person

    def app(self, client_id: str) -> str:
        """The name of the OAuth client (a registered app) ``client_id`` is, else ""
        (the web pages' "web", the CLI's "cli" and the like are no app: issue 22)."""
        if not client_id:
            return ""
        if client_id not in self._apps:
            self._fetch_apps({client_id})
        return self._apps[client_id]

    def _fetch_apps(self, client_ids: set[str]) -> None:
        todo = sorted(client_ids - self._apps.keys())
        if not todo:
            return
        with self.engine.connect() as conn:
            found = conn.execute(
                select(oauth_clients.c.client_id, oauth_clients.c.name).where(
                    oauth_clients.c.client_id.in_(todo)
                )
            ).all()
        self._apps.update(dict.fromkeys(todo, ""))
        self._apps.update({row.client_id: row.name for row in found})

    def organization(self, value: str) -> str:
        """The organisation's name, or its reference when the record does not know it."""
        if not value:
            return ""
        ref = organization_ref(value)
        resource = self._resource(ref)
        return str((resource or {}).get("name") or ref)


def _kind_of(actor: str) -> Person:
    """What the actor string itself says (no account links to it)."""
    kind, _, _ = actor.partition("/")
    if kind == "Practitioner":
        return Person("practitioner", fhir_ref=actor)
    if kind == "Patient":
        # Another patient's name is not read from their card for this page.
        return Person("patient", fhir_ref=actor)
    if kind == "Account":
        return Person("unknown")
    if actor.startswith("system:") or actor == "system":
        return Person("system")
    if kind in ("Client", "Device") or actor.startswith("client:"):
        return Person("client", actor.split("/", 1)[-1].removeprefix("client:"))
    return Person("unknown", actor)
