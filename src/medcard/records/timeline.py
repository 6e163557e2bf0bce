"""Everything in the card in date order, with filters by period, organisation, type and
a text search.  Filters come from a URL, so :func:`parse_filters` checks every value
and says what is wrong instead of guessing."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Final

from medcard.records.card import Card, Entry
from medcard.records.sections import SECTION_BY_KEY

MAX_QUERY: Final = 200
_ORG = re.compile(r"(Organization/)?[A-Za-z0-9\-.]{1,64}")


@dataclass(frozen=True, slots=True)
class Filters:
    since: dt.date | None = None
    until: dt.date | None = None
    organization: str = ""  # Organization/<id>
    section: str = ""
    query: str = ""

    @property
    def active(self) -> bool:
        return bool(self.since or self.until or self.organization or self.section or self.query)


@dataclass(frozen=True, slots=True)
class FilterErrors:
    """Problems per field (``from``, ``to``, ``org``, ``type``, ``q``) as reason codes."""

    problems: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.problems)


def _date(raw: str) -> dt.date:
    raw = raw.strip()
    for fmt in ("%Y-%m-%d", "%d.%m.%Y"):
        try:
            return dt.datetime.strptime(raw, fmt).date()  # noqa: DTZ007 - a calendar date
        except ValueError:
            continue
    raise ValueError(raw)


def parse_filters(
    since: str = "", until: str = "", org: str = "", section: str = "", query: str = ""
) -> tuple[Filters, FilterErrors]:
    """Filters from form values; an empty value means "any"."""
    problems: dict[str, str] = {}
    start = end = None
    if since.strip():
        try:
            start = _date(since)
        except ValueError:
            problems["from"] = "bad_date"
    if until.strip():
        try:
            end = _date(until)
        except ValueError:
            problems["to"] = "bad_date"
    if start and end and start > end:
        problems["to"] = "before_start"
    org = org.strip()
    if org and not _ORG.fullmatch(org):
        problems["org"] = "bad_org"
    elif org and not org.startswith("Organization/"):
        org = "Organization/" + org
    section = section.strip()
    if section and section not in SECTION_BY_KEY:
        problems["type"] = "bad_type"
    query = " ".join(query.split())
    if len(query) > MAX_QUERY or "\x00" in query:
        problems["q"] = "bad_query"
    if problems:
        return Filters(), FilterErrors(problems)
    return Filters(start, end, org, section, query), FilterErrors()


def timeline(card: Card, filters: Filters | None = None) -> list[Entry]:
    """Top-level entries, newest first, that pass every filter.  The search matches every
    word (case-insensitive) anywhere in the entry: title, source, details, results."""
    f = filters or Filters()
    since = f.since.isoformat() if f.since else ""
    until = f.until.isoformat() if f.until else ""
    words = f.query.casefold().split()
    out = []
    for e in card.listed():
        if since and (not e.day or e.day < since):
            continue
        if until and (not e.day or e.day > until):
            continue
        if f.organization and e.organization_ref != f.organization:
            continue
        if f.section and e.section != f.section:
            continue
        if words:
            text = e.search_text()
            if not all(w in text for w in words):
                continue
        out.append(e)
    return out
