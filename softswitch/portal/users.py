"""Users: the list (search and paging done by the API, so 10,000 users stay one page of
50), add and edit (profile, caller ID, credentials with a generated password shown once),
devices with their registration status, welcome details, delete after a confirmation and
bulk import from CSV/XLSX with the API's per-row report."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from softswitch.api import routes_live, routes_provisioning_ops
from softswitch.api.deps import TenantScope
from softswitch.api.errors import ApiError
from softswitch.api.paging import Page, decode_cursor, encode_cursor
from softswitch.api.provisioning import ObjectOut, out
from softswitch.api.roles import Area
from softswitch.portal.forms import FormErrors, endpoint, errors_of, form_text, upload_request
from softswitch.portal.frame import check_csrf, render, signed_in, tenant_scope
from softswitch.portal.session import PortalSession
from softswitch.provisioning import Item
from softswitch.provisioning.userimport import generated_password
from storage.errors import StorageError
from storage.object_pages import ObjectQuery

__all__ = ["PAGE_SIZE", "router"]

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50  # users per list page: the API pages, the browser never gets all of them

#: The user document's fields (as the API names them) -> the form's fields.
_FIELDS = {
    "extension": "extension",
    "display_name": "display_name",
    "username": "username",
    "password": "password",
    "caller_id": "caller_id",
    "site": "site",
    "record_calls": "record_calls",
    "can_monitor": "can_monitor",
}
_PROFILE = ("display_name", "username", "caller_id", "site")
_FLAGS = ("record_calls", "can_monitor")


def _base(tenant: str) -> str:
    return f"/t/{tenant}/users"


# -- the list ---------------------------------------------------------------------------------


@router.get("/t/{tenant}/users", response_class=HTMLResponse)
async def users(
    request: Request, tenant: str, q: str = "", cursor: str | None = None
) -> HTMLResponse:
    """One page of users, found by part of the extension or the name shown."""
    session = await signed_in(request)
    scope = await tenant_scope(request, session, tenant, Area.USERS, "r")
    found = await _page(scope, q.strip()[:64] or None, cursor)
    rows = [
        {
            "extension": o.key,
            "name": o.data.get("display_name", ""),
            "caller_id": o.data.get("caller_id", ""),
            "site": o.data.get("site", ""),
        }
        for o in found.items
    ]
    return render(
        request,
        session,
        "users.html",
        tenant,
        users=rows,
        total=found.total,
        q=q,
        next_cursor=found.next_cursor,
        may_create=session.principal.may(Area.USERS, "c") and scope.extensions is None,
    )


async def _page(scope: TenantScope, search: str | None, cursor: str | None) -> Page[ObjectOut]:
    """One page of the users the login sees, searched and paged by the database: digits
    match the extension, other text the extension or the name shown."""
    after = decode_cursor(cursor) if cursor else None
    if after is not None and not isinstance(after, str):
        raise ApiError(422, "validation_error", "cursor: not one this page gave", field="cursor")
    allowed = scope.extensions
    query = ObjectQuery(
        tenant=scope.tenant.name,
        kind="user",
        text=search,
        field=None if search is None or (search.isascii() and search.isdigit()) else "display_name",
        keys=None if allowed is None else tuple(sorted(allowed)),
        after=after,
    )
    try:
        total, objects = await scope.ctx.store.page_provisioning(query, PAGE_SIZE + 1)
    except StorageError as exc:  # a search text no database can hold (a NUL...)
        raise ApiError(422, "validation_error", f"q: {exc}", field="q") from None
    page = objects[:PAGE_SIZE]
    return Page[ObjectOut](
        total=total,
        items=[out(Item(o.tenant, o.kind, o.key, o.version, o.data)) for o in page],
        next_cursor=encode_cursor(page[-1].key) if len(objects) > PAGE_SIZE else None,
    )


# -- add --------------------------------------------------------------------------------------


def _sites(scope: TenantScope) -> list[str]:
    return [s.name for s in scope.tenant.sites]


def _document(form: dict[str, str]) -> dict[str, Any]:
    """The user fields a form sets; an empty text field is "not set" (null in a patch)."""
    doc: dict[str, Any] = {k: (form.get(k, "").strip() or None) for k in _PROFILE}
    for flag in _FLAGS:
        doc[flag] = form.get(flag) == "on"
    return doc


def _user_form(
    request: Request,
    session: PortalSession,
    tenant: str,
    scope: TenantScope,
    values: dict[str, Any],
    errors: FormErrors,
    *,
    new: bool,
    version: int = 0,
    devices: list[Any] | None = None,
    status: int = 200,
) -> HTMLResponse:
    return render(
        request,
        session,
        "user_edit.html",
        tenant,
        status,
        values=values,
        errors=errors,
        new=new,
        version=version,
        sites=_sites(scope),
        devices=devices,
        may_change=session.principal.may(Area.USERS, "u"),
        may_delete=session.principal.may(Area.USERS, "d") and not new,
        may_rules=session.principal.may(Area.ROUTING, "r"),
    )


@router.get("/t/{tenant}/users/new", response_class=HTMLResponse)
async def new_user(request: Request, tenant: str) -> HTMLResponse:
    session = await signed_in(request)
    scope = await tenant_scope(request, session, tenant, Area.USERS, "c")
    return _user_form(request, session, tenant, scope, {}, {}, new=True)


@router.post("/t/{tenant}/users/new", response_model=None)
async def create_user(request: Request, tenant: str) -> Response:
    """Create the user; the password (given, or generated) is shown on the answer once."""
    session = await signed_in(request)
    form = await form_text(request)
    check_csrf(session, request, form.get("csrf"))
    scope = await tenant_scope(request, session, tenant, Area.USERS, "c")
    extension = form.get("extension", "").strip()
    password = form.get("password", "") or generated_password()
    data = {
        "extension": extension,
        "password": password,
        **{k: v for k, v in _document(form).items() if v is not None and v is not False},
    }
    try:
        await endpoint("create_user")(data, request, Response(), scope)
    except ApiError as exc:
        errors = errors_of(exc, _FIELDS, key_field="extension")
        return _user_form(
            request, session, tenant, scope, form, errors, new=True, status=exc.status
        )
    fresh = await tenant_scope(request, session, tenant, Area.USERS, "r")  # with the user
    details = await routes_provisioning_ops.welcome(extension, fresh)
    details.password = password
    return render(request, session, "user_welcome.html", tenant, 201, welcome=details, fresh=True)


# -- edit -------------------------------------------------------------------------------------


async def _devices(
    request: Request, session: PortalSession, tenant: str, extension: str
) -> list[Any] | None:
    """The user's registered devices, or None when this login may not see registrations."""
    if not session.principal.may(Area.REGISTRATIONS, "r"):
        return None
    scope = await tenant_scope(request, session, tenant, Area.REGISTRATIONS, "r")
    found = await routes_live.registrations(
        scope, extension=extension, reachable=None, cursor=None, limit=50
    )
    return list(found.items)


def _values(data: dict[str, Any]) -> dict[str, Any]:
    return {k: data.get(k, "") or "" for k in ("extension", *_PROFILE)} | {
        f: bool(data.get(f)) for f in _FLAGS
    }


@router.get("/t/{tenant}/users/import", response_class=HTMLResponse)
async def import_form(request: Request, tenant: str) -> HTMLResponse:
    session = await signed_in(request)
    await tenant_scope(request, session, tenant, Area.USERS, "c")
    return render(request, session, "user_import.html", tenant, report=None, error=None)


@router.post("/t/{tenant}/users/import", response_class=HTMLResponse)
async def import_file(
    request: Request,
    tenant: str,
    file: UploadFile | None = None,
    csrf: str = Form(""),
    dry_run: str = Form(""),
) -> HTMLResponse:
    """The API's import with the uploaded file; its per-row report shown as a table."""
    session = await signed_in(request)
    check_csrf(session, request, csrf)
    scope = await tenant_scope(request, session, tenant, Area.USERS, "c")
    if file is None or not file.filename:
        return render(
            request,
            session,
            "user_import.html",
            tenant,
            422,
            report=None,
            error="Choose a .csv or .xlsx file.",
        )
    data = await file.read(2 * 1024 * 1024 + 1)
    report = await routes_provisioning_ops.import_user_file(
        upload_request(request, data),
        scope,
        filename=file.filename,
        dry_run=dry_run == "on",
    )
    status = 200 if report.applied or (dry_run and not report.errors) else 422
    return render(request, session, "user_import.html", tenant, status, report=report, error=None)


@router.get("/t/{tenant}/users/{extension}", response_class=HTMLResponse)
async def user(request: Request, tenant: str, extension: str) -> HTMLResponse:
    session = await signed_in(request)
    scope = await tenant_scope(request, session, tenant, Area.USERS, "r")
    item = await endpoint("get_user")(extension, Response(), scope)
    devices = await _devices(request, session, tenant, extension)
    return _user_form(
        request,
        session,
        tenant,
        scope,
        _values(item.data),
        {},
        new=False,
        version=item.version,
        devices=devices,
    )


@router.post("/t/{tenant}/users/{extension}", response_model=None)
async def save_user(request: Request, tenant: str, extension: str) -> Response:
    """Save the profile (a merge patch of the form's fields); nothing saved on an error."""
    session = await signed_in(request)
    form = await form_text(request)
    check_csrf(session, request, form.get("csrf"))
    scope = await tenant_scope(request, session, tenant, Area.USERS, "u")
    current = await endpoint("get_user")(extension, Response(), scope)
    values = {**form, "extension": extension}
    errors: FormErrors = {}
    if str(current.version) != form.get("version"):
        errors = {"": "Someone changed this user meanwhile: reload the page and try again."}
    else:
        try:
            await endpoint("patch_user")(extension, _document(form), request, Response(), scope)
        except ApiError as exc:
            errors = errors_of(exc, _FIELDS)
    if errors:
        devices = await _devices(request, session, tenant, extension)
        return _user_form(
            request,
            session,
            tenant,
            scope,
            values,
            errors,
            new=False,
            version=current.version,
            devices=devices,
            status=422,
        )
    return RedirectResponse(f"{_base(tenant)}/{extension}?saved=1", status_code=303)


@router.get("/t/{tenant}/users/{extension}/welcome", response_class=HTMLResponse)
async def welcome(request: Request, tenant: str, extension: str) -> HTMLResponse:
    session = await signed_in(request)
    scope = await tenant_scope(request, session, tenant, Area.USERS, "r")
    details = await routes_provisioning_ops.welcome(extension, scope)
    return render(request, session, "user_welcome.html", tenant, welcome=details, fresh=False)


@router.post("/t/{tenant}/users/{extension}/password", response_class=HTMLResponse)
async def new_password(
    request: Request, tenant: str, extension: str, csrf: str = Form("")
) -> HTMLResponse:
    """A generated SIP password, shown on this answer only."""
    session = await signed_in(request)
    check_csrf(session, request, csrf)
    scope = await tenant_scope(request, session, tenant, Area.USERS, "u")
    details = await routes_provisioning_ops.password_reset(extension, request, Response(), scope)
    return render(request, session, "user_welcome.html", tenant, welcome=details, fresh=True)


@router.get("/t/{tenant}/users/{extension}/delete", response_class=HTMLResponse)
async def confirm_delete(request: Request, tenant: str, extension: str) -> HTMLResponse:
    session = await signed_in(request)
    scope = await tenant_scope(request, session, tenant, Area.USERS, "d")
    item = await endpoint("get_user")(extension, Response(), scope)
    return render(request, session, "user_delete.html", tenant, user=_values(item.data))


@router.post("/t/{tenant}/users/{extension}/delete", response_model=None)
async def delete_user(
    request: Request, tenant: str, extension: str, csrf: str = Form("")
) -> Response:
    session = await signed_in(request)
    check_csrf(session, request, csrf)
    scope = await tenant_scope(request, session, tenant, Area.USERS, "d")
    await endpoint("delete_user")(extension, request, scope)
    return RedirectResponse(_base(tenant), status_code=303)
