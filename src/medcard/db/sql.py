"""Portable SQL idioms shared by the search builder and the access relations."""

from __future__ import annotations

from typing import Any


def by_resource(column: Any) -> Any:
    """``column || ''``: the same value, but no index can be searched by it.

    A correlated probe ("does this resource have code X?") must look the resource up by
    its id (a handful of index rows) rather than by the value (every resource with that
    code, across all patients).  SQLite's planner, without statistics, prefers the
    index with more equality columns, which is the value index; hiding ``param`` from
    it leaves the (resource_type, resource_id) index the only good choice on both
    SQLite and PostgreSQL.
    """
    return column.concat("")
