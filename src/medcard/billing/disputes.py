""" "I did not receive this service": a line disputed through the corrections workflow.

The dispute is a correction report (``medcard.corrections``) with the problem
``did-not-happen``, addressed by default to the insurer of the patient's OMS policy,
disputing the ChargeItem and the clinical entries it stands for.  Nothing else is
needed for the outcome: when the authority accepts the report, the corrections effect
marks every disputed entry ``entered-in-error`` — the line is voided (ChargeItem status
``entered-in-error``) and its entries leave the card, with the Provenance and the notice
to the author organisation that every accepted correction gets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from medcard.access.roles import Role
from medcard.billing.model import VOIDED, BillingError, Line, read_line
from medcard.config import Settings
from medcard.corrections import service
from medcard.corrections.acting import ReportError, reader
from medcard.corrections.authorities import AuthorityType
from medcard.corrections.model import Problem, Report
from medcard.fhir.outcomes import FhirError
from medcard.fhir.store.repository import ID, Repository

DEFAULT_AUTHORITY: Final = AuthorityType.INSURER


def line_of(repo: Repository, pid: str, line_id: str) -> Line:
    """A line of ``pid``'s card that the caller can see, or a refusal saying why not."""
    if not ID.fullmatch(line_id or ""):
        raise BillingError(404, "bill_err_no_line", "No such service line")
    try:
        stored = repo.read("ChargeItem", line_id)
    except FhirError:
        sys = reader(repo.engine, repo.ctx, "billing dispute check")
        sys.include_hidden = True
        try:
            hidden = sys.read("ChargeItem", line_id)
        except FhirError:
            hidden = None
        finally:
            sys.close()
        if (
            hidden is not None
            and hidden.patient_id == pid
            and pid in repo.ctx.patient_ids
            and hidden.json().get("status") == VOIDED
        ):
            raise BillingError(
                409, "bill_err_voided", "This service line is already voided"
            ) from None
        raise BillingError(404, "bill_err_no_line", "No such service line") from None
    line = read_line(stored.json())
    if stored.patient_id != pid or line.patient_id != pid:
        raise BillingError(404, "bill_err_no_line", "The line belongs to another card")
    return line


@dataclass(frozen=True)
class Dispute:
    line: Line
    entries: list[str]  # the clinical entries it carries (visible in the card)


def prepare(repo: Repository, pid: str, line_id: str) -> Dispute:
    """What a dispute of the line would carry (the form shows it before filing)."""
    if repo.ctx.role != Role.PATIENT or pid not in repo.ctx.patient_ids:
        raise BillingError(404, "bill_err_no_line", "Not a card you may act for")
    line = line_of(repo, pid, line_id)
    entries = []
    for ref in line.entries:
        rtype, _, rid = ref.partition("/")
        try:
            stored = repo.read(rtype, rid)
        except FhirError:
            continue  # already out of the card
        if stored.patient_id == pid:
            entries.append(ref)
    return Dispute(line, entries)


def dispute(
    repo: Repository,
    pid: str,
    line_id: str,
    *,
    comment: str = "",
    authority: str = DEFAULT_AUTHORITY.value,
    settings: Settings | None = None,
) -> str:
    """File the report; returns the Task id.  Refused (nothing written) with the reason."""
    prepared = prepare(repo, pid, line_id)
    routes = service.authorities_for(repo, pid)
    try:
        kind = AuthorityType(authority or DEFAULT_AUTHORITY.value)
    except ValueError:
        raise BillingError(422, "bill_err_authority", "Choose where to send the report") from None
    if kind not in routes:
        raise BillingError(
            422,
            "bill_err_no_insurer" if kind == AuthorityType.INSURER else "bill_err_authority",
            "The patient's OMS policy names no insurer to send this to"
            if kind == AuthorityType.INSURER
            else "Choose where to send the report",
        )
    new = service.NewReport(
        patient_id=pid,
        entries=[prepared.line.ref, *prepared.entries],
        problem=Problem.DID_NOT_HAPPEN.value,
        authority=kind.value,
        comment=(
            f"Услуга не оказывалась: {prepared.line.code} {prepared.line.title}, "
            f"{prepared.line.date}, {prepared.line.org_name}."
            + (f"\n{comment.strip()}" if comment.strip() else "")
        ),
    )
    try:
        return service.file_report(repo, new, settings)
    except ReportError as exc:
        if exc.key == "corr_err_duplicate":
            raise BillingError(
                409, "bill_err_disputed", "This line is already disputed; wait for the decision"
            ) from None
        raise BillingError(exc.status, exc.key, str(exc)) from None


def disputed_lines(reports: list[Report]) -> dict[str, Report]:
    """ChargeItem ref -> the newest report disputing it (open ones win)."""
    out: dict[str, Report] = {}
    for r in sorted(reports, key=lambda r: (r.open, r.authored)):
        for ref in r.entries:
            if ref.startswith("ChargeItem/"):
                out[ref] = r
    return out
