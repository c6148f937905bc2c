"""The numbers inventory: the list (search, filter by treatment, paging by the API), a
number's treatment, destination, caller-ID prefix and notes, adding and deleting one,
import from CSV/XLSX with the API's validation report (the parser of ``routing.imports``,
as ``softswitch numbers import``), and export as CSV in the columns an import takes."""

from __future__ import annotations

import csv
import io
from typing import Any

from fastapi import APIRouter, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from config.numbers import Treatment
from routing.imports import DID_COLUMNS
from softswitch.api import routes_provisioning_ops
from softswitch.api.deps import TenantScope
from softswitch.api.errors import ApiError
from softswitch.api.paging import MAX_LIMIT
from softswitch.api.roles import Area
from softswitch.portal.forms import FormErrors, endpoint, errors_of, form_text, upload_request
from softswitch.portal.frame import check_csrf, render, signed_in, tenant_scope
from softswitch.portal.session import PortalSession

__all__ = ["PAGE_SIZE", "router"]

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
_TREATMENTS = [(t.value, t.value.replace("_", " ")) for t in Treatment]
# The model checks the destination against the treatment as a whole (no field of its own).
_FIELDS = {"": "destination", **{f: f for f in DID_COLUMNS}}


def _base(tenant: str) -> str:
    return f"/t/{tenant}/numbers"


def _row(data: dict[str, Any]) -> dict[str, str]:
    return {c: str(data.get(c, "user" if c == "treatment" else "")) for c in DID_COLUMNS}


@router.get("/t/{tenant}/numbers", response_class=HTMLResponse)
async def numbers(
    request: Request,
    tenant: str,
    q: str = "",
    treatment: str = "",
    cursor: str | None = None,
) -> HTMLResponse:
    session = await signed_in(request)
    scope = await tenant_scope(request, session, tenant, Area.NUMBERS, "r")
    wanted = treatment if treatment in {t.value for t in Treatment} else ""
    found = await endpoint("list_number")(
        scope,
        where=[f"treatment={wanted}"] if wanted else [],
        q=q.strip()[:64] or None,
        cursor=cursor or None,
        limit=PAGE_SIZE,
    )
    return render(
        request,
        session,
        "numbers.html",
        tenant,
        numbers=[_row(o.data) for o in found.items],
        total=found.total,
        q=q,
        treatment=wanted,
        treatments=_TREATMENTS,
        next_cursor=found.next_cursor,
        may_create=session.principal.may(Area.NUMBERS, "c") and scope.extensions is None,
    )


@router.get("/t/{tenant}/numbers.csv")
async def export(request: Request, tenant: str) -> Response:
    """The numbers this login sees, as CSV (the columns an import takes)."""
    session = await signed_in(request)
    scope = await tenant_scope(request, session, tenant, Area.NUMBERS, "r")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(DID_COLUMNS)
    cursor = None
    while True:
        found = await endpoint("list_number")(
            scope, where=[], q=None, cursor=cursor, limit=MAX_LIMIT
        )
        for o in found.items:
            writer.writerow(_row(o.data).values())
        cursor = found.next_cursor
        if cursor is None:
            break
    return Response(
        out.getvalue(),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{tenant}-numbers.csv"'},
    )


def _number_form(
    request: Request,
    session: PortalSession,
    tenant: str,
    values: dict[str, Any],
    errors: FormErrors,
    *,
    new: bool,
    version: int = 0,
    status: int = 200,
) -> HTMLResponse:
    return render(
        request,
        session,
        "number_edit.html",
        tenant,
        status,
        values=values,
        errors=errors,
        new=new,
        version=version,
        treatments=_TREATMENTS,
        may_change=session.principal.may(Area.NUMBERS, "u"),
        may_delete=session.principal.may(Area.NUMBERS, "d") and not new,
    )


def _document(form: dict[str, str]) -> dict[str, Any]:
    return {c: form.get(c, "").strip() for c in DID_COLUMNS if c != "number"}


@router.get("/t/{tenant}/numbers/new", response_class=HTMLResponse)
async def new_number(request: Request, tenant: str) -> HTMLResponse:
    session = await signed_in(request)
    await tenant_scope(request, session, tenant, Area.NUMBERS, "c")
    return _number_form(request, session, tenant, {"treatment": "user"}, {}, new=True)


@router.post("/t/{tenant}/numbers/new", response_model=None)
async def create_number(request: Request, tenant: str) -> Response:
    session = await signed_in(request)
    form = await form_text(request)
    check_csrf(session, request, form.get("csrf"))
    scope = await tenant_scope(request, session, tenant, Area.NUMBERS, "c")
    data = {"number": form.get("number", "").strip(), **_document(form)}
    try:
        item = await endpoint("create_number")(data, request, Response(), scope)
    except ApiError as exc:
        errors = errors_of(exc, _FIELDS, key_field="number")
        return _number_form(request, session, tenant, form, errors, new=True, status=exc.status)
    return RedirectResponse(f"{_base(tenant)}?q={item.key.lstrip('+')}", status_code=303)


@router.get("/t/{tenant}/numbers/import", response_class=HTMLResponse)
async def import_form(request: Request, tenant: str) -> HTMLResponse:
    session = await signed_in(request)
    await tenant_scope(request, session, tenant, Area.NUMBERS, "c")
    return render(request, session, "number_import.html", tenant, report=None, error=None)


@router.post("/t/{tenant}/numbers/import", response_class=HTMLResponse)
async def import_file(
    request: Request,
    tenant: str,
    file: UploadFile | None = None,
    csrf: str = Form(""),
    dry_run: str = Form(""),
) -> HTMLResponse:
    """The API's import with the uploaded file; its validation report as a table."""
    session = await signed_in(request)
    check_csrf(session, request, csrf)
    scope: TenantScope = await tenant_scope(request, session, tenant, Area.NUMBERS, "c")
    if file is None or not file.filename:
        return render(
            request,
            session,
            "number_import.html",
            tenant,
            422,
            report=None,
            error="Choose a .csv or .xlsx file.",
        )
    data = await file.read(2 * 1024 * 1024 + 1)
    report = await routes_provisioning_ops.import_numbers(
        upload_request(request, data), scope, filename=file.filename, dry_run=dry_run == "on"
    )
    status = 200 if report.applied or (dry_run and not report.errors) else 422
    return render(request, session, "number_import.html", tenant, status, report=report, error=None)


@router.get("/t/{tenant}/numbers/{number}", response_class=HTMLResponse)
async def number(request: Request, tenant: str, number: str) -> HTMLResponse:
    session = await signed_in(request)
    scope = await tenant_scope(request, session, tenant, Area.NUMBERS, "r")
    item = await endpoint("get_number")(number, Response(), scope)
    return _number_form(
        request, session, tenant, _row(item.data), {}, new=False, version=item.version
    )


@router.post("/t/{tenant}/numbers/{number}", response_model=None)
async def save_number(request: Request, tenant: str, number: str) -> Response:
    """Save treatment, destination, caller-ID prefix and notes; nothing on an error."""
    session = await signed_in(request)
    form = await form_text(request)
    check_csrf(session, request, form.get("csrf"))
    scope = await tenant_scope(request, session, tenant, Area.NUMBERS, "u")
    current = await endpoint("get_number")(number, Response(), scope)
    errors: FormErrors = {}
    if str(current.version) != form.get("version"):
        errors = {"": "Someone changed this number meanwhile: reload the page and try again."}
    else:
        data = {"number": current.key, **_document(form)}
        try:
            await endpoint("replace_number")(number, data, request, Response(), scope)
        except ApiError as exc:
            errors = errors_of(exc, _FIELDS)
    if errors:
        values = {**form, "number": current.key}
        return _number_form(
            request,
            session,
            tenant,
            values,
            errors,
            new=False,
            version=current.version,
            status=422,
        )
    return RedirectResponse(f"{_base(tenant)}/{number}?saved=1", status_code=303)


@router.post("/t/{tenant}/numbers/{number}/delete", response_model=None)
async def delete_number(
    request: Request, tenant: str, number: str, csrf: str = Form("")
) -> Response:
    session = await signed_in(request)
    check_csrf(session, request, csrf)
    scope = await tenant_scope(request, session, tenant, Area.NUMBERS, "d")
    await endpoint("delete_number")(number, request, scope)
    return RedirectResponse(_base(tenant), status_code=303)
