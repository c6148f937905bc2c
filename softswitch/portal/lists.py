"""Block and allow lists, the tenant's and each user's (guide 002): numbers, extensions or
prefixes ("+1900*") blocked or allowed (an allow entry overrides a block), anonymous callers
blocked, and what happens to calls marked as spam.

The tenant's list is part of the tenant's own document (changed by whoever may change the
tenant: operators and resellers); a user's list is part of their answering rules (changed
by whoever may change routing). Both are saved through the API's provisioning service as
one change: every line is checked first and a bad line is named at the field, with nothing
saved.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import TypeAdapter, ValidationError

from config.numbers import ListEntry, SpamTreatment
from softswitch.api.deps import TenantScope
from softswitch.api.errors import ApiError, not_found
from softswitch.api.provisioning import actor, applied, service
from softswitch.api.roles import Area
from softswitch.portal.frame import check_csrf, render, signed_in, tenant_scope
from softswitch.portal.session import PortalSession
from softswitch.provisioning import InvalidObject, Item, ProvisioningError

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

_ENTRY: TypeAdapter[str] = TypeAdapter(ListEntry)
SPAM = tuple(t.value for t in SpamTreatment)


def _owner(user: str | None) -> tuple[str, Area]:
    """The provisioning kind holding the list, and the area that may change it."""
    return ("answering", Area.ROUTING) if user else ("tenant", Area.TENANTS)


async def _item(scope: TenantScope, user: str | None) -> Item:
    kind, _ = _owner(user)
    if user is not None and (
        not scope.sees_extension(user) or scope.tenant.user_by_extension(user) is None
    ):
        raise not_found(f"user {user!r}")
    try:
        return await service(scope).get(kind, scope.tenant.name, user or scope.tenant.name)
    except ProvisioningError:
        if user is None:
            raise not_found(f"tenant {scope.tenant.name!r}") from None
        # A user's answering rules left at their defaults: nothing stored, version 0.
        return Item(scope.tenant.name, kind, user, 0, {})


def _block_of(item: Item, user: str | None) -> dict[str, Any]:
    holder = item.data if user else item.data.get("routing", {})
    block = holder.get("block", {})
    return block if isinstance(block, dict) else {}


async def _page(
    request: Request,
    session: PortalSession,
    tenant: str,
    user: str | None,
    status: int = 200,
    form: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
) -> HTMLResponse:
    _, area = _owner(user)
    scope = await tenant_scope(request, session, tenant, area, "r")
    block = _block_of(await _item(scope, user), user)
    shown = form or {
        "blocked": "\n".join(sorted(block.get("blocked", []))),
        "allowed": "\n".join(sorted(block.get("allowed", []))),
        "block_anonymous": bool(block.get("block_anonymous", False)),
        "spam": block.get("spam") or "",
    }
    p = session.principal
    users = [u.extension for u in scope.tenant.users if scope.sees_extension(u.extension)]
    return render(
        request,
        session,
        "lists.html",
        tenant,
        status,
        user=user,
        users=users if p.may(Area.ROUTING, "r") else [],
        may_change=p.may(area, "u"),
        form=shown,
        errors=errors or {},
        spam_choices=SPAM,
        saved=request.query_params.get("saved") == "1",
    )


@router.get("/t/{tenant}/lists", response_class=HTMLResponse)
async def lists(request: Request, tenant: str) -> HTMLResponse:
    """The tenant's lists, or ``?user=<extension>``'s."""
    user = request.query_params.get("user") or None
    return await _page(request, await signed_in(request), tenant, user)


def _entries(text: str, field: str, errors: dict[str, str]) -> list[str]:
    out: list[str] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(_ENTRY.validate_python(line))
        except ValidationError as exc:
            message = exc.errors()[0]["msg"].removeprefix("Value error, ")
            errors.setdefault(field, f"line {n}: {message}")
    return sorted(set(out))


@router.post("/t/{tenant}/lists", response_model=None)
async def save(
    request: Request,
    tenant: str,
    user: str = Form(""),
    blocked: str = Form(""),
    allowed: str = Form(""),
    block_anonymous: str = Form(""),
    spam: str = Form(""),
    csrf: str = Form(""),
) -> Response:
    session = await signed_in(request)
    check_csrf(session, request, csrf)
    owner = user.strip() or None
    kind, area = _owner(owner)
    scope = await tenant_scope(request, session, tenant, area, "u")
    current = await _item(scope, owner)
    form = {
        "blocked": blocked,
        "allowed": allowed,
        "block_anonymous": block_anonymous == "1",
        "spam": spam,
    }
    errors: dict[str, str] = {}
    block: dict[str, Any] = {
        "blocked": _entries(blocked, "blocked", errors),
        "allowed": _entries(allowed, "allowed", errors),
        "block_anonymous": form["block_anonymous"],
    }
    if spam and spam not in SPAM:
        errors["spam"] = f"one of {', '.join(SPAM)}"
    elif spam:
        block["spam"] = spam
    if not errors:
        data = dict(current.data)
        if owner:
            data["block"] = block
        else:
            data["routing"] = {**data.get("routing", {}), "block": block}
        svc, who = service(scope), actor(scope.principal, request)
        try:
            if current.version == 0:  # a user's default rules: nothing stored yet
                item = await svc.create(who, kind, scope.tenant.name, data, current.key)
            else:
                item = await svc.update(
                    who, kind, scope.tenant.name, current.key, data, current.version
                )
        except InvalidObject as exc:
            errors["form"] = "; ".join(e.message for e in exc.errors[:3])
        except ProvisioningError as exc:
            raise ApiError(409, "refused", str(exc)) from None
        else:
            await applied(scope, kind, current.key, "update", item.version)
            where = f"?user={owner}&saved=1" if owner else "?saved=1"
            return RedirectResponse(f"/t/{tenant}/lists{where}", status_code=303)
    return await _page(request, session, tenant, owner, 422, form, errors)
