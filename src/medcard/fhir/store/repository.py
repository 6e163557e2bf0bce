"""The one door to clinical data: a repository bound to the caller's access context.

Every read, search, history and operation turns the caller's restriction into SQL
predicates; every write checks the restriction before and after (the compartment
of the old and of the new version) and lands in one transaction with its version
row, its index rows and its audit entry.  What the caller may not see is "not found".
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import (
    Connection,
    Engine,
    and_,
    delete,
    false,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    true,
    tuple_,
    update,
)
from sqlalchemy.exc import IntegrityError

from medcard.access.context import AccessContext
from medcard.access.policy import (
    VERBS,
    Restriction,
    in_patient_compartment,
    lab_referrals,
    may_change,
    restriction,
    stamp_author,
)
from medcard.access.relations import referral_addressed_to
from medcard.access.roles import Role
from medcard.audit.recorder import DENIED, FAILED, AuditBuffer
from medcard.clock import format_instant, now_micros
from medcard.db import statistics
from medcard.db.tables import INDEX_TABLES, resource_versions, resources, sp_reference, sp_token
from medcard.fhir import hooks, jsonio, spec
from medcard.fhir.outcomes import (
    FhirError,
    Issue,
    bad_request,
    conflict,
    not_found,
    precondition_failed,
)
from medcard.fhir.search import query as sql
from medcard.fhir.search.indexer import index_rows
from medcard.fhir.search.params import SearchRequest, parse
from medcard.fhir.search.values import MIN_US
from medcard.fhir.store.compartment import patient_of
from medcard.fhir.store.withdrawn import entered_in_error, nullifies, tombstone
from medcard.fhir.validation import check_resource_type, validate


@dataclass(frozen=True)
class Stored:
    resource_type: str
    id: str
    version_id: int
    last_updated: int
    content: bytes
    deleted: bool = False
    patient_id: str = ""
    hidden: bool = False  # entered in error: withdrawn from every view (issue 7)

    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = orjson.loads(self.content)
        return data

    def exact(self) -> dict[str, Any]:
        """The content with every decimal as stored (``fhir.jsonio``), to write it back."""
        data: dict[str, Any] = jsonio.lexical(self.content)
        return data

    @property
    def etag(self) -> str:
        return f'W/"{self.version_id}"'


@dataclass
class WriteResult:
    stored: Stored
    status: int  # 200 or 201
    warnings: list[Issue] = field(default_factory=list)


@dataclass
class SearchResult:
    matches: list[Stored]
    included: list[Stored]
    total: int | None
    request: SearchRequest


@dataclass
class HistoryEntry:
    stored: Stored
    method: str


# R4 datatypes.html#id: what a logical id may look like.  Anything else cannot name a
# stored resource (reads say "not found") and is refused as a client-chosen id.
ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def new_id() -> str:
    return str(uuid.uuid4())


# A signed document is immutable (issue 5): a Provenance whose signature.type is the
# ASTM E1762 author's signature and whose target names the resource marks it signed.
SIGNATURE_TYPE_SYSTEM = "urn:iso-astm:E1762-95:2013"
SIGNATURE_TYPE_CODE = "1.2.840.10065.1.12.1.1"
SIGNED_MESSAGE = "signed documents are corrected by a new signed version"


class Repository:
    def __init__(self, engine: Engine, ctx: AccessContext, base_url: str = "") -> None:
        self.engine = engine
        self.ctx = ctx
        self.base_url = base_url
        self.audit = AuditBuffer(ctx)
        self._conn: Connection | None = None
        self._pending: dict[str, list[dict[str, Any]]] = {}
        self._pg = engine.dialect.name == "postgresql"
        # (type, id) of signed resources the signing service is correcting in this unit of
        # work; it signs the new version before the transaction commits.
        self.signed_corrections: set[tuple[str, str]] = set()
        # Entries withdrawn as entered-in-error are "not found" for everyone; an auditor's
        # repository (and the corrections service reviewing its own decisions) sets this
        # to read them by id and in history.  Searches and $everything never show them.
        self.include_hidden = False
        self._written: Counter[str] = Counter()  # rows per table, for db.statistics

    # -- transactions -------------------------------------------------------------

    @contextmanager
    def unit_of_work(self) -> Iterator[None]:
        """One transaction for everything written inside; audit entries commit with it."""
        if self._conn is not None:
            yield
            return
        mark = len(self.audit.entries)
        self._written = Counter()
        try:
            with self.engine.begin() as conn:
                self._conn = conn
                yield
                self._flush()
                self.audit.flush(conn)
            statistics.written(self.engine, self._written)  # committed: keep plans right
        except BaseException as exc:
            # Nothing of the failed transaction happened: keep only denials, note the failure.
            kept = [e for e in self.audit.entries[mark:] if e["outcome"] == DENIED]
            self.audit.entries = self.audit.entries[:mark] + kept
            if isinstance(exc, FhirError | IntegrityError):
                self.audit.add("transaction", outcome=FAILED, detail=str(exc)[:500])
            if isinstance(exc, IntegrityError):
                # another request wrote the same resource at the same moment
                raise conflict("A concurrent request changed the same resource; retry") from None
            raise
        finally:
            self._conn = None
            self._pending = {}

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        if self._conn is not None:
            self._flush()
            yield self._conn
            return
        with self.engine.connect() as conn:
            if self._pg:
                # PostgreSQL's READ COMMITTED gives every statement its own snapshot
                # inside a transaction too, so BEGIN/COMMIT around reads buys nothing but
                # two round trips per request.
                conn.execution_options(isolation_level="AUTOCOMMIT")
                yield conn
                return
            conn.execution_options(readonly=True)
            with conn.begin():
                yield conn

    def close(self) -> None:
        """Write whatever audit entries remain (reads, denials) in their own transaction."""
        self.audit.flush_separately(self.engine)

    def _writer(self) -> Connection:
        if self._conn is None:
            raise RuntimeError("writes need a unit of work")
        return self._conn

    def _flush(self) -> None:
        if not self._pending or self._conn is None:
            return
        pending, self._pending = self._pending, {}
        for name in ("resources", "versions", *INDEX_TABLES):
            rows = pending.get(name)
            if rows:
                table = {"resources": resources, "versions": resource_versions}.get(name)
                target = table if table is not None else INDEX_TABLES[name]
                if self._pg and len(rows) > COPY_THRESHOLD:
                    _copy_rows(self._conn, target, rows)
                else:
                    self._conn.execute(insert(target), rows)
                self._written[target.name] += len(rows)

    # -- access -------------------------------------------------------------------

    def _restriction(self, resource_type: str, permission: str) -> Restriction:
        try:
            return restriction(self.ctx, resource_type, permission)
        except FhirError:
            self.audit.add(VERBS[permission], resource_type, outcome=DENIED, detail="scope")
            raise

    def _may_read_type(self, rtype: str) -> bool:
        try:
            restriction(self.ctx, rtype, "r")
        except FhirError:
            return False
        return True

    def _visible(self, allowed: Restriction, rtype: str, rid: str, patient_id: str) -> bool:
        """Whether one stored row passes the caller's restriction (same rule as the SQL)."""
        if allowed.allows(rtype, patient_id):
            return True
        if not allowed.needs_database:
            return False
        conds = []
        if allowed.related is not None and patient_id:
            conds.append(literal(patient_id).in_(allowed.related))
        if allowed.entries is not None:
            conds.append(tuple_(literal(rtype), literal(rid)).in_(allowed.entries))
        if not conds:
            return False
        with self._reading() as conn:
            return conn.execute(select(literal(1)).where(or_(*conds))).first() is not None

    def _deny_hidden(self, resource_type: str, rid: str, interaction: str) -> FhirError:
        """A resource outside the caller's compartments looks exactly like a missing one."""
        self.audit.add(interaction, resource_type, rid, outcome=DENIED, detail="compartment")
        return not_found(f"{resource_type}/{rid} is not known")

    def _unknown_for_update(self, rtype: str, rid: str, why: str) -> FhirError:
        """The one answer to a PUT on an id a compartment-limited caller cannot see,
        whether it is missing or in another record."""
        self.audit.add("update", rtype, rid, outcome=DENIED, detail=why)
        return not_found(f"{rtype}/{rid} is not known (new resources are created with POST)")

    # -- reads --------------------------------------------------------------------

    def _current(
        self, conn: Connection, rtype: str, rid: str, *, lock: bool = False
    ) -> Stored | None:
        if not ID.fullmatch(rid):
            return None
        stmt = select(
            resources.c.version_id,
            resources.c.last_updated,
            resources.c.content,
            resources.c.deleted,
            resources.c.patient_id,
            resources.c.hidden,
        ).where(resources.c.resource_type == rtype, resources.c.id == rid)
        row = conn.execute(stmt.with_for_update() if lock else stmt).first()
        if row is None:
            return None
        return Stored(rtype, rid, row[0], row[1], row[2], bool(row[3]), row[4], bool(row[5]))

    def _sees_withdrawn(self) -> bool:
        """Whether entered-in-error entries read back by id and in history (issue 21).

        R4 keeps such a resource readable with its status; staff and system callers
        read it so.  A patient's own views (and patient apps) leave it out, as the card
        does for everyone; auditors (``include_hidden``) see everything.
        """
        if self.include_hidden:
            return True
        patient_facing = self.ctx.role == Role.PATIENT or (
            self.ctx.role is None and bool(self.ctx.patient_ids)
        )
        return not patient_facing

    def _nullified(self, rtype: str, rid: str) -> bool:
        """Whether an accepted correction withdrew the entry (issue 7): a Provenance
        with the activity NULLIFY names it.  Such an entry stays gone for everyone."""
        ref = sp_reference
        provenances = select(ref.c.resource_id).where(
            ref.c.resource_type == "Provenance",
            ref.c.param == "target",
            ref.c.target_type == rtype,
            ref.c.target_id == rid,
        )
        with self._reading() as conn:
            rows = conn.execute(
                select(resources.c.content).where(
                    resources.c.resource_type == "Provenance",
                    resources.c.id.in_(provenances),
                    resources.c.deleted == false(),
                )
            ).all()
        return any(nullifies(orjson.loads(content)) for (content,) in rows)

    def _withdrawn(
        self, stored: Stored, interaction: str, *, write: bool = False
    ) -> FhirError | None:
        """Not found for an entry withdrawn as entered in error, unless the caller sees
        such entries; even then it is not changed any more (409), auditors excepted."""
        if not stored.hidden or self.include_hidden:
            return None
        rtype, rid = stored.resource_type, stored.id
        if self._sees_withdrawn() and not self._nullified(rtype, rid):
            if not write:
                return None
            self.audit.add(
                interaction,
                rtype,
                rid,
                stored.patient_id,
                outcome=DENIED,
                detail="entered-in-error",
            )
            return conflict(
                f"{rtype}/{rid} was entered in error and is withdrawn: it is not changed"
            )
        self.audit.add(
            interaction, rtype, rid, stored.patient_id, outcome=DENIED, detail="entered-in-error"
        )
        return not_found(f"{rtype}/{rid} is not known")

    def read(self, rtype: str, rid: str) -> Stored:
        check_type(rtype)
        allowed = self._restriction(rtype, "r")
        with self._reading() as conn:
            stored = self._current(conn, rtype, rid)
        if stored is None:
            raise not_found(f"{rtype}/{rid} is not known")
        if not self._visible(allowed, rtype, rid, stored.patient_id):
            raise self._deny_hidden(rtype, rid, "read")
        if (withdrawn := self._withdrawn(stored, "read")) is not None:
            raise withdrawn
        if stored.deleted:
            self.audit.add("read", rtype, rid, stored.patient_id, detail="deleted")
            raise FhirError(
                410, "deleted", f"{rtype}/{rid} was deleted", headers={"ETag": stored.etag}
            )
        self.audit.add("read", rtype, rid, stored.patient_id)
        return stored

    def vread(self, rtype: str, rid: str, version: str) -> Stored:
        check_type(rtype)
        allowed = self._restriction(rtype, "r")
        try:
            vid = int(version)
        except ValueError:
            raise not_found(f"Version '{version}' of {rtype}/{rid} is not known") from None
        if not ID.fullmatch(rid) or not -(2**31) < vid < 2**31:
            raise not_found(f"Version {version} of {rtype}/{rid} is not known")
        with self._reading() as conn:
            row = conn.execute(
                select(
                    resource_versions.c.last_updated,
                    resource_versions.c.content,
                    resource_versions.c.deleted,
                    resource_versions.c.patient_id,
                ).where(
                    resource_versions.c.resource_type == rtype,
                    resource_versions.c.id == rid,
                    resource_versions.c.version_id == vid,
                )
            ).first()
            current = self._current(conn, rtype, rid) if row is not None else None
        if row is None:
            raise not_found(f"Version {version} of {rtype}/{rid} is not known")
        if not self._visible(allowed, rtype, rid, row[3]):
            raise self._deny_hidden(rtype, rid, "vread")
        if current is not None and (withdrawn := self._withdrawn(current, "vread")) is not None:
            raise withdrawn
        self.audit.add("vread", rtype, rid, row[3], detail=f"version {vid}")
        if row[2]:
            raise FhirError(410, "deleted", f"Version {vid} of {rtype}/{rid} is a deletion")
        return Stored(rtype, rid, vid, row[0], row[1], False, row[3])

    def search(self, req: SearchRequest) -> SearchResult:
        check_type(req.resource_type)
        rtype = req.resource_type
        allowed = self._restriction(rtype, "s")
        if any("\x00" in v for f in req.filters for v in f.values):
            # nothing stored holds NUL (validation refuses it), and PostgreSQL cannot take it
            raise bad_request("Search values cannot contain the NUL character")
        chained = {
            f.chain.target_type: self._restriction(f.chain.target_type, "s")
            for f in req.filters
            if f.chain is not None
        }
        total: int | None = None
        matches: list[Stored] = []
        included: list[Stored] = []
        with self._reading() as conn:
            # _count=0 asks for the total alone (R4 3.1.1.5.6)
            if req.summary == "count" or req.count == 0 or req.total in ("accurate", "estimate"):
                total = conn.execute(
                    sql.count_statement(req, allowed, self.base_url, chained=chained)
                ).scalar_one()
            if req.summary != "count" and req.count > 0:
                stmt = sql.search_statement(
                    req, allowed, self.base_url, chained=chained
                ).with_only_columns(
                    resources.c.id,
                    resources.c.content,
                    resources.c.version_id,
                    resources.c.last_updated,
                    resources.c.patient_id,
                )
                for rid, content, vid, updated, pid in conn.execute(stmt):
                    matches.append(Stored(rtype, rid, vid, updated, content, False, pid))
                if matches and (req.include or req.revinclude):
                    included = self._includes(conn, req, matches)
        patients = {m.patient_id for m in [*matches, *included]}
        detail = f"{rtype} search, {len(matches)} matches"
        if not patients:
            self.audit.add("search", rtype, detail=detail)
        for pid in sorted(patients):
            ids = [m.id for m in matches if m.patient_id == pid][:20]
            self.audit.add(
                "search", rtype, ",".join(ids)[:64] if len(ids) == 1 else "", pid, detail=detail
            )
        return SearchResult(matches, included, total, req)

    def _includes(
        self, conn: Connection, req: SearchRequest, matches: list[Stored]
    ) -> list[Stored]:
        ref = INDEX_TABLES["reference"]
        seen = {(m.resource_type, m.id) for m in matches}
        out: list[Stored] = []
        wanted: set[tuple[str, str]] = set()
        for inc in req.include:
            ids = [m.id for m in matches if m.resource_type == inc.source_type]
            if not ids:
                continue
            stmt = select(ref.c.target_type, ref.c.target_id).where(
                ref.c.resource_type == inc.source_type,
                ref.c.param == inc.param,
                ref.c.resource_id.in_(ids),
                ref.c.target_type.is_not(None),
            )
            if inc.target_type:
                stmt = stmt.where(ref.c.target_type == inc.target_type)
            wanted.update((t, i) for t, i in conn.execute(stmt))
        for inc in req.revinclude:
            try:
                allowed = restriction(self.ctx, inc.source_type, "s")
            except FhirError:
                continue
            by_type: dict[str, list[str]] = {}
            for m in matches:
                by_type.setdefault(m.resource_type, []).append(m.id)
            for ttype, ids in by_type.items():
                rev = (
                    select(
                        resources.c.id,
                        resources.c.content,
                        resources.c.version_id,
                        resources.c.last_updated,
                        resources.c.patient_id,
                    )
                    .where(
                        resources.c.resource_type == inc.source_type,
                        resources.c.deleted == false(),
                        resources.c.hidden == false(),
                        sql.restriction_clause(allowed, inc.source_type),
                        resources.c.id.in_(
                            select(ref.c.resource_id).where(
                                ref.c.resource_type == inc.source_type,
                                ref.c.param == inc.param,
                                ref.c.target_type == ttype,
                                ref.c.target_id.in_(ids),
                            )
                        ),
                    )
                    .limit(1000)
                )
                for rid, content, vid, updated, pid in conn.execute(rev):
                    if (inc.source_type, rid) not in seen:
                        seen.add((inc.source_type, rid))
                        out.append(Stored(inc.source_type, rid, vid, updated, content, False, pid))
        by_target: dict[str, list[str]] = {}
        for t, i in wanted - seen:
            by_target.setdefault(t, []).append(i)
        for ttype, ids in by_target.items():
            if ttype not in spec.resource_types():
                continue
            try:
                allowed = restriction(self.ctx, ttype, "r")
            except FhirError:
                continue
            stmt = select(
                resources.c.id,
                resources.c.content,
                resources.c.version_id,
                resources.c.last_updated,
                resources.c.patient_id,
            ).where(
                resources.c.resource_type == ttype,
                resources.c.id.in_(ids),
                resources.c.deleted == false(),
                resources.c.hidden == false(),
                sql.restriction_clause(allowed, ttype),
            )
            for rid, content, vid, updated, pid in conn.execute(stmt):
                seen.add((ttype, rid))
                out.append(Stored(ttype, rid, vid, updated, content, False, pid))
        return out

    def history(
        self,
        rtype: str | None = None,
        rid: str | None = None,
        *,
        since: int | None = None,
        count: int = 50,
        offset: int = 0,
    ) -> tuple[list[HistoryEntry], int]:
        v = resource_versions
        conds: list[Any] = []
        if rtype is not None:
            check_type(rtype)
            conds.append(v.c.resource_type == rtype)
        if rid is not None and rtype is not None:
            allowed = self._restriction(rtype, "r")
            with self._reading() as conn:
                current = self._current(conn, rtype, rid)
            if current is None:
                raise not_found(f"{rtype}/{rid} is not known")
            if not self._visible(allowed, rtype, rid, current.patient_id):
                raise self._deny_hidden(rtype, rid, "history")
            if (withdrawn := self._withdrawn(current, "history")) is not None:
                raise withdrawn
            conds.append(v.c.id == rid)
        elif rtype is not None:
            allowed = self._restriction(rtype, "s")
            if allowed.patients is not None:
                conds.append(_patient_clause(v, allowed, rtype))
        else:
            allowed = _system_restriction(self.ctx)
            if allowed.patients is not None:
                outside = [t for t in spec.resource_types() if not in_patient_compartment(t)]
                conds.append(
                    or_(
                        v.c.patient_id.in_(sorted(allowed.patients)),
                        and_(v.c.patient_id == "", v.c.resource_type.in_(outside)),
                    )
                )
        if since is not None:
            conds.append(v.c.last_updated >= since)
        if rid is None and not self.include_hidden:
            # every version of a withdrawn entry leaves the history with it
            conds.append(
                ~select(literal(1))
                .where(
                    resources.c.resource_type == v.c.resource_type,
                    resources.c.id == v.c.id,
                    resources.c.hidden == true(),
                )
                .exists()
            )
        with self._reading() as conn:
            total = conn.execute(select(func.count()).select_from(v).where(*conds)).scalar_one()
            rows = conn.execute(
                select(
                    v.c.resource_type,
                    v.c.id,
                    v.c.version_id,
                    v.c.last_updated,
                    v.c.content,
                    v.c.deleted,
                    v.c.patient_id,
                    v.c.method,
                )
                .where(*conds)
                .order_by(v.c.last_updated.desc(), v.c.version_id.desc())
                .limit(count)
                .offset(offset)
            ).all()
        entries = [
            HistoryEntry(Stored(t, i, vid, lu, c, bool(d), p), m)
            for t, i, vid, lu, c, d, p, m in rows
        ]
        for pid in sorted({e.stored.patient_id for e in entries}) or [""]:
            self.audit.add(
                "history", rtype or "", rid or "", pid, detail=f"{len(entries)} versions"
            )
        return entries, total

    def everything(
        self,
        patient_id: str,
        *,
        since: int | None = None,
        types: list[str] | None = None,
        count: int = 1000,
        offset: int = 0,
    ) -> tuple[list[Stored], int]:
        """Patient/$everything: the patient, their compartment and what it references."""
        patient = self.read("Patient", patient_id)
        readable = {
            t for t in (types or spec.resource_types()) if t != "Patient" and self._may_read_type(t)
        }
        allowed = restriction(self.ctx, "Patient", "r")
        if not self._visible(allowed, "Patient", patient_id, patient_id):
            raise self._deny_hidden("Patient", patient_id, "everything")
        conds = [
            resources.c.patient_id == patient_id,
            resources.c.deleted == false(),
            resources.c.hidden == false(),
            resources.c.resource_type.in_(sorted(readable)),
            resources.c.resource_type != "Patient",
        ]
        if since is not None:
            conds.append(resources.c.last_updated >= since)
        cols = (
            resources.c.resource_type,
            resources.c.id,
            resources.c.version_id,
            resources.c.last_updated,
            resources.c.content,
        )
        # One ordered result paged as a whole: the patient, their compartment, then the
        # shared resources it references, so _count/_offset pages neither repeat nor skip.
        head = [patient] if (not types or "Patient" in types) and _since_ok(patient, since) else []
        with self._reading() as conn:
            rows_total = conn.execute(
                select(func.count()).select_from(resources).where(*conds)
            ).scalar_one()
            shared = self._everything_references(conn, patient_id, readable, since)
            out = head[offset : offset + count]
            row_offset = max(0, offset - len(head))
            if count > len(out):
                rows = conn.execute(
                    select(*cols)
                    .where(*conds)
                    .order_by(resources.c.resource_type, resources.c.last_updated, resources.c.id)
                    .limit(count - len(out))
                    .offset(row_offset)
                ).all()
                out += [Stored(t, i, v, lu, c, False, patient_id) for t, i, v, lu, c in rows]
            shared_offset = max(0, offset - len(head) - rows_total)
            out += shared[shared_offset : shared_offset + count - len(out)]
        self.audit.add(
            "everything", "Patient", patient_id, patient_id, detail=f"{len(out)} resources"
        )
        return out, len(head) + rows_total + len(shared)

    def _everything_references(
        self, conn: Connection, patient_id: str, readable: set[str], since: int | None
    ) -> list[Stored]:
        """Shared resources the compartment points to (practitioners, organisations, ...)."""
        ref = INDEX_TABLES["reference"]
        shared = sorted(t for t in readable if not in_patient_compartment(t))
        targets = (
            select(ref.c.target_type, ref.c.target_id)
            .where(ref.c.patient_id == patient_id, ref.c.target_type.in_(shared))
            .distinct()
            .subquery()
        )
        rows = conn.execute(
            select(
                resources.c.resource_type,
                resources.c.id,
                resources.c.version_id,
                resources.c.last_updated,
                resources.c.content,
            )
            .join(
                targets,
                and_(
                    resources.c.resource_type == targets.c.target_type,
                    resources.c.id == targets.c.target_id,
                ),
            )
            .where(
                resources.c.deleted == false(),
                resources.c.hidden == false(),
                resources.c.patient_id == "",
                resources.c.last_updated >= (since if since is not None else MIN_US),
            )
            .order_by(resources.c.resource_type, resources.c.id)
        ).all()
        return [Stored(t, i, v, lu, c) for t, i, v, lu, c in rows]

    # -- writes -------------------------------------------------------------------

    def create(
        self,
        resource: dict[str, Any],
        *,
        if_none_exist: str | None = None,
        rid: str | None = None,
        validated: list[Issue] | None = None,
    ) -> WriteResult:
        """``validated``: the warnings of a validation the caller already ran (transaction
        Bundles validate before taking the write lock)."""
        rtype = check_resource_type(resource)
        self._restriction(rtype, "c")
        warnings = validate(resource) if validated is None else validated
        if if_none_exist:
            existing = self.conditional_match(rtype, if_none_exist, "If-None-Exist")
            if len(existing) == 1:
                return WriteResult(existing[0], 200, warnings)
            if len(existing) > 1:
                raise precondition_failed(
                    f"If-None-Exist '{if_none_exist}' matches {len(existing)} {rtype} resources"
                )
        stored = self._insert(resource, rid or new_id(), 1, "POST")
        return WriteResult(stored, 201, warnings)

    def _for_write(self, conn: Connection, rtype: str, rid: str) -> Stored | None:
        """The current version, held until commit so racing writers take turns.

        SQLite writers already hold the database lock (BEGIN IMMEDIATE).  On PostgreSQL
        the row is locked (a second writer then sees the first one's version, so an
        update without If-Match applies after it instead of failing), and a missing id
        is claimed with an advisory lock so two PUTs creating it make one resource.
        """
        current = self._current(conn, rtype, rid, lock=True)
        if current is None and self._pg and ID.fullmatch(rid):
            conn.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"{rtype}/{rid}"}
            )
            current = self._current(conn, rtype, rid, lock=True)
        if (
            current is not None
            and (withdrawn := self._withdrawn(current, "write", write=True)) is not None
        ):
            raise withdrawn
        return current

    def conditional_match(self, rtype: str, query_text: str, what: str) -> list[Stored]:
        """What conditional-write criteria match; identical criteria are serialised."""
        from urllib.parse import parse_qsl

        query = parse_qsl(query_text.split("?", 1)[-1], keep_blank_values=True)
        if not query:
            raise bad_request(f"{what} needs search criteria")
        req = parse(rtype, query, default_count=2, max_count=2)
        req.count = 2
        if self._pg and self._conn is not None:
            # Serialise identical conditional writes so two racing clients make one resource.
            self._conn.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"{rtype}?{query_text}"}
            )
        return self.search(req).matches

    def update(
        self,
        rtype: str,
        rid: str,
        resource: dict[str, Any],
        *,
        if_match: str | None = None,
        validated: list[Issue] | None = None,
    ) -> WriteResult:
        check_resource_type(resource, rtype)
        if not ID.fullmatch(rid):
            raise bad_request(
                f"'{rid[:80]}' is not a valid id (1-64 of A-Z a-z 0-9 - .)", f"{rtype}.id"
            )
        body_id = resource.get("id")
        if body_id is None:
            raise bad_request("The resource in an update must carry its id", f"{rtype}.id")
        if body_id != rid:
            raise bad_request(
                f"The id in the body ('{body_id}') differs from the URL ('{rid}')", f"{rtype}.id"
            )
        warnings = validate(resource) if validated is None else validated
        # Scope first: the refusal must not depend on whether the id exists.
        allowed = self._restriction(rtype, "u")
        conn = self._writer()
        self._flush()
        current = self._for_write(conn, rtype, rid)
        if current is None:
            if if_match is not None:
                raise precondition_failed(f"{rtype}/{rid} does not exist (If-Match given)")
            if not self._restriction(rtype, "c").unrestricted:
                # Creating at a chosen id would tell a compartment-limited caller which
                # ids are taken in records they cannot see (issue 17).
                raise self._unknown_for_update(rtype, rid, "update-as-create")
            return WriteResult(self._insert(resource, rid, 1, "PUT"), 201, warnings)
        if not self._visible(allowed, rtype, rid, current.patient_id):
            if self._readable(rtype, rid, current.patient_id):
                raise self._forbidden_write(rtype, rid, "update")
            # Hidden answers as missing would, so no id can be probed (issue 17).
            if if_match is not None:
                self.audit.add("update", rtype, rid, outcome=DENIED, detail="compartment")
                raise precondition_failed(f"{rtype}/{rid} does not exist (If-Match given)")
            raise self._unknown_for_update(rtype, rid, "compartment")
        expected = _version_from_etag(if_match) if if_match is not None else current.version_id
        if if_match is not None and expected != current.version_id:
            raise precondition_failed(
                f"{rtype}/{rid} is at version {current.version_id}, not {if_match}"
            )
        if not current.deleted and not may_change(self.ctx, current.json()):
            raise self._forbidden_write(
                rtype, rid, "update", "a patient cannot change what a clinician entered"
            )
        self._refuse_signed(conn, current, "update")
        stored = self._write_version(resource, current, "PUT")
        return WriteResult(stored, 200 if not current.deleted else 201, warnings)

    def conditional_update(
        self, rtype: str, query_text: str, resource: dict[str, Any]
    ) -> WriteResult:
        check_resource_type(resource, rtype)
        matches = self.conditional_match(rtype, query_text, "Conditional update")
        if len(matches) > 1:
            raise precondition_failed(f"'{query_text}' matches {len(matches)} {rtype} resources")
        if not matches:
            body_id = resource.get("id")
            if body_id is not None:
                return self.update(rtype, str(body_id), resource)
            return self.create(resource)
        target = matches[0]
        if resource.get("id") not in (None, target.id):
            raise bad_request(
                f"The body's id '{resource['id']}' differs from the matched {rtype}/{target.id}"
            )
        return self.update(rtype, target.id, {**resource, "id": target.id})

    def delete(self, rtype: str, rid: str) -> Stored | None:
        check_type(rtype)
        allowed = self._restriction(rtype, "d")
        conn = self._writer()
        self._flush()
        current = self._for_write(conn, rtype, rid)
        if current is None:
            return None
        if not self._visible(allowed, rtype, rid, current.patient_id):
            if self._readable(rtype, rid, current.patient_id):
                raise self._forbidden_write(rtype, rid, "delete")
            raise self._deny_hidden(rtype, rid, "delete")
        if current.deleted:
            return current
        if not may_change(self.ctx, current.json()):
            raise self._forbidden_write(
                rtype, rid, "delete", "a patient cannot delete what a clinician entered"
            )
        self._refuse_signed(conn, current, "delete")
        self._before_write(current.json(), current.patient_id, "delete")
        stub = {"resourceType": rtype, "id": rid}
        return self._write_version(stub, current, "DELETE", deleted=True)

    def _refuse_signed(self, conn: Connection, current: Stored, interaction: str) -> None:
        """409 for a signed version (or a signature itself) outside a signed correction."""
        rtype, rid = current.resource_type, current.id
        # A signature names the Patient among its targets only to file it in the card.
        if rtype == "Patient" or (rtype, rid) in self.signed_corrections:
            return
        sig = select(sp_token.c.resource_id).where(
            sp_token.c.resource_type == "Provenance",
            sp_token.c.param == "signature-type",
            sp_token.c.code == SIGNATURE_TYPE_CODE,
            sp_token.c.system == SIGNATURE_TYPE_SYSTEM,
        )
        if rtype == "Provenance":
            signed = sig.where(sp_token.c.resource_id == rid)
        else:
            signed = sig.where(
                sp_token.c.resource_id.in_(
                    select(sp_reference.c.resource_id).where(
                        sp_reference.c.target_id == rid,
                        sp_reference.c.resource_type == "Provenance",
                        sp_reference.c.param == "target",
                        sp_reference.c.target_type == rtype,
                    )
                )
            )
        if conn.execute(signed.limit(1)).first() is not None:
            self.audit.add(
                interaction, rtype, rid, current.patient_id, outcome=DENIED, detail="signed"
            )
            raise conflict(f"{rtype}/{rid} is signed: {SIGNED_MESSAGE}")

    def _readable(self, rtype: str, rid: str, patient_id: str) -> bool:
        try:
            allowed = restriction(self.ctx, rtype, "r")
        except FhirError:
            return False
        return self._visible(allowed, rtype, rid, patient_id)

    def _forbidden_write(
        self, rtype: str, rid: str, interaction: str, why: str = "outside your patients' records"
    ) -> FhirError:
        self.audit.add(interaction, rtype, rid, outcome=DENIED, detail=why)
        return FhirError(403, "forbidden", f"Not allowed to {interaction} {rtype}/{rid}: {why}")

    def _check_delivery(self, res: dict[str, Any]) -> None:
        """A laboratory writes only results based on a referral addressed to it."""
        if self.ctx.role != Role.LAB:
            return
        rtype, rid = res["resourceType"], res.get("id", "")
        referrals = lab_referrals(res)
        if not referrals:
            raise self._forbidden_write(
                rtype, rid, "deliver", "a result must name its referral in basedOn"
            )
        with self._reading() as conn:
            for request_id in referrals:
                ok = conn.execute(
                    select(literal(1)).where(
                        referral_addressed_to(request_id, self.ctx.organizations)
                    )
                ).first()
                if ok is None:
                    raise self._forbidden_write(
                        rtype,
                        rid,
                        "deliver",
                        f"ServiceRequest/{request_id} is not addressed to your organisation",
                    )

    def _before_write(self, res: dict[str, Any], patient_id: str, interaction: str) -> None:
        """Domain rules registered in ``fhir.hooks`` (region features, diary plausibility)."""
        try:
            hooks.before_write(
                hooks.WriteEvent(self.engine, self.ctx, res, patient_id, interaction, self._conn)
            )
        except FhirError as exc:
            if exc.status == 403:
                rtype, rid = res["resourceType"], res.get("id", "")
                self.audit.add(
                    interaction,
                    rtype,
                    rid,
                    patient_id,
                    outcome=DENIED,
                    detail=exc.diagnostics[:200],
                )
            raise

    def _stamp(self, resource: dict[str, Any], rid: str, version: int, now: int) -> dict[str, Any]:
        res = stamp_author(self.ctx, resource)
        res["id"] = rid
        meta = dict(res.get("meta") or {})
        meta["versionId"] = str(version)
        meta["lastUpdated"] = format_instant(now)
        res["meta"] = meta
        return res

    def _insert(self, resource: dict[str, Any], rid: str, version: int, method: str) -> Stored:
        rtype = resource["resourceType"]
        now = now_micros()
        res = self._stamp(resource, rid, version, now)
        patient_id = patient_of(res)
        if not self._visible(self._restriction(rtype, "c"), rtype, rid, patient_id):
            raise self._forbidden_write(rtype, rid, "create")
        self._check_delivery(res)
        self._before_write(res, patient_id, "create")
        content = jsonio.dumps(res)
        hidden = entered_in_error(res)
        row = {
            "resource_type": rtype,
            "id": rid,
            "version_id": version,
            "patient_id": patient_id,
            "last_updated": now,
            "deleted": False,
        }
        self._queue("resources", {**row, "content": content, "hidden": hidden})
        self._queue("versions", {**row, "content": content, "method": method})
        if not hidden:
            for table, rows in index_rows(res, patient_id).items():
                self._pending.setdefault(table, []).extend(rows)
        self.audit.add("create", rtype, rid, patient_id)
        return Stored(rtype, rid, version, now, content, False, patient_id)

    def _queue(self, name: str, row: dict[str, Any]) -> None:
        self._writer()
        self._pending.setdefault(name, []).append(row)

    def _write_version(
        self, resource: dict[str, Any], current: Stored, method: str, *, deleted: bool = False
    ) -> Stored:
        conn = self._writer()
        rtype, rid = current.resource_type, current.id
        version = current.version_id + 1
        now = max(now_micros(), current.last_updated + 1)
        res = self._stamp(resource, rid, version, now)
        patient_id = current.patient_id if deleted else patient_of(res)
        if not deleted:
            if not self._visible(self._restriction(rtype, "u"), rtype, rid, patient_id):
                raise self._forbidden_write(rtype, rid, "update")
            self._check_delivery(res)
            self._before_write(res, patient_id, "update")
        content = jsonio.dumps(res)
        hidden = not deleted and entered_in_error(res)
        changed = conn.execute(
            update(resources)
            .where(
                resources.c.resource_type == rtype,
                resources.c.id == rid,
                resources.c.version_id == current.version_id,
            )
            .values(
                version_id=version,
                patient_id=patient_id,
                last_updated=now,
                deleted=deleted,
                content=content,
                hidden=hidden,
            )
        ).rowcount
        if changed != 1:
            raise precondition_failed(
                f"{rtype}/{rid} was changed by another request; read it again and retry"
            )
        for table in INDEX_TABLES.values():
            conn.execute(
                delete(table).where(table.c.resource_type == rtype, table.c.resource_id == rid)
            )
        conn.execute(
            insert(resource_versions),
            {
                "resource_type": rtype,
                "id": rid,
                "version_id": version,
                "patient_id": patient_id,
                "last_updated": now,
                "deleted": deleted,
                "content": content,
                "method": method,
            },
        )
        if not deleted and not hidden:
            for name, rows in index_rows(res, patient_id).items():
                conn.execute(insert(INDEX_TABLES[name]), rows)
        self.audit.add("delete" if deleted else "update", rtype, rid, patient_id)
        return Stored(rtype, rid, version, now, content, deleted, patient_id, hidden)

    def purge(self, rtype: str, rid: str, reason: str) -> None:
        """Replace the content of every version of a withdrawn entry with a tombstone.

        The only in-place change the store allows (issue 7): an authority ordered that
        another person's data, entered in error into this card, be removed.  Only for
        unrestricted (service) callers and only once the entry is entered-in-error; the
        audit entry is what remains of it.
        """
        if self._restriction(rtype, "d").patients is not None:
            raise self._forbidden_write(rtype, rid, "purge", "only an authority's decision purges")
        conn = self._writer()
        self._flush()
        current = self._current(conn, rtype, rid, lock=True)
        if current is None or not current.hidden:
            raise conflict(f"{rtype}/{rid} must be entered-in-error before it is purged")
        versions = conn.execute(
            select(resource_versions.c.version_id, resource_versions.c.content).where(
                resource_versions.c.resource_type == rtype, resource_versions.c.id == rid
            )
        ).all()
        for vid, content in versions:
            stub = orjson.dumps(tombstone(orjson.loads(content), reason))
            conn.execute(
                update(resource_versions)
                .where(
                    resource_versions.c.resource_type == rtype,
                    resource_versions.c.id == rid,
                    resource_versions.c.version_id == vid,
                )
                .values(content=stub)
            )
        conn.execute(
            update(resources)
            .where(resources.c.resource_type == rtype, resources.c.id == rid)
            .values(content=orjson.dumps(tombstone(current.json(), reason)))
        )
        detail = f"{len(versions)} versions: {reason}"[:500]
        self.audit.add("purge", rtype, rid, current.patient_id, detail=detail)


def _since_ok(stored: Stored, since: int | None) -> bool:
    return since is None or stored.last_updated >= since


COPY_THRESHOLD = 20


def _copy_rows(conn: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
    """Bulk-load rows with PostgreSQL COPY inside the current transaction.

    psycopg's executemany sends one INSERT per row; COPY streams them all in one
    command, several times faster for the dozens of index rows a resource makes.
    """
    columns = list(rows[0])
    raw = conn.connection.driver_connection
    assert raw is not None
    with raw.cursor() as cur:
        names = ", ".join(f'"{c}"' for c in columns)
        with cur.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row([row[c] for c in columns])


def check_type(rtype: str) -> None:
    if rtype not in spec.resource_types():
        raise FhirError(404, "not-supported", f"Unknown resource type '{rtype}'")


def _version_from_etag(etag: str) -> int:
    value = etag.strip()
    if value.startswith("W/"):
        value = value[2:]
    value = value.strip('"')
    try:
        return int(value)
    except ValueError:
        raise bad_request(f"If-Match must be an ETag like W/\"3\", not '{etag}'") from None


def _patient_clause(v: Any, allowed: Restriction, rtype: str) -> Any:
    assert allowed.patients is not None
    inside = v.c.patient_id.in_(sorted(allowed.patients))
    return inside if in_patient_compartment(rtype) else or_(v.c.patient_id == "", inside)


def _system_restriction(ctx: AccessContext) -> Restriction:
    """System-level history: everything for system callers, own compartments for patients.

    Staff roles see records through their care relations, which a history across every
    type and patient cannot express cheaply, so it is refused for them.
    """
    wildcard = {
        s.level for s in ctx.scopes.scopes if s.resource_type == "*" and "s" in s.permissions
    }
    if ctx.role in (None, Role.SYSTEM) and "system" in wildcard:
        return Restriction(None)
    if ctx.patient_ids and "patient" in wildcard and ctx.role in (None, Role.PATIENT):
        return Restriction(ctx.patient_ids)
    raise FhirError(
        403, "forbidden", "System history is for system clients (system/*.s) and patients"
    )
