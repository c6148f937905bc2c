"""A reseller's customers (tenants) imported from CSV or XLSX, as guide 004's "Import
Customers": one row per customer with its limits (concurrent calls, calls per second) and
optionally its first SIP account; every row checked and reported, and the whole file
applied in one transaction only when every row is valid.

Columns (header names as the guide writes them, in any order): account number (the
tenant's name), domain (else ``<account>.<domain_suffix>``), concurrent calls, CPS, SIP
username, SIP password, extension (of that SIP account, default 100). The guide's number
and caller-ID translation columns are refused when filled: the switch has no translation
of numbers per customer, and a value silently dropped would be worse.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from routing.imports import RowReport, UploadError, read_rows, records
from softswitch.provisioning.errors import InvalidObject, NotFound, ProvisioningError
from softswitch.provisioning.service import Actor, ObjectChange, ProvisioningService

__all__ = ["COLUMNS", "CustomerImport", "import_customers"]

COLUMNS = (
    "account_number",
    "domain",
    "concurrent_calls",
    "cps",
    "sip_username",
    "sip_password",
    "extension",
    "number_translation",
    "out_callerid_translation",
    "in_callerid_translation",
)
_ALIASES = {
    "account": "account_number",
    "name": "account_number",
    "tenant": "account_number",
    "customer": "account_number",
    "max_calls": "concurrent_calls",
    "calls_per_second": "cps",
    "max_calls_per_second": "cps",
    "username": "sip_username",
    "password": "sip_password",
    "out_caller_id_translation": "out_callerid_translation",
    "in_caller_id_translation": "in_callerid_translation",
}
_UNSUPPORTED = ("number_translation", "out_callerid_translation", "in_callerid_translation")


@dataclass(frozen=True, slots=True)
class CustomerImport:
    """The report: each row's status and reason; `applied` when the file was stored."""

    rows: tuple[RowReport, ...]
    file_error: str | None
    applied: bool
    tenants: tuple[str, ...] = ()

    @property
    def errors(self) -> int:
        return sum(r.status == "error" for r in self.rows)


def _row_changes(rec: dict[str, str], domain_suffix: str) -> tuple[list[ObjectChange], str]:
    """The objects one row creates, or a reason it cannot."""
    name = rec["account_number"]
    if not name:
        return [], "account number: required"
    for column in _UNSUPPORTED:
        if rec[column]:
            return [], f"{column.replace('_', ' ')}: not supported by this switch"
    domain = rec["domain"] or (f"{name}.{domain_suffix}".lower() if domain_suffix else "")
    if not domain:
        return [], "domain: required (or give a domain suffix)"
    tenant: dict[str, Any] = {"name": name, "domain": domain}
    for column, field in (("concurrent_calls", "max_calls"), ("cps", "max_calls_per_second")):
        if rec[column]:
            tenant[field] = rec[column]
    changes = [ObjectChange(name, "tenant", tenant, expected_version=0)]
    if rec["sip_username"] or rec["sip_password"]:
        if not rec["sip_password"]:
            return [], "sip password: required with a SIP username"
        user = {"extension": rec["extension"] or "100", "password": rec["sip_password"]}
        if rec["sip_username"]:
            user["username"] = rec["sip_username"]
        changes.append(ObjectChange(name, "user", user, expected_version=0))
    return changes, ""


_FIELDS = {"max_calls": "concurrent calls", "max_calls_per_second": "cps"}


def _reason(exc: ProvisioningError) -> str:
    if isinstance(exc, InvalidObject):
        parts = []
        for e in exc.errors:
            field = _FIELDS.get(e.field, e.field)
            where = f"{e.kind} {field}" if e.kind != "tenant" else field
            parts.append(f"{where}: {e.message}" if where else e.message)
        return "; ".join(parts)
    return str(exc)


async def import_customers(
    service: ProvisioningService,
    actor: Actor,
    filename: str,
    data: bytes,
    *,
    domain_suffix: str = "",
    dry_run: bool = False,
) -> CustomerImport:
    """Check every row (against the file and the stored model), then store all of them in
    one transaction when every row is valid and this is not a dry run."""
    try:
        rows = read_rows(filename, data)
    except UploadError as exc:
        return CustomerImport((), str(exc), False)
    reports: list[RowReport] = []
    batch: list[ObjectChange] = []
    names: dict[str, int] = {}
    domains: dict[str, int] = {}
    existing = {o.tenant for o in await service.store.load_provisioning(kind="tenant")}
    for line, rec in records(rows, COLUMNS, _ALIASES):
        changes, reason = _row_changes(rec, domain_suffix)
        if not reason:
            name = changes[0].tenant
            domain = str((changes[0].data or {}).get("domain", "")).lower()
            if name in names:
                reason = f"account number: duplicate of row {names[name]}"
            elif domain in domains:
                reason = f"domain: duplicate of row {domains[domain]}"
            elif name in existing:
                reason = f"account number: customer {name!r} exists already"
            names.setdefault(name, line)
            domains.setdefault(domain, line)
        if not reason:
            try:
                await service.proposed(changes)
            except (InvalidObject, NotFound) as exc:
                reason = _reason(exc)
        if not reason:
            batch += changes
        reports.append(RowReport(line, rec, "error" if reason else "ok", reason))
    clean = bool(reports) and all(r.status == "ok" for r in reports)
    if not reports:
        return CustomerImport((), "the file has no customer rows", False)
    if not clean or dry_run:
        return CustomerImport(tuple(reports), None, False)
    await service.change_many(actor, batch)
    tenants = tuple(dict.fromkeys(c.tenant for c in batch))
    return CustomerImport(tuple(reports), None, True, tenants)
