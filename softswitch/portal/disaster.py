"""Disaster plans (guide 000): the list with each plan's status, a new plan, a plan's page
(numbers added one at a time or from a CSV/XLSX upload with its validation report, numbers
removed, the plan's history), and execute and revert after a confirmation page (the guides'
"are you sure?": a plan forwards live numbers).

Plans are provisioning objects (kind ``disaster_plan``): a change goes through the API's
provisioning service, in one transaction, checked by the tenant's whole model, audited and
applied live; execute, revert and the history are the API's own route functions. An upload
is checked row by row by ``routing.imports`` (the parser of ``POST .../import``) and applied
only when every row is valid.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from routing.disaster import DisasterError, get_plan, number_problem
from routing.imports import MAX_UPLOAD_BYTES, ImportReport, validate_disaster_import
from softswitch.api import routes_routing
from softswitch.api.deps import TenantScope
from softswitch.api.errors import ApiError, not_found
from softswitch.api.provisioning import actor, applied, service
from softswitch.api.roles import Area
from softswitch.portal.frame import LIST_LIMIT, check_csrf, render, signed_in, tenant_scope
from softswitch.portal.session import PortalSession
from softswitch.provisioning import InvalidObject, Item, ProvisioningError

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

Action = Literal["execute", "revert"]
KIND = "disaster_plan"
_NUMBER_FIELD_REASONS = ("invalid number", "not in the number inventory", "number is", "already")


def _plans_url(tenant: str) -> str:
    return f"/t/{tenant}/disaster-plans"


def _plan_url(tenant: str, name: str) -> str:
    return f"{_plans_url(tenant)}/{quote(name, safe='')}"


async def _list(
    request: Request,
    session: PortalSession,
    tenant: str,
    status: int = 200,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> HTMLResponse:
    scope = await tenant_scope(request, session, tenant, Area.DISASTER_PLANS, "r")
    found = await routes_routing.disaster_plans(scope, cursor=None, limit=LIST_LIMIT)
    history = await routes_routing.disaster_history(scope, plan=None, cursor=None, limit=20)
    p = session.principal
    return render(
        request,
        session,
        "disaster_plans.html",
        tenant,
        status,
        plans=found.items,
        history=history.items,
        may_change=p.may(Area.DISASTER_PLANS, "u"),
        may_create=p.may(Area.DISASTER_PLANS, "c"),
        form=form or {},
        errors=errors or {},
    )


@router.get("/t/{tenant}/disaster-plans", response_class=HTMLResponse)
async def plans(request: Request, tenant: str) -> HTMLResponse:
    return await _list(request, await signed_in(request), tenant)


def _field_errors(exc: InvalidObject) -> dict[str, str]:
    """Field -> message of a refused change; problems elsewhere in the model under "form"."""
    errors: dict[str, str] = {}
    for e in exc.errors:
        top = e.field.split(".", 1)[0].split("[", 1)[0] if e.kind == KIND else ""
        errors.setdefault(top or "form", f"{e.field}: {e.message}" if e.field else e.message)
    return errors


@router.post("/t/{tenant}/disaster-plans", response_model=None)
async def create(
    request: Request,
    tenant: str,
    name: str = Form(""),
    region: str = Form(""),
    number_type: str = Form("did"),
    csrf: str = Form(""),
) -> Response:
    """A new, empty plan (status saved); its numbers are added on its page."""
    session = await signed_in(request)
    check_csrf(session, request, csrf)
    scope = await tenant_scope(request, session, tenant, Area.DISASTER_PLANS, "c")
    form = {"name": name.strip(), "region": region.strip(), "number_type": number_type}
    errors: dict[str, str] = {}
    if not form["name"]:
        errors["name"] = "give the plan a name"
    if number_type not in ("did", "toll_free"):
        errors["number_type"] = "DID or toll-free"
    if not errors:
        try:
            item = await service(scope).create(
                actor(scope.principal, request), KIND, scope.tenant.name, dict(form), ""
            )
        except InvalidObject as exc:
            errors = _field_errors(exc)
        except ProvisioningError as exc:
            exists = "exists" in str(exc)
            errors["name"] = f"a plan named {form['name']!r} exists already" if exists else str(exc)
        else:
            await applied(scope, KIND, item.key, "create", item.version)
            return RedirectResponse(_plan_url(tenant, item.key), status_code=303)
    return await _list(request, session, tenant, 422, form, errors)


# -- one plan ---------------------------------------------------------------------------------


async def _stored(scope: TenantScope, name: str) -> Item:
    try:
        return await service(scope).get(KIND, scope.tenant.name, name)
    except ProvisioningError:
        raise not_found(f"disaster plan {name!r}") from None


async def _page(
    request: Request,
    session: PortalSession,
    tenant: str,
    name: str,
    status: int = 200,
    **values: Any,
) -> HTMLResponse:
    scope = await tenant_scope(request, session, tenant, Area.DISASTER_PLANS, "r")
    plan = await routes_routing.disaster_plan(name, Response(), scope)
    history = await routes_routing.disaster_history(scope, plan=name, cursor=None, limit=50)
    values.setdefault("form", {})
    values.setdefault("errors", {})
    return render(
        request,
        session,
        "disaster_plan.html",
        tenant,
        status,
        plan=plan,
        history=history.items,
        may_change=session.principal.may(Area.DISASTER_PLANS, "u"),
        max_upload_mb=MAX_UPLOAD_BYTES // (1024 * 1024),
        **values,
    )


@router.get("/t/{tenant}/disaster-plans/{name}", response_class=HTMLResponse)
async def plan_page(request: Request, tenant: str, name: str) -> HTMLResponse:
    return await _page(request, await signed_in(request), tenant, name)


async def _store_numbers(
    request: Request, scope: TenantScope, current: Item, numbers: list[dict[str, str]], how: str
) -> None:
    """Store the plan with ``numbers`` (all or nothing); InvalidObject when refused."""
    item = await service(scope).update(
        actor(scope.principal, request),
        KIND,
        scope.tenant.name,
        current.key,
        {**current.data, "numbers": numbers},
        expected_version=current.version,
    )
    await applied(scope, KIND, current.key, how, item.version)


@router.post("/t/{tenant}/disaster-plans/{name}/numbers", response_model=None)
async def add_number(
    request: Request,
    tenant: str,
    name: str,
    number: str = Form(""),
    forward_to: str = Form(""),
    csrf: str = Form(""),
) -> Response:
    """One number of the inventory and the outside number it forwards to."""
    session = await signed_in(request)
    check_csrf(session, request, csrf)
    scope = await tenant_scope(request, session, tenant, Area.DISASTER_PLANS, "u")
    current = await _stored(scope, name)
    form = {"number": number.strip(), "forward_to": forward_to.strip()}
    errors: dict[str, str] = {}
    try:
        plan = get_plan(scope.tenant.routing, name)
    except DisasterError:
        raise not_found(f"disaster plan {name!r}") from None
    e164, target, reason = number_problem(
        scope.tenant.routing, plan, form["number"], form["forward_to"]
    )
    if reason is not None:
        field = "number" if reason.startswith(_NUMBER_FIELD_REASONS) else "forward_to"
        errors[field] = reason
    else:
        numbers = [*current.data.get("numbers", []), {"number": e164, "forward_to": target}]
        try:
            await _store_numbers(request, scope, current, numbers, "update")
        except InvalidObject as exc:
            errors = {"number": next(iter(_field_errors(exc).values()))}
        except ProvisioningError as exc:
            raise ApiError(409, "refused", str(exc)) from None
    if errors:
        return await _page(request, session, tenant, name, 422, form=form, errors=errors)
    return RedirectResponse(_plan_url(tenant, name), status_code=303)


@router.post("/t/{tenant}/disaster-plans/{name}/numbers/remove", response_model=None)
async def remove_number(
    request: Request, tenant: str, name: str, number: str = Form(""), csrf: str = Form("")
) -> Response:
    session = await signed_in(request)
    check_csrf(session, request, csrf)
    scope = await tenant_scope(request, session, tenant, Area.DISASTER_PLANS, "u")
    current = await _stored(scope, name)
    numbers = [n for n in current.data.get("numbers", []) if n.get("number") != number]
    if len(numbers) == len(current.data.get("numbers", [])):
        raise not_found(f"number {number!r} in disaster plan {name!r}")
    try:
        await _store_numbers(request, scope, current, numbers, "update")
    except ProvisioningError as exc:
        raise ApiError(409, "refused", str(exc)) from None
    return RedirectResponse(_plan_url(tenant, name), status_code=303)


@router.post("/t/{tenant}/disaster-plans/{name}/import", response_class=HTMLResponse)
async def import_numbers(
    request: Request,
    tenant: str,
    name: str,
    upload: Annotated[UploadFile, File()],
    check_only: str = Form(""),
    csrf: str = Form(""),
) -> HTMLResponse:
    """Numbers from CSV or XLSX (columns number, forward_to): the validation report, row by
    row; the numbers are added only when every row is valid (and not when checking only)."""
    session = await signed_in(request)
    check_csrf(session, request, csrf)
    scope = await tenant_scope(request, session, tenant, Area.DISASTER_PLANS, "u")
    current = await _stored(scope, name)
    data = await upload.read(MAX_UPLOAD_BYTES + 1)
    try:
        report = validate_disaster_import(
            scope.tenant.routing, name, upload.filename or "upload.csv", data
        )
    except DisasterError:
        raise not_found(f"disaster plan {name!r}") from None
    added = False
    if report.clean and not check_only:
        numbers = [*current.data.get("numbers", [])]
        numbers += [{"number": n.number, "forward_to": n.forward_to} for n in report.items]
        try:
            await _store_numbers(request, scope, current, numbers, "import")
            added = True
        except InvalidObject as exc:
            report = ImportReport(report.rows, next(iter(_field_errors(exc).values())), ())
    status = 200 if report.clean else 422
    return await _page(
        request, session, tenant, name, status, report=report, added=added, upload=upload.filename
    )


# -- execute and revert ----------------------------------------------------------------------


@router.get("/t/{tenant}/disaster-plans/{name}/{action}", response_class=HTMLResponse)
async def confirm(request: Request, tenant: str, name: str, action: Action) -> HTMLResponse:
    """The confirmation page: what the plan will do, and the button that does it."""
    session = await signed_in(request)
    scope = await tenant_scope(request, session, tenant, Area.DISASTER_PLANS, "u")
    plan = await routes_routing.disaster_plan(name, Response(), scope)
    return render(request, session, "disaster_confirm.html", tenant, plan=plan, action=action)


@router.post("/t/{tenant}/disaster-plans/{name}/{action}", response_model=None)
async def change(
    request: Request, tenant: str, name: str, action: Action, csrf: str = Form("")
) -> Response:
    session = await signed_in(request)
    check_csrf(session, request, csrf)
    scope = await tenant_scope(request, session, tenant, Area.DISASTER_PLANS, "u")
    operation = routes_routing.execute if action == "execute" else routes_routing.revert
    await operation(name, request, Response(), scope)
    return RedirectResponse(_plan_url(tenant, name), status_code=303)
