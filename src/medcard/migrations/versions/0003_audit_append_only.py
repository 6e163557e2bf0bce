"""Audit log append-only in the database: triggers refuse edits and deletions

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 13:30:00.000000

An entry may be changed once, by the sealer: from unsealed (chain_seq and hash NULL)
to sealed, touching nothing else (see medcard.audit.chain).  Every other UPDATE is
refused, on PostgreSQL and on SQLite.

DELETE (PostgreSQL): refused unless the statement empties the table.  Removing chosen
entries is what hides an access; emptying the whole log (test fixtures, resetting a
demo) hides nothing from anyone.  SQLite triggers are per row and cannot see the
whole statement, so there the hash chain alone reveals deletions.

A trigger stops the application and careless SQL, not the database's owner (who can
drop it or set session_replication_role); the hash chain is what shows tampering by
someone who did.  On SQLite, Alembic's batch mode rebuilds a table for most ALTERs
and drops its triggers: a later revision that alters audit_log re-creates them.
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

PG_UPGRADE = [
    """
    CREATE FUNCTION audit_log_refuse_update() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF OLD.chain_seq IS NOT NULL OR OLD.hash IS NOT NULL THEN
            RAISE EXCEPTION 'audit_log is append-only: entry % is sealed', OLD.id
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        IF NEW.chain_seq IS NULL OR NEW.hash IS NULL
           OR (to_jsonb(NEW) - 'chain_seq' - 'hash') <> (to_jsonb(OLD) - 'chain_seq' - 'hash') THEN
            RAISE EXCEPTION 'audit_log is append-only: entry % may only be sealed', OLD.id
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN NEW;
    END $$
    """,
    """
    CREATE TRIGGER audit_log_append_only_update BEFORE UPDATE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_update()
    """,
    """
    CREATE FUNCTION audit_log_refuse_delete() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF EXISTS (SELECT 1 FROM audit_log) THEN
            RAISE EXCEPTION 'audit_log is append-only: entries cannot be deleted'
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER audit_log_append_only_delete AFTER DELETE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_delete()
    """,
]

PG_DOWNGRADE = [
    "DROP TRIGGER IF EXISTS audit_log_append_only_delete ON audit_log",
    "DROP TRIGGER IF EXISTS audit_log_append_only_update ON audit_log",
    "DROP FUNCTION IF EXISTS audit_log_refuse_delete()",
    "DROP FUNCTION IF EXISTS audit_log_refuse_update()",
]

# Every column but chain_seq and hash, as of revision 0002.
_CONTENT = [
    "id",
    "recorded",
    "actor",
    "client_id",
    "action",
    "interaction",
    "resource_type",
    "resource_id",
    "patient_id",
    "outcome",
    "detail",
    "request_id",
    "purpose",
    "emergency",
    "organization",
]

_CHANGED = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in _CONTENT)

SQLITE_UPGRADE = [
    f"""
    CREATE TRIGGER audit_log_append_only_update BEFORE UPDATE ON audit_log
    WHEN OLD.chain_seq IS NOT NULL OR OLD.hash IS NOT NULL
      OR NEW.chain_seq IS NULL OR NEW.hash IS NULL
      OR {_CHANGED}
    BEGIN
        SELECT RAISE(ABORT, 'audit_log is append-only: entries may only be sealed');
    END
    """,
]

SQLITE_DOWNGRADE = ["DROP TRIGGER IF EXISTS audit_log_append_only_update"]


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    for statement in {"postgresql": PG_UPGRADE, "sqlite": SQLITE_UPGRADE}.get(dialect, []):
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for statement in {"postgresql": PG_DOWNGRADE, "sqlite": SQLITE_DOWNGRADE}.get(dialect, []):
        op.execute(statement)
