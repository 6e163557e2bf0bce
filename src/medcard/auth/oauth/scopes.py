"""What an OAuth grant may carry: requested ∩ registered ∩ what the caller's kind allows.

SMART App Launch v2 scopes (https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html).
Scopes only ever narrow: a word the client asks for but may not have is dropped, never
widened into something else.  Permission letters are intersected one by one, and a
wildcard resource type meets a concrete one as the concrete one, so
``patient/*.rs`` asked of a client registered for ``patient/Observation.cruds`` becomes
``patient/Observation.rs``.

Fine-grained v2 scopes with a query (``patient/Observation.rs?category=...``) are not
granted: the access policy cannot enforce the query part, so granting one would give
more than was asked.

Staff (issue 3) get ``user/`` scopes, further narrowed to a ceiling derived from their
role's permissions (``ceiling``): a registrar asking for ``user/*.cruds`` gets the
demographic types only.  The ceiling is a courtesy to the app (the token says what it
can use); the access gate still decides every request from the ``role`` claim.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from medcard.access.policy import in_patient_compartment
from medcard.access.roles import DEMOGRAPHIC_TYPES, Permission, Role, has
from medcard.access.smart import Scope, Scopes

# Words that are not resource scopes, per grant kind.
PATIENT_APP_WORDS = frozenset({"openid", "fhirUser", "launch/patient", "offline_access"})
# Staff get no launch context (there is no patient picker) and no offline_access: a
# staff token lasts one access-token lifetime and a new one needs a signed-in session
# that passed the second factor, as the staff pages do.
STAFF_WORDS = frozenset({"openid", "fhirUser"})
SYSTEM_WORDS: frozenset[str] = frozenset()

# Which SMART levels a kind of caller may be granted.  A patient only ever gets
# patient/ scopes (bound to their own compartment); staff only user/ ones (the gate
# limits them by role and care relations); a system client only system/ ones.
PATIENT_LEVELS = frozenset({"patient"})
USER_LEVELS = frozenset({"user"})
SYSTEM_LEVELS = frozenset({"system"})


@dataclass(frozen=True)
class Allowance:
    """The most a grant may carry: resource scopes of these levels, and these words;
    with a ``ceiling``, resource scopes also only within it (letter by letter)."""

    levels: frozenset[str]
    words: frozenset[str]
    ceiling: Scopes | None = None


PATIENT_APP = Allowance(PATIENT_LEVELS, PATIENT_APP_WORDS)
SYSTEM = Allowance(SYSTEM_LEVELS, SYSTEM_WORDS)
# What an app using the authorization code grant may be registered for: the scopes of
# the patients and the staff who may authorize it (each gets only their own kind).
APP = Allowance(PATIENT_LEVELS | USER_LEVELS, PATIENT_APP_WORDS)

STAFF_ROLES = frozenset(
    {Role.PRACTITIONER, Role.REGISTRAR, Role.ORG_ADMIN, Role.REVIEWER, Role.REGION_ADMIN}
)


def ceiling(role: Role) -> Scopes:
    """The user/ scopes a staff role may hold, from its permissions in ``access/roles.py``.

    Clinical permissions reach every type (``user/*``); demographic ones only
    ``DEMOGRAPHIC_TYPES``, split into those inside a patient's card (Patient, Coverage,
    ...: ``demographics:write``) and shared reference data (Organization,
    Practitioner, ...: ``shared:write``).  A reviewer reads what is disputed and
    decides on correction requests (Task).  A practitioner's wildcard also covers
    writes to reference data, which the gate refuses (the one place the ceiling is
    wider than the gate; ``tests/oauth/test_staff.py`` checks every other cell).
    """
    cells: set[tuple[str, str, str]] = set()

    def add(types: Iterable[str], letters: str) -> None:
        cells.update(("user", t, c) for t in types for c in letters)

    card = sorted(t for t in DEMOGRAPHIC_TYPES if in_patient_compartment(t))
    shared = sorted(t for t in DEMOGRAPHIC_TYPES if not in_patient_compartment(t))
    if has(role, Permission.RECORD_READ):
        add(["*"], "rs")
    if has(role, Permission.RECORD_WRITE):
        add(["*"], "cud")
    if has(role, Permission.DEMOGRAPHICS_READ):
        add(DEMOGRAPHIC_TYPES, "rs")
    if has(role, Permission.DEMOGRAPHICS_WRITE):
        add(card, "cud")
    if has(role, Permission.SHARED_WRITE):
        add(shared, "cud")
    if has(role, Permission.CORRECTIONS_REVIEW):
        add(["*"], "rs")
        add(["Task"], "cud")
    if has(role, Permission.BILLING_READ):
        add(["ChargeItem"], "rs")
    return Scopes(_compact(cells))


def allowance_for(role: Role | str) -> Allowance | None:
    """What an account of this role may be granted through an app; None: nothing."""
    try:
        value = Role(role)
    except ValueError:
        return None
    if value is Role.PATIENT:
        return PATIENT_APP
    if value in STAFF_ROLES:
        return Allowance(USER_LEVELS, STAFF_WORDS, ceiling(value))
    return None


def parse(text: str | None) -> Scopes:
    """Parse a scope string, keeping query-qualified scopes out of the resource scopes."""
    words = (text or "").split()
    plain = [w for w in words if "?" not in w]
    return Scopes.parse(" ".join(plain))


def intersect(requested: Scopes, allowed: Scopes) -> Scopes:
    """The scopes both sides grant, letter by letter; words kept only if both name them."""
    cells: set[tuple[str, str, str]] = set()
    for r in requested.scopes:
        for a in allowed.scopes:
            if r.level != a.level:
                continue
            if a.resource_type == "*":
                rtype = r.resource_type
            elif r.resource_type in ("*", a.resource_type):
                rtype = a.resource_type
            else:
                continue
            for letter in r.permissions & a.permissions:
                cells.add((r.level, rtype, letter))
    other = tuple(w for w in dict.fromkeys(requested.other) if w in set(allowed.other))
    return Scopes(_compact(cells), other)


def restrict(scopes: Scopes, allowance: Allowance) -> Scopes:
    """Drop what this kind of caller may never hold."""
    kept = Scopes(
        tuple(s for s in scopes.scopes if s.level in allowance.levels),
        tuple(w for w in scopes.other if w in allowance.words),
    )
    if allowance.ceiling is None:
        return kept
    return intersect(kept, Scopes(allowance.ceiling.scopes, kept.other))


def grant(requested: str | None, registered: str, allowance: Allowance) -> Scopes:
    """requested ∩ registered ∩ allowance.  No request means 'what the client registered'."""
    reg = restrict(parse(registered), allowance)
    if not (requested or "").strip():
        return reg
    return intersect(parse(requested), reg)


def covers(held: Scopes, wanted: Scopes) -> bool:
    """Whether everything in ``wanted`` is already within ``held`` (refresh may only narrow)."""
    return intersect(wanted, held) == intersect(wanted, wanted) and set(wanted.other) <= set(
        held.other
    )


def narrowed(requested: str | None, granted: Scopes) -> list[str]:
    """Requested words not granted in full (for the audit trail)."""
    out = []
    for word in (requested or "").split():
        single = parse(word)
        if is_empty(single) or not covers(granted, single):
            out.append(word)
    return out


def refused(requested: str | None, granted: Scopes) -> list[str]:
    """Requested words of which nothing is granted (named on the consent screen)."""
    out = []
    for word in (requested or "").split():
        single = parse(word)
        kept = intersect(single, granted)
        if not kept.scopes and not (set(single.other) & set(granted.other)):
            out.append(word)
    return out


def is_empty(scopes: Scopes) -> bool:
    return not scopes.scopes and not scopes.other


def _compact(cells: Iterable[tuple[str, str, str]]) -> tuple[Scope, ...]:
    """Rebuild scopes from (level, type, letter) cells; a type's letters already granted
    by the level's wildcard are not repeated."""
    by_key: dict[tuple[str, str], set[str]] = {}
    for level, rtype, letter in cells:
        by_key.setdefault((level, rtype), set()).add(letter)
    out = []
    for (level, rtype), letters in by_key.items():
        own = letters - by_key.get((level, "*"), set()) if rtype != "*" else letters
        if own:
            out.append(Scope(level, rtype, frozenset(own)))
    # wildcard first: reads naturally ("patient/*.rs patient/Observation.c")
    out.sort(key=lambda s: (s.level, s.resource_type != "*", s.resource_type))
    return tuple(out)
