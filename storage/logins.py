"""Admin API records: logins, API tokens, and the call-history query.

A login is a person (password, optional TOTP) or a machine account (tokens only). Its
role and scope decide what it may see; the API (softswitch/api) gives them meaning, the
store only keeps and validates them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from storage.cdr_search import fts_match, search_clause

__all__ = [
    "LOGIN_COLUMNS",
    "TOKEN_COLUMNS",
    "ApiLogin",
    "ApiToken",
    "CdrQuery",
    "cdr_query_sql",
    "login_from_row",
    "login_to_row",
    "token_from_row",
    "token_to_row",
]

LOGIN_COLUMNS: tuple[str, ...] = (
    "name",
    "role",
    "tenants",
    "site",
    "extension",
    "permissions",
    "password_hash",
    "totp_secret",
    "enabled",
    "created_at",
    "updated_at",
    "version",
)
TOKEN_COLUMNS: tuple[str, ...] = (
    "id",
    "login",
    "secret_hash",
    "kind",
    "description",
    "created_at",
    "expires_at",
    "revoked_at",
)


@dataclass(slots=True)
class ApiLogin:
    """Who may use the admin API. ``tenants`` is the scope (one tenant for an office
    manager, a reseller's customers, none for an operator); ``permissions`` maps an area
    to the letters of "crud" granted (an area not named keeps the role's own)."""

    name: str
    role: str
    tenants: list[str] = field(default_factory=list)
    site: str | None = None
    extension: str | None = None
    permissions: dict[str, str] = field(default_factory=dict)
    password_hash: str | None = None
    totp_secret: str | None = None
    enabled: bool = True
    created_at: float = 0.0
    updated_at: float = 0.0
    version: int = 1


@dataclass(slots=True)
class ApiToken:
    """A bearer token of a login: ``kind`` "api" (a machine's, long-lived) or "session"
    (handed out by a password login). Only the SHA-256 of its secret is kept."""

    id: str
    login: str
    secret_hash: str
    kind: str
    description: str = ""
    created_at: float = 0.0
    expires_at: float | None = None
    revoked_at: float | None = None


def _text(what: str, name: str, value: object, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or "\x00" in value:
        raise ValueError(f"{what}: {name} must be a string without NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{what}: {name} is not valid text") from None
    return value


def _time(what: str, name: str, value: object, *, optional: bool = False) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{what}: {name} must be a finite number of epoch seconds")
    return float(value)


def login_to_row(login: ApiLogin) -> tuple[Any, ...]:
    """Validate a login and flatten it in LOGIN_COLUMNS order; ValueError names the field."""
    if not isinstance(login, ApiLogin):
        raise ValueError(f"expected an ApiLogin, got {type(login).__name__}")
    what = f"login {login.name!r}"
    if not isinstance(login.name, str) or not login.name.strip():
        raise ValueError(f"{what}: name must not be empty")
    if not isinstance(login.tenants, list) or not all(isinstance(t, str) for t in login.tenants):
        raise ValueError(f"{what}: tenants must be a list of tenant names")
    if not isinstance(login.permissions, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in login.permissions.items()
    ):
        raise ValueError(f"{what}: permissions must map area names to letters of 'crud'")
    if not isinstance(login.enabled, bool):
        raise ValueError(f"{what}: enabled must be a bool")
    if isinstance(login.version, bool) or not isinstance(login.version, int) or login.version < 1:
        raise ValueError(f"{what}: version must be a positive integer")
    return (
        _text(what, "name", login.name),
        _text(what, "role", login.role),
        json.dumps(login.tenants),
        _text(what, "site", login.site, optional=True),
        _text(what, "extension", login.extension, optional=True),
        json.dumps(login.permissions, sort_keys=True),
        _text(what, "password_hash", login.password_hash, optional=True),
        _text(what, "totp_secret", login.totp_secret, optional=True),
        login.enabled,
        _time(what, "created_at", login.created_at),
        _time(what, "updated_at", login.updated_at),
        login.version,
    )


def login_from_row(row: Sequence[Any]) -> ApiLogin:
    """Rebuild a login from a row in LOGIN_COLUMNS order."""
    return ApiLogin(
        name=row[0],
        role=row[1],
        tenants=[str(t) for t in json.loads(row[2] or "[]")],
        site=row[3],
        extension=row[4],
        permissions={str(k): str(v) for k, v in json.loads(row[5] or "{}").items()},
        password_hash=row[6],
        totp_secret=row[7],
        enabled=bool(row[8]),
        created_at=float(row[9]),
        updated_at=float(row[10]),
        version=int(row[11]),
    )


def token_to_row(token: ApiToken) -> tuple[Any, ...]:
    """Validate a token and flatten it in TOKEN_COLUMNS order; ValueError names the field."""
    if not isinstance(token, ApiToken):
        raise ValueError(f"expected an ApiToken, got {type(token).__name__}")
    what = f"token {token.id!r}"
    if token.kind not in ("api", "session"):
        raise ValueError(f"{what}: kind must be 'api' or 'session'")
    return (
        _text(what, "id", token.id),
        _text(what, "login", token.login),
        _text(what, "secret_hash", token.secret_hash),
        token.kind,
        _text(what, "description", token.description),
        _time(what, "created_at", token.created_at),
        _time(what, "expires_at", token.expires_at, optional=True),
        _time(what, "revoked_at", token.revoked_at, optional=True),
    )


def token_from_row(row: Sequence[Any]) -> ApiToken:
    """Rebuild a token from a row in TOKEN_COLUMNS order."""
    return ApiToken(
        id=row[0],
        login=row[1],
        secret_hash=row[2],
        kind=row[3],
        description=row[4],
        created_at=float(row[5]),
        expires_at=None if row[6] is None else float(row[6]),
        revoked_at=None if row[7] is None else float(row[7]),
    )


@dataclass(frozen=True, slots=True)
class CdrQuery:
    """Filters of the call history (all optional, combined with AND).

    ``party`` is a user's extension: calls it made, was dialled on or answered.
    ``caller`` and ``dialled`` match a substring. ``after`` is the paging key
    ``(start, call_id)`` of the last row already seen (rows come newest first).
    """

    start: float | None = None
    end: float | None = None
    tenant: str | None = None
    tenants: tuple[str, ...] | None = None  # a scope of several tenants (a reseller's)
    party: str | None = None
    parties: tuple[str, ...] | None = None  # a site's extensions
    caller: str | None = None
    dialled: str | None = None
    disposition: str | None = None
    direction: str | None = None
    trunk: str | None = None
    after: tuple[float, str] | None = None


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def cdr_query_sql(
    query: CdrQuery, placeholder: str, *, search_table: str | None = None
) -> tuple[str, list[object]]:
    """The WHERE clause (with leading " WHERE", or "") and its parameters.

    ``placeholder`` is "?" (SQLite) or "$" (PostgreSQL, numbered $1, $2...).
    ``search_table``: SQLite's trigram index of caller and dialled numbers
    (storage.cdr_search), which narrows a "contains" search before its LIKE.

    A user's calls are an OR of three columns with the tenant and the period repeated in
    each branch, so each branch is served by its (tenant, column, start_time) index
    (migration 0012). SQLite's planner, without statistics, prefers the tenant's
    time index to those branches or to the trigram match; there the tenant and time terms
    outside them are written ``+column`` (not an index term) to leave it the better ones.
    """
    where: list[str] = []
    params: list[object] = []

    def param(value: object) -> str:
        params.append(value)
        return "?" if placeholder == "?" else f"${len(params)}"

    start = None if query.start is None else _time("query", "from", query.start)
    end = None if query.end is None else _time("query", "to", query.end)
    tenant = None if query.tenant is None else _text("query", "tenant", query.tenant)
    groups = [
        tuple(_text("query", "user", party) or "" for party in parties)
        for parties in ((query.party,) if query.party is not None else None, query.parties)
        if parties is not None
    ]
    contains: dict[str, str] = {}
    for column, value in (("caller_number", query.caller), ("dialled", query.dialled)):
        if value is not None:
            contains[column] = _text("query", column, value) or ""
    match = (
        fts_match(contains.get("caller_number"), contains.get("dialled")) if search_table else None
    )
    by_party = tenant is not None and any(groups)
    hint = "+" if placeholder == "?" and (by_party or match is not None) else ""

    if start is not None:
        where.append(f"{hint}start_time >= {param(start)}")
    if end is not None:
        where.append(f"{hint}start_time < {param(end)}")
    if tenant is not None:
        where.append(f"{hint}tenant = {param(tenant)}")
    for column, value in (
        ("disposition", query.disposition),
        ("direction", query.direction),
        ("trunk", query.trunk),
    ):
        if value is not None:
            where.append(f"{column} = {param(_text('query', column, value))}")
    if query.tenants is not None:
        if not query.tenants:
            where.append("1 = 0")
        else:
            where.append(f"tenant IN ({', '.join(param(t) for t in query.tenants)})")
    for parties in groups:
        if not parties:
            where.append("1 = 0")
            continue
        terms = []
        for party in parties:
            for column in ("caller_number", "dialled", "destination"):
                # one placeholder per use: SQLite's "?" are positional
                branch = [f"{column} = {param(party)}"]
                if tenant is not None:
                    branch.append(f"tenant = {param(tenant)}")
                if start is not None:
                    branch.append(f"start_time >= {param(start)}")
                if end is not None:
                    branch.append(f"start_time < {param(end)}")
                terms.append("(" + " AND ".join(branch) + ")")
        where.append("(" + " OR ".join(terms) + ")")
    for column, text in contains.items():
        where.append(f"{column} LIKE {param(_like(text))} ESCAPE '\\'")
    if match is not None:
        where.append(search_clause(param(match)))
    if query.after is not None:
        after, call_id = query.after
        # placeholders made in the order they appear (SQLite's "?" are positional)
        before = param(float(after))
        same = param(float(after))
        lower = param(call_id)
        where.append(
            f"({hint}start_time < {before} OR ({hint}start_time = {same} "
            f"AND {hint}call_id < {lower}))"
        )
    return (" WHERE " + " AND ".join(where) if where else ""), params
