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
        Index("ix_sp_token_value", "resource_type", "param", "code", "system"),
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
