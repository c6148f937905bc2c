"""Provisioning operations beyond create/read/update/delete, as the guides list them:

- a user's password reset (the generated password is shown once) and welcome details;
- users imported from CSV/XLSX with a per-row report (``softswitch.provisioning.userimport``);
- answering rules reordered;
- time frames switched on or off in bulk (guide 002's domain time frames);
- numbers: a range at once, and CSV/XLSX import with a per-row report (the parser of
  ``routing.imports``, as ``softswitch numbers import``);
- disaster plans: numbers imported from CSV/XLSX (create is ``POST .../disaster-plans``;
  execute, revert and history are in routes_routing).

Every change is one transaction through the provisioning service: all of it or nothing.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, Field

from config.numbers import NumberError, Treatment, to_e164
from routing.disaster import DisasterError
from routing.imports import ImportReport, validate_did_import, validate_disaster_import
from softswitch.api.deps import TenantScope, scoped
from softswitch.api.errors import COMMON_ERRORS, ApiError, ErrorBody, not_found
from softswitch.api.etag import check_if_match, with_etag
from softswitch.api.provisioning import ObjectOut, actor, applied, item_etag, out, refused, service
from softswitch.api.roles import Area
from softswitch.provisioning import InvalidObject, Item, ObjectChange, ProvisioningError
from softswitch.provisioning.userimport import COLUMNS as USER_COLUMNS
from softswitch.provisioning.userimport import generated_password, import_users

__all__ = ["ImportReportOut", "router", "upload_body"]

router = APIRouter(prefix="/v1/tenants/{tenant}", responses=COMMON_ERRORS)

_CHANGE: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorBody, "description": "refused (exists already)"},
    412: {"model": ErrorBody, "description": "If-Match does not match the object's ETag"},
}
Extension = Annotated[str, Path(max_length=8, description="the user's extension")]


async def _current(scope: TenantScope, request: Request, kind: str, key: str) -> Item:
    """The stored object an operation changes, 404 when missing, 412 when If-Match is off."""
    try:
        current = await service(scope).get(kind, scope.tenant.name, key)
    except ProvisioningError:
        raise not_found(f"{kind.replace('_', ' ')} {key!r}") from None
    check_if_match(request, item_etag(current))
    return current


async def _rewrite(
    scope: TenantScope,
    request: Request,
    current: Item,
    data: dict[str, Any],
    operation: str,
) -> Item:
    """Store ``data`` over ``current`` (refused when it moved on meanwhile), audited as
    ``operation`` and applied live."""
    try:
        item = await service(scope).update(
            actor(scope.principal, request),
            current.kind,
            scope.tenant.name,
            current.key,
            data,
            expected_version=current.version,
        )
    except ProvisioningError as exc:
        raise refused(exc, current.kind, current.key) from None
    await applied(scope, current.kind, current.key, operation, item.version)
    return item


def _own(scope: TenantScope, extension: str) -> None:
    if not scope.sees_extension(extension) or scope.tenant.user_by_extension(extension) is None:
        raise not_found(f"user {extension!r}")


# -- users: password reset, welcome details ---------------------------------------------------


class Welcome(BaseModel):
    """What a new user (or whoever sets up their phone) needs."""

    extension: str
    display_name: str
    sip_username: str
    sip_domain: str
    registrar: list[str] = Field(description="where phones register: transport, host and port")
    site: str | None
    site_address: str | None = None
    site_timezone: str | None = Field(default=None, description="the site's local time zone")
    emergency_caller_id: str | None = Field(
        default=None, description="the caller ID emergency calls from the site present"
    )
    voicemail: bool
    password: str | None = Field(
        default=None, description="only in the answer of a password reset, and only then"
    )


def _welcome(scope: TenantScope, extension: str, password: str | None = None) -> Welcome:
    tenant = scope.ctx.tenant(scope.tenant.name) or scope.tenant
    user = tenant.user_by_extension(extension)
    if user is None:
        raise not_found(f"user {extension!r}")
    listeners = scope.ctx.switch.config.sip.listen
    rules = tenant.routing.users.get(extension)
    site = next((s for s in tenant.sites if s.name == user.site), None)
    return Welcome(
        extension=user.extension,
        display_name=user.display_name,
        sip_username=user.username,
        sip_domain=tenant.domain,
        registrar=[f"{x.transport}:{x.host}:{x.port}" for x in listeners],
        site=user.site,
        site_address=site.address if site is not None else None,
        site_timezone=site.timezone if site is not None else None,
        emergency_caller_id=site.emergency_caller_id if site is not None else None,
        voicemail=rules.voicemail if rules is not None else True,
        password=password,
    )


@router.get("/users/{extension}/welcome", response_model=Welcome, tags=["users"])
async def welcome(
    extension: Extension, scope: Annotated[TenantScope, Depends(scoped(Area.USERS, "r"))]
) -> Welcome:
    """The user's welcome details: SIP account, domain, registrar, site, voicemail."""
    _own(scope, extension)
    return _welcome(scope, extension)


@router.post(
    "/users/{extension}/password-reset", response_model=Welcome, tags=["users"], responses=_CHANGE
)
async def password_reset(
    extension: Extension,
    request: Request,
    response: Response,
    scope: Annotated[TenantScope, Depends(scoped(Area.USERS, "u"))],
) -> Welcome:
    """A new generated SIP password, shown in this answer only (stored HA1s are dropped)."""
    _own(scope, extension)
    current = await _current(scope, request, "user", extension)
    password = generated_password()
    data = {k: v for k, v in current.data.items() if k not in ("ha1_md5", "ha1_sha256")}
    data["password"] = password
    item = await _rewrite(scope, request, current, data, "password_reset")
    with_etag(response, item_etag(item))
    return _welcome(scope, extension, password)


# -- answering rules: reorder -----------------------------------------------------------------


class ReorderIn(BaseModel):
    order: list[int] = Field(
        max_length=200,
        description="the rules' current positions (1 = top) in their new order, each once",
    )


@router.post(
    "/answering/{extension}/reorder",
    response_model=ObjectOut,
    tags=["answering"],
    responses=_CHANGE,
)
async def reorder(
    extension: Extension,
    body: ReorderIn,
    request: Request,
    response: Response,
    scope: Annotated[TenantScope, Depends(scoped(Area.ROUTING, "u"))],
) -> ObjectOut:
    """Put a user's answering rules in a new order (the top-most active rule applies)."""
    _own(scope, extension)
    current = await _current(scope, request, "answering", extension)
    rules = list(current.data.get("rules", []))
    if sorted(body.order) != list(range(1, len(rules) + 1)):
        raise ApiError(
            422,
            "validation_error",
            f"body.order: give each position from 1 to {len(rules)} once",
            field="body.order",
        )
    data = {**current.data, "rules": [rules[i - 1] for i in body.order]}
    item = await _rewrite(scope, request, current, data, "reorder")
    with_etag(response, item_etag(item))
    return out(item)


# -- time frames: bulk toggle -----------------------------------------------------------------


class ToggleIn(BaseModel):
    names: list[str] = Field(
        min_length=1,
        max_length=500,
        description="time frame keys: a domain frame's name, or owner/name of a user's",
    )
    enabled: bool


@router.post(
    "/time-frame-toggle", response_model=list[ObjectOut], tags=["time frames"], responses=_CHANGE
)
async def toggle_time_frames(
    body: ToggleIn,
    request: Request,
    scope: Annotated[TenantScope, Depends(scoped(Area.ROUTING, "u"))],
) -> list[ObjectOut]:
    """Switch several time frames on or off at once (all or none)."""
    stored = {
        o.key: o for o in await scope.ctx.store.load_provisioning(scope.tenant.name, "time_frame")
    }
    changes = []
    for i, name in enumerate(body.names):
        found = stored.get(name)
        owner = found.data.get("owner") if found is not None else None
        if found is None or not (
            scope.extensions is None or (owner is not None and scope.sees_extension(str(owner)))
        ):
            raise ApiError(
                404, "not_found", f"time frame {name!r} not found", field=f"body.names.{i}"
            )
        changes.append(
            ObjectChange(
                scope.tenant.name,
                "time_frame",
                {**found.data, "enabled": body.enabled},
                name,
                found.version,
            )
        )
    items = await _batch(scope, request, changes)
    for item in items:
        await applied(scope, "time_frame", item.key, "toggle", item.version)
    return [out(i) for i in items]


async def _batch(scope: TenantScope, request: Request, changes: list[ObjectChange]) -> list[Item]:
    try:
        return await service(scope).change_many(actor(scope.principal, request), changes)
    except ProvisioningError as exc:
        raise refused(exc, changes[0].kind if changes else "") from None


# -- numbers: a range, an import --------------------------------------------------------------


class RangeIn(BaseModel):
    first: str = Field(max_length=20, description="the first E.164 number")
    count: int = Field(ge=1, le=1000)
    treatment: Treatment = Treatment.USER
    destination: str = Field(default="", max_length=64)
    notes: str = Field(default="", max_length=500)


@router.post(
    "/number-ranges",
    response_model=list[ObjectOut],
    status_code=201,
    tags=["numbers"],
    responses=_CHANGE,
)
async def number_range(
    body: RangeIn,
    request: Request,
    scope: Annotated[TenantScope, Depends(scoped(Area.NUMBERS, "c"))],
) -> list[ObjectOut]:
    """``count`` consecutive numbers from ``first``, all with the same treatment (all or
    none: 409 when one exists)."""
    try:
        first = to_e164(body.first)
    except NumberError as exc:
        raise ApiError(
            422, "validation_error", f"body.first: {exc.reason}", field="body.first"
        ) from None
    start = int(first[1:])
    changes = [
        ObjectChange(
            scope.tenant.name,
            "number",
            {
                "number": f"+{start + i}",
                "treatment": body.treatment.value,
                "destination": body.destination,
                "notes": body.notes,
            },
            expected_version=0,
        )
        for i in range(body.count)
    ]
    items = await _batch(scope, request, changes)
    await applied(scope, "number", f"{first}..+{start + body.count - 1}", "create", 1)
    return [out(i) for i in items]


class RowOut(BaseModel):
    row: int
    status: Literal["ok", "error"]
    values: dict[str, str]
    reason: str = ""


class ImportReportOut(BaseModel):
    """A per-row report; nothing is applied unless every row is valid."""

    applied: bool
    file_error: str | None
    valid: int
    errors: int
    rows: list[RowOut]


def report_out(report: ImportReport, applied_: bool) -> ImportReportOut:
    return ImportReportOut(
        applied=applied_,
        file_error=report.file_error,
        valid=len(report.rows) - report.errors,
        errors=report.errors,
        rows=[
            RowOut(row=r.row, status=r.status, values=r.values, reason=r.reason)
            for r in report.rows
        ],
    )


def upload_body(description: str) -> dict[str, Any]:
    """The OpenAPI request body of an upload sent as the raw file."""
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
                    "schema": {"type": "string", "format": "binary"}
                },
            },
        }
    }


def upload_name(request: Request, filename: str | None) -> str:
    """The file's name as routing.imports wants it (its suffix says the format)."""
    if filename:
        return filename
    kind = request.headers.get("content-type", "")
    return "upload.xlsx" if "spreadsheetml" in kind else "upload.csv"


FileName = Annotated[
    str | None,
    Query(max_length=200, description="the file's name (.csv or .xlsx); else Content-Type says"),
]
DryRun = Annotated[bool, Query(description="only validate and report")]


@router.post(
    "/numbers/import",
    response_model=ImportReportOut,
    tags=["numbers"],
    openapi_extra=upload_body("columns: number, treatment, destination, caller_id_prefix, notes"),
)
async def import_numbers(
    request: Request,
    scope: Annotated[TenantScope, Depends(scoped(Area.NUMBERS, "c"))],
    filename: FileName = None,
    dry_run: DryRun = False,
) -> ImportReportOut:
    """Numbers from a CSV or XLSX file: every row checked and reported; applied (in one
    transaction) only when every row is valid and this is not a dry run."""
    data = await request.body()
    report = validate_did_import(scope.tenant.routing, upload_name(request, filename), data)
    if not report.clean or dry_run:
        return report_out(report, False)
    changes = [
        ObjectChange(
            scope.tenant.name,
            "number",
            {
                "number": d.number,
                "treatment": d.treatment.value,
                "destination": d.destination,
                "caller_id_prefix": d.caller_id_prefix,
                "notes": d.notes,
            },
            expected_version=0,
        )
        for d in report.items
    ]
    try:
        await service(scope).change_many(actor(scope.principal, request), changes)
    except InvalidObject as exc:
        return report_out(_rows_refused(report, exc), False)
    except ProvisioningError as exc:
        raise refused(exc, "number") from None
    await applied(scope, "number", "import", "create", len(changes))
    return report_out(report, True)


def _rows_refused(report: ImportReport, exc: InvalidObject) -> ImportReport:
    """A clean report whose rows the tenant's rules refused: the reason on each row."""
    reasons: dict[str, str] = {}
    for e in exc.errors:
        reasons.setdefault(e.key, f"{e.field}: {e.message}" if e.field else e.message)
    rows = []
    for r, item in zip(report.rows, report.items, strict=False):
        reason = reasons.get(str(getattr(item, "number", "")), "")
        rows.append(type(r)(r.row, r.values, "error" if reason else "ok", reason))
    if not any(r.status == "error" for r in rows):
        first = next(iter(reasons.values()), "refused")
        rows = [type(r)(r.row, r.values, "error", first) for r in report.rows]
    return ImportReport(tuple(rows), None, ())


# -- disaster plans: import numbers -----------------------------------------------------------


@router.post(
    "/disaster-plans/{name}/import",
    response_model=ImportReportOut,
    tags=["disaster plans"],
    openapi_extra=upload_body("columns: number, forward_to"),
    responses=_CHANGE,
)
async def import_disaster_numbers(
    name: Annotated[str, Path(max_length=80)],
    request: Request,
    scope: Annotated[TenantScope, Depends(scoped(Area.DISASTER_PLANS, "u"))],
    filename: FileName = None,
    dry_run: DryRun = False,
) -> ImportReportOut:
    """Numbers and where they forward to, added to a plan from CSV or XLSX; applied only
    when every row is valid."""
    current = await _current(scope, request, "disaster_plan", name)
    data = await request.body()
    try:
        report = validate_disaster_import(
            scope.tenant.routing, name, upload_name(request, filename), data
        )
    except DisasterError:
        raise not_found(f"disaster plan {name!r}") from None
    if not report.clean or dry_run:
        return report_out(report, False)
    numbers = list(current.data.get("numbers", []))
    numbers += [{"number": n.number, "forward_to": n.forward_to} for n in report.items]
    await _rewrite(scope, request, current, {**current.data, "numbers": numbers}, "import")
    return report_out(report, True)


# -- users: import ----------------------------------------------------------------------------


@router.post(
    "/users/import",
    response_model=ImportReportOut,
    tags=["users"],
    openapi_extra=upload_body("columns: " + ", ".join(USER_COLUMNS)),
    responses=_CHANGE,
)
async def import_user_file(
    request: Request,
    scope: Annotated[TenantScope, Depends(scoped(Area.USERS, "c"))],
    filename: FileName = None,
    dry_run: DryRun = False,
) -> ImportReportOut:
    """Users from a CSV or XLSX file: every row checked and reported; stored (in one
    transaction) only when every row is valid and this is not a dry run. A row without a
    password gets a generated one, shown in this answer only."""
    if scope.extensions is not None:
        raise ApiError(403, "forbidden", "not permitted: importing users for the whole tenant")
    data = await request.body()
    try:
        result = await import_users(
            service(scope),
            actor(scope.principal, request),
            scope.tenant.name,
            upload_name(request, filename),
            data,
            dry_run=dry_run,
        )
    except ProvisioningError as exc:
        raise refused(exc, "user") from None
    if result.applied:
        await applied(scope, "user", "import", "create", len(result.rows))
    return ImportReportOut(
        applied=result.applied,
        file_error=result.file_error,
        valid=len(result.rows) - result.errors,
        errors=result.errors,
        rows=[
            RowOut(row=r.row, status=r.status, values=r.values, reason=r.reason)
            for r in result.rows
        ],
    )
