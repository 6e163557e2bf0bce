"""People who sign in: accounts, roles, links to FHIR resources, lockout, TOTP and resets.

Accounts are not FHIR resources (credentials are not part of the record); an
account points at the Patient or Practitioner it acts as and at the Organization
it works for.  Role and links are set only by these service calls (the CLI and,
later, admin pages); no web form passes them through, so a request cannot grant
itself a role (mass assignment).

Every function runs its own short transaction on the engine it is given.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import unicodedata
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Engine, Row, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from medcard import clock
from medcard.access import roles as _roles
from medcard.access.context import AccessContext
from medcard.access.smart import Scopes
from medcard.audit.recorder import AuditBuffer
from medcard.auth import epochs, mfa
from medcard.auth.passwords import (
    burn_time,
    check_policy,
    hash_password,
    needs_rehash,
    verify_password,
)
from medcard.db.tables import accounts, password_resets, sessions

MICROS = 1_000_000

# Lockout: after LOCK_AFTER consecutive failures the account is locked for
# LOCK_BASE_SECONDS, doubling with every further failure, up to LOCK_MAX_SECONDS.
LOCK_AFTER = 5
LOCK_BASE_SECONDS = 60
LOCK_MAX_SECONDS = 3600

RESET_LIFETIME_SECONDS = 30 * 60


Role = _roles.Role

# One Role enum for the whole code base (access/roles.py maps roles to permissions);
# accounts are people, so the integration roles there (lab, system) are refused here.
ACCOUNT_ROLES = frozenset(
    {
        Role.PATIENT,
        Role.PRACTITIONER,
        Role.REGISTRAR,
        Role.ORG_ADMIN,
        Role.REVIEWER,
        Role.REGION_ADMIN,
    }
)
STAFF_ROLES = ACCOUNT_ROLES - {Role.PATIENT}


class AccountError(ValueError):
    """A refused account operation; ``code`` is a stable key (also an i18n catalogue key)."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(message or code)
        self.code = code


@dataclass(frozen=True)
class Account:
    id: str
    login: str
    role: Role
    display_name: str
    fhir_ref: str
    organization_ref: str
    region: str
    totp_enabled: bool
    active: bool
    lang: str
    failed_logins: int
    locked_until: int
    created: int
    password_changed: int
    password_hash: str = field(repr=False)
    totp_secret: str | None = field(repr=False)  # base32, None before enrolment starts
    totp_last_step: int = field(repr=False, default=0)
    # Every role the person holds; ``role`` is the one they act in now: the role they
    # chose (``home_role``) when they hold several, else the account's own.
    roles: frozenset[Role] = frozenset()
    home_role: str = ""
    primary_role: Role | None = None
    notify_email: str = ""  # the contact for notifications; "" = the login if an e-mail

    @property
    def is_staff(self) -> bool:
        """Any staff role counts: a second factor guards every role the person can act in."""
        return bool((self.roles or {self.role}) & STAFF_ROLES)

    @property
    def has_several_roles(self) -> bool:
        return len(self.roles) > 1

    @property
    def needs_mfa(self) -> bool:
        """Staff always need a second factor; patients once they have turned it on."""
        return self.is_staff or self.totp_enabled

    @property
    def actor(self) -> str:
        return f"Account/{self.id}"


def _roles_of(primary: Role, extra: str) -> frozenset[Role]:
    found = {primary}
    for name in extra.split(","):
        if name.strip() in {r.value for r in STAFF_ROLES}:
            found.add(Role(name.strip()))
    return frozenset(found)


def _account(row: Row[Any]) -> Account:
    m = row._mapping
    secret, last_step = m["totp_secret"], int(m["totp_last_step"])
    primary = Role(m["role"])
    held = _roles_of(primary, m["extra_roles"])
    home = m["home_role"]
    acting = Role(home) if home in {r.value for r in held} else primary
    return Account(
        id=m["id"],
        login=m["login"],
        role=acting,
        roles=held,
        home_role=home if home in {r.value for r in held} else "",
        primary_role=primary,
        display_name=m["display_name"],
        fhir_ref=m["fhir_ref"],
        organization_ref=m["organization_ref"],
        region=m["region"],
        totp_enabled=bool(m["totp_enabled"]),
        active=bool(m["active"]),
        lang=m["lang"],
        failed_logins=m["failed_logins"],
        locked_until=m["locked_until"],
        created=m["created"],
        password_changed=m["password_changed"],
        password_hash=m["password_hash"],
        totp_secret=secret,
        totp_last_step=last_step,
        notify_email=m["notify_email"],
    )


_PHONE_CHARS = re.compile(r"[\s\-()]")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def normalise_login(login: str) -> str:
    """E-mail addresses casefolded; phone numbers as +<digits> (Russian 8XXX… → +7XXX…)."""
    text = unicodedata.normalize("NFKC", login).strip()
    if "@" in text:
        text = text.casefold()
        if not _EMAIL.match(text) or len(text) > 254:
            raise AccountError("bad_login", "not an e-mail address or phone number")
        return text
    digits = _PHONE_CHARS.sub("", text)
    plus = digits.startswith("+")
    digits = digits.removeprefix("+")
    if not digits.isdigit() or not 10 <= len(digits) <= 15:
        raise AccountError("bad_login", "not an e-mail address or phone number")
    if not plus and len(digits) == 11 and digits[0] == "8":
        digits = "7" + digits[1:]  # domestic trunk prefix
    elif not plus and len(digits) == 10 and digits[0] == "9":
        digits = "7" + digits  # a Russian mobile number written without the country code
    return "+" + digits


_REF = re.compile(r"^(Patient|Practitioner|Organization)/[A-Za-z0-9\-.]{1,64}$")


def _check_ref(ref: str, kinds: Iterable[str]) -> str:
    ref = ref.strip()
    if not _REF.match(ref) or ref.split("/", 1)[0] not in kinds:
        raise AccountError("bad_reference", f"expected {' or '.join(kinds)}/<id>, got {ref!r}")
    return ref


def account_role(role: Role | str) -> Role:
    """The role as the enum, refusing values that are not roles of people."""
    try:
        value = Role(role)
    except ValueError:
        value = None
    if value is None or value not in ACCOUNT_ROLES:
        names = ", ".join(sorted(r.value for r in ACCOUNT_ROLES))
        raise AccountError("bad_role", f"unknown role {role!r}; one of: {names}")
    return value


def _allowed_link_kinds(role: Role) -> tuple[str, ...]:
    if role is Role.PATIENT:
        return ("Patient",)
    if role is Role.PRACTITIONER:
        return ("Practitioner",)
    return ()


def create_account(
    engine: Engine,
    login: str,
    password: str,
    role: Role | str,
    *,
    display_name: str = "",
    fhir_ref: str = "",
    organization_ref: str = "",
    region: str = "",
    lang: str = "ru",
) -> Account:
    role = account_role(role)
    login = normalise_login(login)
    check_policy(password, login)
    if fhir_ref:
        fhir_ref = _check_ref(fhir_ref, _allowed_link_kinds(role))
    if organization_ref:
        if role is Role.PATIENT:
            raise AccountError("bad_reference", "patients do not belong to an organisation")
        organization_ref = _check_ref(organization_ref, ("Organization",))
    try:
        return _insert(
            engine,
            login=login,
            password_hash=hash_password(password),
            role=role,
            display_name=display_name.strip(),
            fhir_ref=fhir_ref,
            organization_ref=organization_ref,
            region=region.strip(),
            lang=lang,
        )
    except IntegrityError as exc:
        raise AccountError("login_taken", f"an account with login {login} exists") from exc


# An account that signs in only through an external identity provider (national SSO):
# its login names the provider and subject, and its password hash can never verify.
UNUSABLE_PASSWORD_HASH = "!sso"  # noqa: S105 - not a hash: verify_password() is always False


def create_external_account(
    engine: Engine, login: str, role: Role, *, display_name: str, fhir_ref: str, region: str
) -> Account:
    """Create the account of an external identity, or return the one a racing request
    created first (the login is unique)."""
    try:
        return _insert(
            engine,
            login=login,
            password_hash=UNUSABLE_PASSWORD_HASH,
            role=role,
            display_name=display_name,
            fhir_ref=fhir_ref,
            region=region,
        )
    except IntegrityError:
        found = get_by_external_login(engine, login)
        if found is None:
            raise
        return found


def get_by_external_login(engine: Engine, login: str) -> Account | None:
    """Look an external identity's account up by its login as stored (not normalised)."""
    with engine.connect() as conn:
        row = conn.execute(select(accounts).where(accounts.c.login == login)).first()
    return _account(row) if row else None


def _insert(
    engine: Engine, *, login: str, password_hash: str, role: Role, **values: str
) -> Account:
    now = clock.now_micros()
    account_id = str(uuid.uuid4())
    with engine.begin() as conn:
        conn.execute(
            insert(accounts).values(
                id=account_id,
                login=login,
                password_hash=password_hash,
                role=role.value,
                created=now,
                password_changed=now,
                **values,
            )
        )
    found = get(engine, account_id)
    assert found is not None
    return found


def get(engine: Engine, account_id: str) -> Account | None:
    with engine.connect() as conn:
        row = conn.execute(select(accounts).where(accounts.c.id == account_id)).first()
    return _account(row) if row else None


def get_by_login(engine: Engine, login: str) -> Account | None:
    try:
        login = normalise_login(login)
    except AccountError:
        return None
    with engine.connect() as conn:
        row = conn.execute(select(accounts).where(accounts.c.login == login)).first()
    return _account(row) if row else None


def _require(engine: Engine, account_id: str) -> Account:
    account = get(engine, account_id)
    if account is None:
        raise AccountError("no_account", "no such account")
    return account


def list_accounts(engine: Engine, role: Role | str | None = None) -> list[Account]:
    query = select(accounts).order_by(accounts.c.role, accounts.c.login)
    if role is not None:
        query = query.where(accounts.c.role == account_role(role).value)
    with engine.connect() as conn:
        return [_account(r) for r in conn.execute(query)]


def set_password(engine: Engine, account_id: str, password: str) -> Account:
    """Set a new password; also lifts a lockout and ends every session and token of the
    account.

    Callers that keep the person signed in start a fresh session afterwards.
    """
    account = _require(engine, account_id)
    check_policy(password, account.login)
    with engine.begin() as conn:
        conn.execute(
            update(accounts)
            .where(accounts.c.id == account_id)
            .values(
                password_hash=hash_password(password),
                password_changed=clock.now_micros(),
                failed_logins=0,
                locked_until=0,
            )
        )
        conn.execute(delete(sessions).where(sessions.c.account_id == account_id))
        jtis = epochs.revoke_account_tokens(conn, account_id)
    epochs.forget(account_id, jtis)
    return _require(engine, account_id)


def link(engine: Engine, account_id: str, ref: str) -> Account:
    """Point the account at a Patient/Practitioner it acts as, or an Organization it works for."""
    account = _require(engine, account_id)
    kind = ref.strip().split("/", 1)[0]
    if kind == "Organization":
        if account.role not in STAFF_ROLES:
            raise AccountError("bad_reference", "patients do not belong to an organisation")
        values = {"organization_ref": _check_ref(ref, ("Organization",))}
    else:
        allowed = _allowed_link_kinds(account.primary_role or account.role)
        if not allowed:
            raise AccountError(
                "bad_reference", f"a {account.role.value} account links to an Organization only"
            )
        values = {"fhir_ref": _check_ref(ref, allowed)}
    with engine.begin() as conn:
        conn.execute(update(accounts).where(accounts.c.id == account_id).values(**values))
        # Tokens name the person and organisation they act for: the old ones stop.
        jtis = epochs.revoke_account_tokens(conn, account_id)
    epochs.forget(account_id, jtis)
    return _require(engine, account_id)


def unlink(engine: Engine, account_id: str) -> Account:
    """The account no longer acts as its Patient: the card closes for every session at
    once (each request reads the account) and every token stops (they name the card)."""
    _require(engine, account_id)
    with engine.begin() as conn:
        conn.execute(update(accounts).where(accounts.c.id == account_id).values(fhir_ref=""))
        jtis = epochs.revoke_account_tokens(conn, account_id)
    epochs.forget(account_id, jtis)
    return _require(engine, account_id)


def set_notify_email(engine: Engine, account_id: str, email: str) -> Account:
    """The e-mail address notifications about the account's access go to ("" clears it)."""
    _require(engine, account_id)
    text = unicodedata.normalize("NFKC", email).strip().casefold()
    if text and (not _EMAIL.match(text) or len(text) > 254):
        raise AccountError("bad_email", "not an e-mail address")
    with engine.begin() as conn:
        conn.execute(update(accounts).where(accounts.c.id == account_id).values(notify_email=text))
    return _require(engine, account_id)


def set_role(engine: Engine, account_id: str, role: Role | str) -> Account:
    """Change the account's role; its sessions end and its tokens stop at once (they
    carry the old role)."""
    account = _require(engine, account_id)
    new = account_role(role)
    if (new is Role.PATIENT) != (account.role is Role.PATIENT):
        # A link made for one kind (Patient/...) means nothing for the other.
        raise AccountError("bad_role", "a patient account cannot become staff, nor the reverse")
    values = {"role": new.value}
    kind = account.fhir_ref.split("/", 1)[0]
    if account.fhir_ref and kind not in _allowed_link_kinds(new):
        values["fhir_ref"] = ""  # e.g. a registrar does not act as a Practitioner
    with engine.begin() as conn:
        conn.execute(update(accounts).where(accounts.c.id == account_id).values(**values))
        conn.execute(delete(sessions).where(sessions.c.account_id == account_id))
        jtis = epochs.revoke_account_tokens(conn, account_id)
    epochs.forget(account_id, jtis)
    return _require(engine, account_id)


def revoke_tokens(engine: Engine, account_id: str) -> None:
    """End every access and refresh token of the account now (on logout, issue 14)."""
    with engine.begin() as conn:
        jtis = epochs.revoke_account_tokens(conn, account_id)
    epochs.forget(account_id, jtis)


def grant_role(engine: Engine, account_id: str, role: Role | str) -> Account:
    """Let a staff member also act in another staff role (a doctor who reviews reports).

    Only staff roles combine: a patient's account links to their card, a clinician's to
    their Practitioner, so a doctor who is also a patient keeps two accounts.  Like every
    role change this is a service call (CLI, admin pages), never a form field.
    """
    role = account_role(role)
    account = _require(engine, account_id)
    if role not in STAFF_ROLES or not account.is_staff:
        raise AccountError("bad_role", "only staff accounts hold several roles, all of them staff")
    if role in account.roles:
        return account
    extra = sorted(r.value for r in account.roles - {account.primary_role} | {role})
    with engine.begin() as conn:
        conn.execute(
            update(accounts).where(accounts.c.id == account_id).values(extra_roles=",".join(extra))
        )
    return _require(engine, account_id)


def choose_role(engine: Engine, account_id: str, role: Role | str) -> Account:
    """Remember the role a person with several roles works in (and lands in after sign-in)."""
    account = _require(engine, account_id)
    try:
        chosen = Role(role)
    except ValueError:
        chosen = None
    if chosen is None or chosen not in account.roles:
        raise AccountError("bad_role", f"the account does not hold the role {role!r}")
    with engine.begin() as conn:
        conn.execute(
            update(accounts).where(accounts.c.id == account_id).values(home_role=chosen.value)
        )
    return _require(engine, account_id)


def deactivate(engine: Engine, account_id: str) -> Account:
    """Refuse future sign-ins, end current sessions and tokens; the row stays for the
    audit trail."""
    _require(engine, account_id)
    with engine.begin() as conn:
        conn.execute(update(accounts).where(accounts.c.id == account_id).values(active=False))
        conn.execute(delete(sessions).where(sessions.c.account_id == account_id))
        jtis = epochs.revoke_account_tokens(conn, account_id)
    epochs.forget(account_id, jtis)
    return _require(engine, account_id)


# -- sign-in -------------------------------------------------------------------------


Outcome = Literal["ok", "unknown", "inactive", "locked", "wrong"]


@dataclass(frozen=True)
class LoginAttempt:
    """What happened; pages show one generic message for every outcome but "ok"."""

    outcome: Outcome
    account: Account | None = None
    locked_for: int = 0  # seconds: this failure started a lockout

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


def lock_seconds(failures: int) -> int:
    if failures < LOCK_AFTER:
        return 0
    return int(min(LOCK_BASE_SECONDS * 2 ** (failures - LOCK_AFTER), LOCK_MAX_SECONDS))


def authenticate(engine: Engine, login: str, password: str) -> LoginAttempt:
    """Check a password; every path costs one argon2 verification, found or not."""
    account = get_by_login(engine, login)
    if account is None or not account.active:
        burn_time()
        return LoginAttempt("unknown" if account is None else "inactive", account)
    if account.locked_until > clock.now_micros():
        burn_time()  # not even a right password opens a locked account
        return LoginAttempt("locked", account)
    if not verify_password(account.password_hash, password):
        return LoginAttempt("wrong", account, locked_for=record_failure(engine, account.id))
    values: dict[str, Any] = {"failed_logins": 0, "locked_until": 0}
    if needs_rehash(account.password_hash):
        values["password_hash"] = hash_password(password)
    with engine.begin() as conn:
        conn.execute(update(accounts).where(accounts.c.id == account.id).values(**values))
    return LoginAttempt("ok", account)


def record_failure(engine: Engine, account_id: str) -> int:
    """Count a failed password or code; returns the seconds of lockout it causes (0: none)."""
    with engine.begin() as conn:
        conn.execute(
            update(accounts)
            .where(accounts.c.id == account_id)
            .values(failed_logins=accounts.c.failed_logins + 1)
        )
        failures = conn.execute(
            select(accounts.c.failed_logins).where(accounts.c.id == account_id)
        ).scalar_one()
        seconds = lock_seconds(failures)
        if seconds:
            conn.execute(
                update(accounts)
                .where(accounts.c.id == account_id)
                .values(locked_until=clock.now_micros() + seconds * MICROS)
            )
    return seconds


# -- TOTP ----------------------------------------------------------------------------


def begin_totp_enrolment(engine: Engine, account_id: str) -> str:
    """The secret to show on the enrolment page: a pending one is kept across reloads."""
    account = _require(engine, account_id)
    if account.totp_secret and not account.totp_enabled:
        return account.totp_secret
    if account.totp_enabled:
        raise AccountError("totp_enabled", "TOTP is already enabled")
    secret = mfa.new_secret()
    with engine.begin() as conn:
        conn.execute(
            update(accounts)
            .where(accounts.c.id == account_id)
            .values(totp_secret=secret, totp_last_step=0)
        )
    return secret


def enable_totp(engine: Engine, account_id: str, secret: str | None = None) -> str:
    """Turn TOTP on with a new (or given) secret without a confirming code: CLI and demo only."""
    _require(engine, account_id)
    secret = secret or mfa.new_secret()
    with engine.begin() as conn:
        conn.execute(
            update(accounts)
            .where(accounts.c.id == account_id)
            .values(totp_secret=secret, totp_enabled=True, totp_last_step=0)
        )
    return secret


def accept_totp(engine: Engine, account: Account, code: str, *, enrol: bool = False) -> bool:
    """Check a code and record its step, so the same code is refused next time.

    The step is stored with a compare-and-set on the previous value, so two requests
    racing with one code cannot both succeed.  ``enrol`` turns TOTP on with the pending
    secret when the code is right (the enrolment confirmation).
    """
    if not account.totp_secret or (account.totp_enabled == enrol):
        return False
    step = mfa.matching_step(account.totp_secret, code, after_step=account.totp_last_step)
    if step is None:
        return False
    values: dict[str, Any] = {"totp_last_step": step}
    if enrol:
        values["totp_enabled"] = True
    values["failed_logins"] = 0
    with engine.begin() as conn:
        done = conn.execute(
            update(accounts)
            .where(
                accounts.c.id == account.id,
                accounts.c.totp_secret == account.totp_secret,
                accounts.c.totp_last_step == account.totp_last_step,
            )
            .values(**values)
        )
    return done.rowcount == 1


def disable_totp(engine: Engine, account_id: str) -> Account:
    account = _require(engine, account_id)
    if account.is_staff:
        raise AccountError("totp_required", "staff accounts must keep a second factor")
    with engine.begin() as conn:
        conn.execute(
            update(accounts)
            .where(accounts.c.id == account_id)
            .values(totp_secret=None, totp_enabled=False, totp_last_step=0)
        )
    return _require(engine, account_id)


# -- password reset ------------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_reset(engine: Engine, account_id: str) -> str:
    """A one-time reset token valid for 30 minutes; only its sha256 is stored."""
    token = secrets.token_urlsafe(32)
    with engine.begin() as conn:
        conn.execute(
            insert(password_resets).values(
                token_hash=_token_hash(token),
                account_id=account_id,
                expires=clock.now_micros() + RESET_LIFETIME_SECONDS * MICROS,
            )
        )
    return token


def reset_target(engine: Engine, token: str) -> Account | None:
    """The account a still-usable token resets (without using it up)."""
    with engine.connect() as conn:
        row = conn.execute(
            select(password_resets.c.account_id).where(
                password_resets.c.token_hash == _token_hash(token),
                password_resets.c.used.is_(False),
                password_resets.c.expires > clock.now_micros(),
            )
        ).first()
    if row is None:
        return None
    account = get(engine, row.account_id)
    return account if account is not None and account.active else None


def use_reset(engine: Engine, token: str, password: str) -> Account | None:
    """Set the password if the token is valid, marking it used; None when it is not.

    The policy is checked first (a refused password leaves the token usable); the
    token is then claimed with a conditional update, so it works exactly once.
    """
    account = reset_target(engine, token)
    if account is None:
        return None
    check_policy(password, account.login)
    with engine.begin() as conn:
        claimed = conn.execute(
            update(password_resets)
            .where(
                password_resets.c.token_hash == _token_hash(token),
                password_resets.c.used.is_(False),
                password_resets.c.expires > clock.now_micros(),
            )
            .values(used=True)
        )
        if claimed.rowcount != 1:
            return None
    return set_password(engine, account.id, password)


# -- audit ---------------------------------------------------------------------------


def audit(
    engine: Engine,
    who: Account | str,
    events: Iterable[tuple[str, str, str]],
    *,
    client_id: str = "web",
) -> None:
    """Append sign-in events ``(interaction, outcome, detail)`` of one request in one insert.

    ``who`` is the account concerned, or an actor string: ``anonymous`` when a login
    matched no account, ``system:cli`` for the CLI.  Details never contain a password,
    a code or a token.
    """
    if isinstance(who, Account):
        actor, organization = who.actor, who.organization_ref
    else:
        actor, organization = who, ""
    buffer = AuditBuffer(AccessContext(actor, Scopes(()), client_id=client_id))
    for interaction, outcome, detail in events:
        buffer.add(interaction, outcome=outcome, detail=detail, organization=organization)
    buffer.flush_separately(engine)


def login_fingerprint(login: str) -> str:
    """A short digest of an unknown login: correlates repeated attempts without storing
    the text (people sometimes type their password into the login field)."""
    return hashlib.sha256(login.strip().casefold().encode()).hexdigest()[:12]
