"""Tables of the record store.

Every clinical row and every search-index row carries ``patient_id``, the patient
compartment key ('' for resources outside any patient compartment, such as
Organization), so card reads stay local and the schema can be distributed by patient.
Instants are stored as integer microseconds since the epoch: portable between SQLite
and PostgreSQL and cheap to compare.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

ID = 64

resources = Table(
    "resources",
    metadata,
    Column("resource_type", String(64), primary_key=True),
    Column("id", String(ID), primary_key=True),
    Column("version_id", Integer, nullable=False),
    Column("patient_id", String(ID), nullable=False, server_default=""),
    Column("last_updated", BigInteger, nullable=False),
    Column("deleted", Boolean, nullable=False, server_default="0"),
    Column("content", LargeBinary, nullable=False),
    # Entered in error (issue 7): the current version withdraws the entry, so every read,
    # search, history and $everything leaves it out; it keeps no search-index rows.
    Column("hidden", Boolean, nullable=False, server_default="0"),
    Index("ix_resources_patient", "patient_id", "resource_type", "last_updated"),
    Index("ix_resources_type_updated", "resource_type", "last_updated"),
)

resource_versions = Table(
    "resource_versions",
    metadata,
    Column("resource_type", String(64), primary_key=True),
    Column("id", String(ID), primary_key=True),
    Column("version_id", Integer, primary_key=True),
    Column("patient_id", String(ID), nullable=False, server_default=""),
    Column("last_updated", BigInteger, nullable=False),
    Column("deleted", Boolean, nullable=False, server_default="0"),
    Column("method", String(8), nullable=False),
    Column("content", LargeBinary, nullable=False),
    Index("ix_versions_type_updated", "resource_type", "last_updated"),
    Index("ix_versions_patient", "patient_id", "last_updated"),
)


def _index_table(name: str, *value_columns: Column[object], indexes: list[Index]) -> Table:
    return Table(
        name,
        metadata,
        Column("resource_type", String(64), nullable=False),
        Column("resource_id", String(ID), nullable=False),
        Column("patient_id", String(ID), nullable=False, server_default=""),
        Column("param", String(64), nullable=False),
        *value_columns,
        Index(f"ix_{name}_resource", "resource_type", "resource_id"),
        *indexes,
    )


sp_token = _index_table(
    "sp_token",
    Column("system", String(255), nullable=True),
    Column("code", String(255), nullable=True),
    indexes=[
        # resource_id last: counts and IN-subqueries are answered from the index alone.
        Index("ix_sp_token_value", "resource_type", "param", "code", "system", "resource_id"),
        Index("ix_sp_token_patient", "patient_id", "resource_type", "param", "code"),
    ],
)

sp_string = _index_table(
    "sp_string",
    Column("value", String(255), nullable=False),
    Column("exact", String(255), nullable=False),
    indexes=[Index("ix_sp_string_value", "resource_type", "param", "value")],
)

sp_date = _index_table(
    "sp_date",
    Column("low", BigInteger, nullable=False),
    Column("high", BigInteger, nullable=False),
    indexes=[
        Index("ix_sp_date_value", "resource_type", "param", "low", "high"),
        Index("ix_sp_date_patient", "patient_id", "resource_type", "param", "low"),
    ],
)

sp_reference = _index_table(
    "sp_reference",
    Column("target_type", String(64), nullable=True),
    Column("target_id", String(255), nullable=True),
    Column("url", Text, nullable=True),
    indexes=[
        Index("ix_sp_reference_target", "target_id", "resource_type", "param"),
        Index("ix_sp_reference_patient", "patient_id", "resource_type", "param"),
    ],
)

sp_quantity = _index_table(
    "sp_quantity",
    Column("value", Float, nullable=False),
    Column("system", String(255), nullable=True),
    Column("code", String(255), nullable=True),
    indexes=[Index("ix_sp_quantity_value", "resource_type", "param", "value")],
)

sp_number = _index_table(
    "sp_number",
    Column("value", Float, nullable=False),
    indexes=[Index("ix_sp_number_value", "resource_type", "param", "value")],
)

sp_uri = _index_table(
    "sp_uri",
    Column("value", Text, nullable=False),
    indexes=[Index("ix_sp_uri_value", "resource_type", "param", "value")],
)

INDEX_TABLES = {
    "token": sp_token,
    "string": sp_string,
    "date": sp_date,
    "reference": sp_reference,
    "quantity": sp_quantity,
    "number": sp_number,
    "uri": sp_uri,
}

audit_log = Table(
    "audit_log",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("recorded", BigInteger, nullable=False),
    Column("actor", String(255), nullable=False),
    Column("client_id", String(255), nullable=False, server_default=""),
    Column("action", String(1), nullable=False),
    Column("interaction", String(32), nullable=False),
    Column("resource_type", String(64), nullable=False, server_default=""),
    Column("resource_id", String(ID), nullable=False, server_default=""),
    Column("patient_id", String(ID), nullable=False, server_default=""),
    Column("outcome", String(2), nullable=False),
    Column("detail", Text, nullable=False, server_default=""),
    Column("request_id", String(64), nullable=False, server_default=""),
    Column("purpose", String(255), nullable=False, server_default=""),
    Column("emergency", Boolean, nullable=False, server_default="0"),
    Column("organization", String(128), nullable=False, server_default=""),
    # Tamper evidence: entries are chained in sealing order, each hashing the previous.
    Column("chain_seq", BigInteger, nullable=True),
    Column("hash", String(64), nullable=True),
    Index("ux_audit_chain_seq", "chain_seq", unique=True),
    Index("ix_audit_patient", "patient_id", "recorded"),
    Index("ix_audit_actor", "actor", "recorded"),
    Index("ix_audit_recorded", "recorded"),
)

import_progress = Table(
    "import_progress",
    metadata,
    Column("source", Text, primary_key=True),
    Column("position", Integer, nullable=False),
    Column("updated", BigInteger, nullable=False),
)


# -- people, sign-in and OAuth (non-FHIR: credentials and sessions) -------------------

accounts = Table(
    "accounts",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("login", String(255), nullable=False, unique=True),  # casefolded e-mail or phone
    Column("password_hash", Text, nullable=False),
    Column("role", String(32), nullable=False),
    # Further roles the same person holds (comma-separated; staff roles only), and the
    # one they chose to work in, which is also where they land after sign-in.
    Column("extra_roles", String(255), nullable=False, server_default=""),
    Column("home_role", String(32), nullable=False, server_default=""),
    Column("display_name", String(255), nullable=False, server_default=""),
    Column("fhir_ref", String(128), nullable=False, server_default=""),  # Patient/x, Practitioner/y
    Column("organization_ref", String(128), nullable=False, server_default=""),
    Column("region", String(16), nullable=False, server_default=""),
    Column("totp_secret", String(64), nullable=True),
    Column("totp_enabled", Boolean, nullable=False, server_default="0"),
    # The last accepted TOTP time step: a code is accepted once (no replay).
    Column("totp_last_step", BigInteger, nullable=False, server_default="0"),
    Column("failed_logins", Integer, nullable=False, server_default="0"),
    Column("locked_until", BigInteger, nullable=False, server_default="0"),
    Column("active", Boolean, nullable=False, server_default="1"),
    Column("lang", String(8), nullable=False, server_default="ru"),
    Column("created", BigInteger, nullable=False),
    Column("password_changed", BigInteger, nullable=False),
    # Revocation epoch (issue 14): bumped on logout, deactivation, password or role
    # change; an access token carrying an older one ("rev" claim) is refused.
    Column("token_epoch", Integer, nullable=False, server_default="0"),
    # Where the person wants notifications about their access (EMIAS route "change");
    # empty: the login, when it is an e-mail address.
    Column("notify_email", String(254), nullable=False, server_default=""),
    Index("ix_accounts_fhir_ref", "fhir_ref"),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),  # sha256 of the cookie value
    Column("account_id", String(36), nullable=False),
    Column("created", BigInteger, nullable=False),
    Column("last_seen", BigInteger, nullable=False),
    Column("expires", BigInteger, nullable=False),
    Column("mfa_ok", Boolean, nullable=False, server_default="0"),
    Column("csrf", String(64), nullable=False),
    Column("user_agent", String(255), nullable=False, server_default=""),
    Column("ip", String(64), nullable=False, server_default=""),
    Index("ix_sessions_account", "account_id"),
)

# SSO (issue 14): states already used at a callback, shared by every worker.

sso_states = Table(
    "sso_states",
    metadata,
    Column("state_hash", String(64), primary_key=True),  # sha256 of the state
    Column("expires", BigInteger, nullable=False),  # microseconds; purged after this
    Index("ix_sso_states_expires", "expires"),
)

password_resets = Table(
    "password_resets",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("account_id", String(36), nullable=False),
    Column("expires", BigInteger, nullable=False),
    Column("used", Boolean, nullable=False, server_default="0"),
)

oauth_clients = Table(
    "oauth_clients",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("secret_hash", Text, nullable=True),  # None for public clients (PKCE)
    Column("redirect_uris", Text, nullable=False, server_default="[]"),  # JSON list
    Column("grant_types", Text, nullable=False, server_default="[]"),  # JSON list
    Column("scope", Text, nullable=False, server_default=""),  # the most it may ask for
    Column("organization_ref", String(128), nullable=False, server_default=""),
    Column("active", Boolean, nullable=False, server_default="1"),
    Column("created", BigInteger, nullable=False),
)

oauth_codes = Table(
    "oauth_codes",
    metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("client_id", String(64), nullable=False),
    Column("account_id", String(36), nullable=False),
    Column("redirect_uri", Text, nullable=False),
    Column("scope", Text, nullable=False),
    Column("code_challenge", String(128), nullable=False, server_default=""),
    Column("code_challenge_method", String(16), nullable=False, server_default=""),
    Column("patient_id", String(64), nullable=False, server_default=""),
    Column("nonce", String(255), nullable=False, server_default=""),
    Column("expires", BigInteger, nullable=False),
    Column("used", Boolean, nullable=False, server_default="0"),
)

oauth_tokens = Table(
    "oauth_tokens",
    metadata,
    # sha256 of a refresh token, or the jti of an access token
    Column("token_hash", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),  # refresh | access
    Column("client_id", String(64), nullable=False),
    Column("account_id", String(36), nullable=False, server_default=""),
    Column("scope", Text, nullable=False),
    Column("patient_id", String(64), nullable=False, server_default=""),
    Column("issued", BigInteger, nullable=False),
    Column("expires", BigInteger, nullable=False),
    Column("revoked", Boolean, nullable=False, server_default="0"),
    Index("ix_oauth_tokens_account", "account_id"),
)

break_glass = Table(
    "break_glass",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("account_id", String(36), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("patient_id", String(64), nullable=False),
    Column("reason", Text, nullable=False),
    Column("started", BigInteger, nullable=False),
    Column("expires", BigInteger, nullable=False),
    Index("ix_break_glass_actor", "actor", "patient_id", "expires"),
    Index("ix_break_glass_patient", "patient_id", "started"),
)

# -- document signatures (issue 5): per-author keys; the private half encrypted at rest ----

signing_keys = Table(
    "signing_keys",
    metadata,
    Column("id", String(36), primary_key=True),  # the "kid" in every signature it makes
    Column("owner", String(128), nullable=False),  # "Practitioner/x"
    Column("algorithm", String(32), nullable=False),  # registry name: EdDSA, ES256, ...
    Column("public_key", Text, nullable=False),  # base64 of the algorithm's public encoding
    # Fernet token (key-encryption key in the data directory) of the private key
    Column("private_key", Text, nullable=False),
    Column("created", BigInteger, nullable=False),
    Column("active", Boolean, nullable=False, server_default="1"),
    Index("ix_signing_keys_owner", "owner", "active"),
)

# -- regions (issue 6): per-region configuration and the log of its changes ----------------

regions = Table(
    "regions",
    metadata,
    Column("code", String(16), primary_key=True),  # subject code: "77", "78"
    Column("name", String(200), nullable=False),
    Column("time_zone", String(64), nullable=False),  # IANA name: "Europe/Moscow"
    # JSON: features, organisations, SSO provider key, document-request deadline
    Column("settings", Text, nullable=False),
    Column("updated", BigInteger, nullable=False),
    Column("updated_by", String(128), nullable=False, server_default=""),
)

# Before/after of every change, so "who turned the diary off in region 78, and when" has
# an answer beyond the audit line (which records that a change happened, not its content).
region_changes = Table(
    "region_changes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("region", String(16), nullable=False),
    Column("changed", BigInteger, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("before", Text, nullable=False),  # JSON of the whole configuration ("" if new)
    Column("after", Text, nullable=False),
    Index("ix_region_changes_region", "region", "changed"),
)

# -- rate limits (issue 14): fixed-window counters every worker shares (Redis when set) ---

rate_counters = Table(
    "rate_counters",
    metadata,
    Column("key", String(200), primary_key=True),  # "login-ip:203.0.113.7"
    Column("window", BigInteger, primary_key=True),  # window start, seconds since the epoch
    Column("hits", Integer, nullable=False),
    Column("expires", BigInteger, nullable=False),  # seconds; rows past it are swept
    Index("ix_rate_counters_expires", "expires"),
)
