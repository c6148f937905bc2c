"""``GET /v1/audit``: who changed which provisioning object, when, from where, before and
after (secrets masked), newest first; an operator sees every tenant, other roles the
tenants their login reaches."""

from __future__ import annotations

import heapq
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from softswitch.api.deps import allowed, context
from softswitch.api.errors import COMMON_ERRORS, ApiError
from softswitch.api.paging import DEFAULT_LIMIT, Cursor, Limit, Page, decode_cursor, encode_cursor
from softswitch.api.principal import Principal
from softswitch.api.roles import Area, Role
from storage.provisioning import AuditQuery, AuditRecord

__all__ = ["router"]

router = APIRouter(responses=COMMON_ERRORS, tags=["audit"])


class AuditEntry(BaseModel):
    id: int
    at: float
    actor: str
    source: str
    action: str
    tenant: str
    kind: str
    key: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    revision: int


def _entry(r: AuditRecord) -> AuditEntry:
    return AuditEntry(
        id=r.id,
        at=r.at,
        actor=r.actor,
        source=r.source,
        action=r.action,
        tenant=r.tenant,
        kind=r.kind,
        key=r.key,
        before=r.before,
        after=r.after,
        revision=r.revision,
    )


Text = Annotated[str | None, Query(max_length=160)]
Epoch = Annotated[float | None, Query(ge=0, le=1e11, description="Unix time, seconds")]


@router.get("/v1/audit", response_model=Page[AuditEntry])
async def audit(
    request: Request,
    principal: Annotated[Principal, Depends(allowed(Area.AUDIT, "r"))],
    tenant: Text = None,
    actor: Text = None,
    kind: Text = None,
    key: Text = None,
    since: Epoch = None,
    until: Epoch = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[AuditEntry]:
    """Audited changes, newest first, filtered by tenant, actor (``api:<login>``, ``seed``,
    ``file``...), kind, key and time range (``since`` <= at < ``until``)."""
    before = decode_cursor(cursor)
    if before is not None and (
        isinstance(before, bool) or not isinstance(before, int) or not 0 < before < 2**62
    ):
        raise ApiError(
            422,
            "validation_error",
            "query.cursor: not a cursor this API gave",
            field="query.cursor",
        )
    if principal.role is Role.OPERATOR:
        tenants: list[str | None] = [tenant]
    elif tenant is not None:
        tenants = [tenant] if principal.sees_tenant(tenant) else []
    else:
        tenants = [*sorted(principal.tenants)]
    store = context(request).store
    found: list[list[AuditRecord]] = []
    for name in tenants:
        query = AuditQuery(
            tenant=name,
            kind=kind,
            key=key,
            actor=actor,
            since=since,
            until=until,
            before_id=before,
            limit=limit + 1,
        )
        found.append(await store.load_audit(query))
    records = list(heapq.merge(*found, key=lambda r: -r.id))[: limit + 1]
    more = len(records) > limit
    records = records[:limit]
    return Page[AuditEntry](
        total=await _count(store, tenants, kind, key, actor, since, until),
        items=[_entry(r) for r in records],
        next_cursor=encode_cursor(records[-1].id) if more and records else None,
    )


async def _count(
    store: Any,
    tenants: list[str | None],
    kind: str | None,
    key: str | None,
    actor: str | None,
    since: float | None,
    until: float | None,
) -> int:
    """How many entries match in all (the audit log is read in pages of 10,000)."""
    total = 0
    for name in tenants:
        before: int | None = None
        while True:
            query = AuditQuery(
                tenant=name,
                kind=kind,
                key=key,
                actor=actor,
                since=since,
                until=until,
                before_id=before,
                limit=10_000,
            )
            chunk = await store.load_audit(query)
            total += len(chunk)
            if len(chunk) < 10_000:
                break
            before = chunk[-1].id
    return total
