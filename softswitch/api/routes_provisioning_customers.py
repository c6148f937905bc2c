"""``POST /v1/tenants/import``: a reseller's customers from CSV or XLSX (guide 004), with a
per-row report; nothing is stored unless every row is valid (see
``softswitch.provisioning.customers``)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from softswitch.api.deps import allowed, context
from softswitch.api.errors import COMMON_ERRORS, ErrorBody
from softswitch.api.events import config_changed
from softswitch.api.principal import Principal
from softswitch.api.provisioning import actor, apply_now, refused
from softswitch.api.roles import Area, Role
from softswitch.api.routes_provisioning import reach
from softswitch.api.routes_provisioning_ops import (
    DryRun,
    FileName,
    RowOut,
    upload_body,
    upload_name,
)
from softswitch.provisioning import ProvisioningError
from softswitch.provisioning.customers import COLUMNS, import_customers

__all__ = ["router"]

router = APIRouter(responses=COMMON_ERRORS, tags=["tenants"])

_DOMAIN = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,200}[A-Za-z0-9])?$")


class CustomerReport(BaseModel):
    """A per-row report; ``applied`` only when every row was valid (and not a dry run)."""

    applied: bool
    file_error: str | None
    valid: int
    errors: int
    tenants: list[str]
    rows: list[RowOut]


_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorBody, "description": "a customer was created meanwhile"},
}


@router.post(
    "/v1/tenants/import",
    response_model=CustomerReport,
    responses=_CONFLICT,
    openapi_extra=upload_body("columns: " + ", ".join(COLUMNS)),
)
async def import_customer_file(
    request: Request,
    principal: Annotated[Principal, Depends(allowed(Area.TENANTS, "c"))],
    filename: FileName = None,
    dry_run: DryRun = False,
    domain_suffix: Annotated[
        str,
        Query(
            max_length=200,
            pattern=_DOMAIN.pattern,
            description="a row without a domain gets <account number>.<domain_suffix>",
        ),
    ] = "",
) -> CustomerReport:
    """Customers (tenants with their limits and first SIP account) from a file; a reseller
    reaches the customers it imported."""
    ctx = context(request)
    data = await request.body()
    try:
        result = await import_customers(
            ctx.switch.provisioning.service,
            actor(principal, request),
            upload_name(request, filename),
            data,
            domain_suffix=domain_suffix,
            dry_run=dry_run,
        )
    except ProvisioningError as exc:
        raise refused(exc, "tenant") from None
    if result.applied:
        if principal.role is not Role.OPERATOR:
            for name in result.tenants:
                await reach(ctx, principal, name)
        await apply_now(ctx.switch.provisioning)
        for name in result.tenants:
            ctx.events.publish(config_changed(name, "tenant", name, action="import"))
    return CustomerReport(
        applied=result.applied,
        file_error=result.file_error,
        valid=len(result.rows) - result.errors,
        errors=result.errors,
        tenants=list(result.tenants),
        rows=[
            RowOut(row=r.row, status=r.status, values=r.values, reason=r.reason)
            for r in result.rows
        ],
    )
