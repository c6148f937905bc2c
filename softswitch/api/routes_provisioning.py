"""Create, read, replace, patch and delete every provisioning kind, tenant by tenant.

    GET    /v1/tenants/{tenant}/{collection}             {total, items, next_cursor}
    POST   /v1/tenants/{tenant}/{collection}             201, 409 when it exists
    GET    /v1/tenants/{tenant}/{collection}/{key}       with its ETag
    PUT    /v1/tenants/{tenant}/{collection}/{key}       If-Match (412 when it changed)
    PATCH  /v1/tenants/{tenant}/{collection}/{key}       a JSON merge patch (RFC 7396)
    DELETE /v1/tenants/{tenant}/{collection}/{key}

One row of ``RESOURCES`` per kind: a kind added to the model (mailboxes, menus, queues)
gets its endpoints by adding a row here. Where a live view owns the bare GET of an object
(conferences, disaster plans) the stored document is at ``.../{key}/settings``. Tenants
themselves: ``POST /v1/tenants``, ``GET /v1/tenants/{tenant}/settings``, ``PUT``/``PATCH``/
``DELETE /v1/tenants/{tenant}`` (the list and the summary are in routes_routing).
"""

# No `from __future__ import annotations`: the endpoints of each kind are made in a function
# (`_add`) and FastAPI must see their annotations evaluated, local dependencies included.

import dataclasses
from collections.abc import Awaitable, Callable
from enum import Enum
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response

from softswitch.api.deps import TenantScope, allowed, context, scoped
from softswitch.api.errors import COMMON_ERRORS, ApiError, ErrorBody, not_found
from softswitch.api.etag import check_if_match, with_etag
from softswitch.api.events import config_changed
from softswitch.api.paging import DEFAULT_LIMIT, Cursor, Limit, Page, decode_cursor, encode_cursor
from softswitch.api.principal import Principal
from softswitch.api.provisioning import (
    ObjectOut,
    Resource,
    actor,
    applied,
    apply_now,
    basic_user_fields,
    is_basic_user,
    item_etag,
    out,
    refused,
    service,
    unmasked,
)
from softswitch.api.roles import Area, Role
from softswitch.provisioning import KINDS, Item, ProvisioningError, ProvisioningService
from storage.object_pages import ObjectQuery
from storage.provisioning import key_order

__all__ = ["RESOURCES", "reach", "router"]

RESOURCES: tuple[Resource, ...] = (
    Resource("user", "users", Area.USERS, "extension", filters=("site", "can_monitor")),
    Resource("answering", "answering", Area.ROUTING, "extension"),
    Resource("trunk", "trunks", Area.TENANTS, "name"),
    Resource("conference", "conferences", Area.CONFERENCES, "name", live_view=True, shared=True),
    Resource(
        "time_frame",
        "time-frames",
        Area.ROUTING,
        "name",
        key_is_path=True,
        shared=True,
        filters=("owner",),
    ),
    Resource(
        "number", "numbers", Area.NUMBERS, "E.164 number", filters=("treatment", "destination")
    ),
    Resource(
        "disaster_plan", "disaster-plans", Area.DISASTER_PLANS, "name", live_view=True, shared=True
    ),
    Resource("site", "sites", Area.SITES, "name", shared=True),
    Resource("auto_attendant", "auto-attendants", Area.ROUTING, "name", shared=True),
    Resource("queue", "queues", Area.QUEUES, "name", filters=("strategy",), shared=True),
    Resource("ring_group", "ring-groups", Area.ROUTING, "name", filters=("strategy",), shared=True),
    Resource("mailbox", "mailboxes", Area.VOICEMAIL, "extension"),
)

_WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorBody, "description": "it exists already"},
    412: {"model": ErrorBody, "description": "If-Match does not match the object's ETag"},
}

router = APIRouter(responses=COMMON_ERRORS)

Document = Annotated[dict[str, Any], Body(description="the object's fields, as in the file")]
Where = Annotated[
    list[str],
    Query(max_length=8, description="field=value: keep objects whose field has that value"),
]
Search = Annotated[str | None, Query(max_length=64, description="part of the key")]


def _merge(target: Any, patch: Any) -> Any:
    """RFC 7396: objects merge, null removes a field (back to its default)."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        else:
            result[k] = _merge(result.get(k), v)
    return result


def _sort_key(key: str) -> tuple[int, int, str]:
    return key_order(key)  # the Store's page order (storage.provisioning.key_order)


def _visible(
    scope: TenantScope, res: Resource, key: str, data: dict[str, Any], *, write: bool = False
) -> bool:
    allowed_exts = scope.extensions
    if allowed_exts is None:
        return True
    owner = res.owner(key, data)
    if owner is None:
        return res.shared and not write
    return owner in allowed_exts


def _may_write(scope: TenantScope, res: Resource, key: str, data: dict[str, Any]) -> None:
    """403 when the new document leaves the caller's scope (a site manager's user in
    another site, a time frame of another extension)."""
    principal = scope.principal
    if scope.extensions is None:
        return
    if res.kind == "user" and principal.role is Role.SITE_MANAGER:
        if data.get("site") != principal.site:
            raise ApiError(
                403,
                "forbidden",
                f"not permitted: users outside site {principal.site!r}",
                field="body.site",
            )
        return
    if not _visible(scope, res, key, data, write=True):
        raise ApiError(403, "forbidden", "not permitted: objects of other extensions")


def _basic_user_limits(
    scope: TenantScope, res: Resource, old: dict[str, Any], new: dict[str, Any]
) -> None:
    if res.kind not in ("user", "mailbox") or not is_basic_user(scope.principal):
        return
    free = basic_user_fields(res.kind)
    for name in sorted(set(old) | set(new)):
        if name not in free and old.get(name) != new.get(name):
            raise ApiError(403, "forbidden", f"not permitted: change {name}", field=f"body.{name}")


async def _load(scope: TenantScope, res: Resource, key: str) -> Item:
    """The object as stored, 404 when it does not exist or the caller does not see it. A
    user's answering rules left at their defaults are an object of version 0."""
    svc = service(scope)
    try:
        item = await svc.get(res.kind, scope.tenant.name, key)
    except ProvisioningError:
        if res.kind == "answering" and scope.tenant.user_by_extension(key) is not None:
            item = Item(scope.tenant.name, res.kind, key, 0, {})
        else:
            raise not_found(f"{res.kind.replace('_', ' ')} {key!r}") from None
    if not _visible(scope, res, key, item.data):
        raise not_found(f"{res.kind.replace('_', ' ')} {key!r}")
    return item


def _with_key(res: Resource, key: str, data: dict[str, Any]) -> dict[str, Any]:
    """A PUT's document with its key fields from the path when the body leaves them out."""
    if res.kind == "answering":
        return data
    if res.kind == "time_frame":
        owner, sep, name = key.rpartition("/")
        filled = {"name": name, **data}
        if sep and "owner" not in data:
            filled["owner"] = owner
        return filled
    return {KINDS[res.kind].key_field: key, **data}


def _add(res: Resource) -> None:
    """The endpoints of one kind."""
    base = f"/v1/tenants/{{tenant}}/{res.collection}"
    one = base + ("/{key:path}" if res.key_is_path else "/{key}")
    Key = Annotated[str, Path(max_length=160, description=f"the object's {res.key_name}")]
    tags: list[str | Enum] = [res.collection.replace("-", " ")]
    noun = res.kind.replace("_", " ")

    def allowed_to(action: str) -> Callable[..., Awaitable[TenantScope]]:
        return scoped(res.area, action)

    async def list_objects(
        scope: Annotated[TenantScope, Depends(allowed_to("r"))],
        where: Where = [],  # noqa: B006 - FastAPI reads the default, never mutates it
        q: Search = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Page[ObjectOut]:
        wanted: dict[str, str] = {}
        for clause in where:
            name, sep, value = clause.partition("=")
            if not sep or name not in res.filters:
                raise ApiError(
                    422,
                    "validation_error",
                    f"query.where: give field=value, fields: {', '.join(res.filters) or 'none'}",
                    field="query.where",
                )
            wanted[name] = value
        after = decode_cursor(cursor)
        if after is not None and not isinstance(after, str):
            raise ApiError(
                422,
                "validation_error",
                "query.cursor: not a cursor this API gave",
                field="query.cursor",
            )
        if not wanted and q is None and scope.extensions is None:
            # Nothing to filter: the Store pages it (a count and one page, not every row).
            total, page = await scope.ctx.store.page_provisioning(
                ObjectQuery(scope.tenant.name, res.kind, after=after), limit + 1
            )
            return Page[ObjectOut](
                total=total,
                items=[out(Item(o.tenant, o.kind, o.key, o.version, o.data)) for o in page[:limit]],
                next_cursor=encode_cursor(page[limit - 1].key) if len(page) > limit else None,
            )
        objects = await scope.ctx.store.load_provisioning(scope.tenant.name, res.kind)
        found = sorted(
            (
                o
                for o in objects
                if _visible(scope, res, o.key, o.data)
                and (q is None or q.lower() in o.key.lower())
                and all(_text(o.data.get(f)) == v for f, v in wanted.items())
            ),
            key=lambda o: _sort_key(o.key),
        )
        rest = found if after is None else [o for o in found if _sort_key(o.key) > _sort_key(after)]
        page = rest[:limit]
        return Page[ObjectOut](
            total=len(found),
            items=[out(Item(o.tenant, o.kind, o.key, o.version, o.data)) for o in page],
            next_cursor=encode_cursor(page[-1].key) if len(rest) > limit else None,
        )

    async def get_object(
        key: Key, response: Response, scope: Annotated[TenantScope, Depends(allowed_to("r"))]
    ) -> ObjectOut:
        item = await _load(scope, res, key)
        with_etag(response, item_etag(item))
        return out(item)

    async def create_object(
        data: Document,
        request: Request,
        response: Response,
        scope: Annotated[TenantScope, Depends(allowed_to("c"))],
    ) -> ObjectOut:
        svc = service(scope)
        key = ""
        if res.kind == "answering":
            extension = data.pop("extension", None)
            if not isinstance(extension, str) or not extension:
                raise ApiError(
                    422,
                    "validation_error",
                    "body.extension: the user the rules are for",
                    field="body.extension",
                )
            key = extension
        probe_key = key or _probe_key(res, data)
        _may_write(scope, res, probe_key, data)
        try:
            item = await svc.create(
                actor(scope.principal, request), res.kind, scope.tenant.name, data, key
            )
        except ProvisioningError as exc:
            raise refused(exc, res.kind, key) from None
        await applied(scope, res.kind, item.key, "create", item.version)
        with_etag(response, item_etag(item))
        response.headers["Location"] = (
            f"/v1/tenants/{scope.tenant.name}/{res.collection}/{item.key}"
        )
        response.status_code = 201
        return out(item)

    async def _write(
        request: Request,
        response: Response,
        scope: TenantScope,
        key: str,
        patch: dict[str, Any] | None,
        data: dict[str, Any] | None,
    ) -> ObjectOut:
        current = await _load(scope, res, key)
        check_if_match(request, item_etag(current))
        if patch is not None:
            new = _merge(current.data, patch)
        else:
            assert data is not None
            new = unmasked(_with_key(res, key, data), current.data)
        _may_write(scope, res, key, new)
        _basic_user_limits(scope, res, current.data, new)
        svc: ProvisioningService = service(scope)
        who = actor(scope.principal, request)
        try:
            if current.version == 0:
                item = await svc.create(who, res.kind, scope.tenant.name, new, key)
            else:
                item = await svc.update(
                    who, res.kind, scope.tenant.name, key, new, expected_version=current.version
                )
        except ProvisioningError as exc:
            raise refused(exc, res.kind, key) from None
        await applied(scope, res.kind, key, "update", item.version)
        with_etag(response, item_etag(item))
        return out(item)

    async def replace_object(
        key: Key,
        data: Document,
        request: Request,
        response: Response,
        scope: Annotated[TenantScope, Depends(allowed_to("u"))],
    ) -> ObjectOut:
        return await _write(request, response, scope, key, None, data)

    async def patch_object(
        key: Key,
        data: Document,
        request: Request,
        response: Response,
        scope: Annotated[TenantScope, Depends(allowed_to("u"))],
    ) -> ObjectOut:
        return await _write(request, response, scope, key, data, None)

    async def delete_object(
        key: Key, request: Request, scope: Annotated[TenantScope, Depends(allowed_to("d"))]
    ) -> Response:
        current = await _load(scope, res, key)
        check_if_match(request, item_etag(current))
        if current.version == 0:
            raise not_found(f"{noun} {key!r}")  # the defaults of a user: nothing stored
        try:
            await service(scope).delete(
                actor(scope.principal, request), res.kind, scope.tenant.name, key, current.version
            )
        except ProvisioningError as exc:
            raise refused(exc, res.kind, key) from None
        await applied(scope, res.kind, key, "delete", current.version)
        return Response(status_code=204)

    settings = "/settings" if res.live_view else ""
    if not res.live_view:
        router.add_api_route(
            base,
            list_objects,
            methods=["GET"],
            response_model=Page[ObjectOut],
            tags=tags,
            name=f"list_{res.kind}",
            summary=f"List {noun}s (stored documents)",
        )
    router.add_api_route(
        base,
        create_object,
        methods=["POST"],
        response_model=ObjectOut,
        status_code=201,
        tags=tags,
        name=f"create_{res.kind}",
        summary=f"Create a {noun}",
        responses=_WRITE_ERRORS,
    )
    router.add_api_route(
        one + settings if not res.key_is_path else one,
        get_object,
        methods=["GET"],
        response_model=ObjectOut,
        tags=tags,
        name=f"get_{res.kind}",
        summary=f"A {noun}'s document",
    )
    for method, endpoint, verb in (
        ("PUT", replace_object, "Replace"),
        ("PATCH", patch_object, "Patch"),
    ):
        router.add_api_route(
            one,
            endpoint,
            methods=[method],
            response_model=ObjectOut,
            tags=tags,
            name=f"{verb.lower()}_{res.kind}",
            summary=f"{verb} a {noun}",
            responses=_WRITE_ERRORS,
        )
    router.add_api_route(
        one,
        delete_object,
        methods=["DELETE"],
        status_code=204,
        response_class=Response,
        tags=tags,
        name=f"delete_{res.kind}",
        summary=f"Delete a {noun}",
        responses=_WRITE_ERRORS,
    )


def _probe_key(res: Resource, data: dict[str, Any]) -> str:
    value = data.get(KINDS[res.kind].key_field)
    if res.kind == "time_frame" and data.get("owner") is not None:
        return f"{data['owner']}/{value}"
    return str(value) if value is not None else ""


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


for _resource in RESOURCES:
    _add(_resource)


# -- tenants ----------------------------------------------------------------------------------


@router.post(
    "/v1/tenants",
    response_model=ObjectOut,
    status_code=201,
    tags=["tenants"],
    responses=_WRITE_ERRORS,
)
async def create_tenant(
    data: Document,
    request: Request,
    response: Response,
    principal: Annotated[Principal, Depends(allowed(Area.TENANTS, "c"))],
) -> ObjectOut:
    """A new tenant (a reseller's customer: its login reaches it from now on)."""
    ctx = context(request)
    svc = ctx.switch.provisioning.service
    name = data.get("name")
    try:
        item = await svc.create(actor(principal, request), "tenant", str(name or ""), data)
    except ProvisioningError as exc:
        raise refused(exc, "tenant") from None
    if principal.role is not Role.OPERATOR:
        await reach(ctx, principal, item.key)
    await apply_now(ctx.switch.provisioning)
    ctx.events.publish(
        config_changed(item.key, "tenant", item.key, action="create", version=item.version)
    )
    with_etag(response, item_etag(item))
    response.headers["Location"] = f"/v1/tenants/{item.key}"
    return out(item)


async def reach(ctx: Any, principal: Principal, tenant: str) -> None:
    """Add a tenant a reseller created to its login's scope."""
    login = await ctx.store.load_api_login(principal.login)
    if login is None or tenant in login.tenants:
        return
    changed = dataclasses.replace(login, tenants=[*login.tenants, tenant])
    await ctx.store.update_api_login(changed, login.version)
    ctx.tokens.forget()  # the login's cached principal lacks the new tenant


async def _tenant_item(scope: TenantScope) -> Item:
    try:
        return await service(scope).get("tenant", scope.tenant.name, scope.tenant.name)
    except ProvisioningError as exc:
        raise refused(exc, "tenant") from None


@router.get("/v1/tenants/{tenant}/settings", response_model=ObjectOut, tags=["tenants"])
async def tenant_settings(
    response: Response, scope: Annotated[TenantScope, Depends(scoped(Area.TENANTS, "r"))]
) -> ObjectOut:
    """The tenant's own document (limits, trunks order, prompts...; its users, numbers and
    the rest are objects of their own). Its ETag is what PUT/PATCH/DELETE check."""
    item = await _tenant_item(scope)
    with_etag(response, item_etag(item))
    return out(item)


async def _write_tenant(
    request: Request,
    response: Response,
    scope: TenantScope,
    new: dict[str, Any] | None,
    patch: bool,
) -> ObjectOut:
    current = await _tenant_item(scope)
    check_if_match(request, item_etag(current))
    assert new is not None
    data = (
        _merge(current.data, new)
        if patch
        else unmasked({"name": scope.tenant.name, **new}, current.data)
    )
    try:
        item = await service(scope).update(
            actor(scope.principal, request),
            "tenant",
            scope.tenant.name,
            scope.tenant.name,
            data,
            expected_version=current.version,
        )
    except ProvisioningError as exc:
        raise refused(exc, "tenant", scope.tenant.name) from None
    await applied(scope, "tenant", item.key, "update", item.version)
    with_etag(response, item_etag(item))
    return out(item)


@router.put(
    "/v1/tenants/{tenant}", response_model=ObjectOut, tags=["tenants"], responses=_WRITE_ERRORS
)
async def replace_tenant(
    data: Document,
    request: Request,
    response: Response,
    scope: Annotated[TenantScope, Depends(scoped(Area.TENANTS, "u"))],
) -> ObjectOut:
    return await _write_tenant(request, response, scope, data, patch=False)


@router.patch(
    "/v1/tenants/{tenant}", response_model=ObjectOut, tags=["tenants"], responses=_WRITE_ERRORS
)
async def patch_tenant(
    data: Document,
    request: Request,
    response: Response,
    scope: Annotated[TenantScope, Depends(scoped(Area.TENANTS, "u"))],
) -> ObjectOut:
    return await _write_tenant(request, response, scope, data, patch=True)


@router.delete(
    "/v1/tenants/{tenant}",
    status_code=204,
    response_class=Response,
    tags=["tenants"],
    responses=_WRITE_ERRORS,
)
async def delete_tenant(
    request: Request, scope: Annotated[TenantScope, Depends(scoped(Area.TENANTS, "d"))]
) -> Response:
    """The tenant with everything in it."""
    current = await _tenant_item(scope)
    check_if_match(request, item_etag(current))
    try:
        await service(scope).delete(
            actor(scope.principal, request),
            "tenant",
            scope.tenant.name,
            scope.tenant.name,
            current.version,
        )
    except ProvisioningError as exc:
        raise refused(exc, "tenant", scope.tenant.name) from None
    await applied(scope, "tenant", scope.tenant.name, "delete", current.version)
    return Response(status_code=204)
