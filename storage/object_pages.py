"""One page of a tenant's provisioned objects of a kind (the portal's users list), found
and paged by the database: a search over the key and one document field, a scope of keys,
and keyset paging in the API's order (numeric keys by value, then the others by text), so
a page of 50 out of 10,000 users reads 50 documents, not 10,000.

Both backends run the same statement; the few expressions that differ are per dialect.
Matching is case-insensitive for ASCII letters (SQLite's LIKE, PostgreSQL's ILIKE).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from storage.provisioning import ProvisionedObject, check_text, decode_document, key_order

__all__ = ["ObjectQuery", "object_page_sql", "objects_from_rows"]

Dialect = Literal["sqlite", "postgresql"]
_FIELD = re.compile(r"^[a-z_]{1,32}$")
_NUMERIC_KEY_DIGITS = 18  # storage.provisioning.key_order: up to 18 digits sort by value


@dataclass(frozen=True, slots=True)
class ObjectQuery:
    """``text``: part of the key, or of the document's ``field`` when one is named;
    ``keys``: only these keys (a site manager's extensions); ``after``: the last key of the
    page already shown."""

    tenant: str
    kind: str
    text: str | None = None
    field: str | None = None
    keys: tuple[str, ...] | None = None
    after: str | None = None


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _order(dialect: Dialect) -> tuple[str, str, str]:
    if dialect == "sqlite":
        numeric = f"key <> '' AND key NOT GLOB '*[^0-9]*' AND length(key) <= {_NUMERIC_KEY_DIGITS}"
        return (
            f"(CASE WHEN {numeric} THEN 0 ELSE 1 END)",
            f"(CASE WHEN {numeric} THEN CAST(key AS INTEGER) ELSE 0 END)",
            "key",
        )
    numeric = f"key ~ '^[0-9]{{1,{_NUMERIC_KEY_DIGITS}}}$'"
    return (
        f"(CASE WHEN {numeric} THEN 0 ELSE 1 END)",
        f"(CASE WHEN {numeric} THEN key::bigint ELSE 0 END)",
        'key COLLATE "C"',
    )


def object_page_sql(
    query: ObjectQuery, dialect: Dialect, limit: int
) -> tuple[str, str, list[Any], list[Any]]:
    """``(count_sql, page_sql, count_params, page_params)``; raises ValueError for a field
    or text that cannot be stored."""
    params: list[Any] = []

    def param(value: Any) -> str:
        params.append(value)
        return "?" if dialect == "sqlite" else f"${len(params)}"

    like = "LIKE" if dialect == "sqlite" else "ILIKE"
    where = [
        f"tenant = {param(check_text('tenant', query.tenant))}",
        f"kind = {param(check_text('kind', query.kind))}",
    ]
    if query.text:
        pattern = _like(check_text("search", query.text))
        terms = [f"key {like} {param(pattern)} ESCAPE '\\'"]
        if query.field is not None:
            if not _FIELD.match(query.field):
                raise ValueError(f"search field {query.field!r}: not a document field")
            value = (
                f"json_extract(data, '$.{query.field}')"
                if dialect == "sqlite"
                else f"(data::jsonb ->> '{query.field}')"
            )
            terms.append(f"{value} {like} {param(pattern)} ESCAPE '\\'")
        where.append("(" + " OR ".join(terms) + ")")
    if query.keys is not None:
        if not query.keys:
            where.append("1 = 0")
        else:
            keys = ", ".join(param(check_text("key", k)) for k in query.keys)
            where.append(f"key IN ({keys})")
    count_sql = "SELECT count(*) FROM provisioning_objects WHERE " + " AND ".join(where)
    count_params = list(params)
    order = _order(dialect)
    if query.after is not None:
        rank, number, text = key_order(check_text("cursor", query.after))
        where.append(f"({', '.join(order)}) > ({param(rank)}, {param(number)}, {param(text)})")
    page_sql = (
        "SELECT tenant, kind, key, version, data, updated_at FROM provisioning_objects WHERE "
        + " AND ".join(where)
        + f" ORDER BY {', '.join(order)} LIMIT {param(int(limit))}"
    )
    return count_sql, page_sql, count_params, params


def objects_from_rows(rows: list[tuple[Any, ...]]) -> list[ProvisionedObject]:
    return [
        ProvisionedObject(r[0], r[1], r[2], int(r[3]), decode_document(r[4]) or {}, r[5])
        for r in rows
    ]
