"""A tenant's users imported from CSV or XLSX (the portals' "bulk import users"): one row
per user, every row checked and reported, and the whole file stored in one transaction
only when every row is valid.

Columns (by header, in any order, or by position): extension, display name, SIP username,
password, caller ID, site. A row without a password gets a generated one, reported in that
row's values: the import's answer is the only place it is ever shown (a password given in
the file is not echoed back).
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from config.loader import located_errors
from config.models import User
from routing.imports import RowReport, UploadError, read_rows, records
from softswitch.provisioning.errors import InvalidObject
from softswitch.provisioning.service import Actor, ObjectChange, ProvisioningService

__all__ = ["COLUMNS", "UserImport", "generated_password", "import_users"]

COLUMNS = ("extension", "display_name", "username", "password", "caller_id", "site")
_ALIASES = {
    "ext": "extension",
    "name": "display_name",
    "full_name": "display_name",
    "sip_username": "username",
    "user_name": "username",
    "sip_password": "password",
    "caller_id_number": "caller_id",
    "callerid": "caller_id",
    "office": "site",
}
_ALPHABET = string.ascii_letters + string.digits


def generated_password(length: int = 16) -> str:
    """A random SIP password (letters and digits: every phone's keypad menu can enter it)."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


@dataclass(frozen=True, slots=True)
class UserImport:
    """The report: each row's status and reason; ``applied`` when the file was stored."""

    rows: tuple[RowReport, ...]
    file_error: str | None
    applied: bool

    @property
    def errors(self) -> int:
        return sum(r.status == "error" for r in self.rows)


def _document(rec: dict[str, str]) -> dict[str, Any]:
    doc: dict[str, Any] = {"extension": rec["extension"], "password": rec["password"]}
    for column in ("display_name", "username", "caller_id", "site"):
        if rec[column]:
            doc[column] = rec[column]
    return doc


def _row_problem(rec: dict[str, str]) -> str:
    """What is wrong with a row on its own (the User model's checks), or ""."""
    if not rec["extension"]:
        return "extension: required"
    try:
        User.model_validate(_document(rec))
    except ValidationError as exc:
        return "; ".join(
            f"{'.'.join(map(str, loc)) or 'row'}: {msg}" for loc, msg in located_errors(exc)
        )
    return ""


async def import_users(
    service: ProvisioningService,
    actor: Actor,
    tenant: str,
    filename: str,
    data: bytes,
    *,
    dry_run: bool = False,
) -> UserImport:
    """Check every row (alone, against the file, then all rows together against the
    tenant: sites, feature codes, extensions of conferences and queues), then store them
    in one transaction when every row is valid and this is not a dry run."""
    try:
        rows = read_rows(filename, data)
    except UploadError as exc:
        return UserImport((), str(exc), False)
    existing = {o.key for o in await service.store.load_provisioning(tenant, "user")}
    reports: list[RowReport] = []
    seen: dict[str, int] = {}
    generated: set[int] = set()
    for line, rec in records(rows, COLUMNS, _ALIASES):
        if not rec["password"]:
            rec["password"] = generated_password()
            generated.add(line)
        reason = _row_problem(rec)
        ext = rec["extension"]
        if not reason and ext in seen:
            reason = f"extension: duplicate of row {seen[ext]}"
        elif not reason and ext in existing:
            reason = f"extension: {ext} exists already"
        seen.setdefault(ext, line)
        reports.append(RowReport(line, rec, "error" if reason else "ok", reason))
    if not reports:
        return UserImport((), "the file has no user rows", False)
    if any(r.status == "error" for r in reports):
        return UserImport(tuple(_hide_passwords(reports)), None, False)
    batch = [ObjectChange(tenant, "user", _document(r.values), expected_version=0) for r in reports]
    try:
        await service.proposed(batch)
    except InvalidObject as exc:
        return UserImport(tuple(_hide_passwords(_tenant_refused(reports, exc))), None, False)
    if dry_run:
        return UserImport(tuple(_hide_passwords(reports)), None, False)
    await service.change_many(actor, batch)
    shown = [
        r if r.row in generated else RowReport(r.row, {**r.values, "password": ""}, r.status)
        for r in reports
    ]
    return UserImport(tuple(shown), None, True)


def _tenant_refused(reports: list[RowReport], exc: InvalidObject) -> list[RowReport]:
    """The tenant's refusals put on the rows of the users they name (on every row when a
    refusal names none of them)."""
    reasons: dict[str, str] = {}
    for e in exc.errors:
        text = f"{e.field}: {e.message}" if e.field else e.message
        reasons[e.key] = f"{reasons[e.key]}; {text}" if e.key in reasons else text
    named = [r for r in reports if r.values["extension"] in reasons]
    if not named:
        first = "; ".join(reasons.values()) or "refused by the tenant's rules"
        return [RowReport(r.row, r.values, "error", first) for r in reports]
    return [
        RowReport(r.row, r.values, "error", reasons[r.values["extension"]])
        if r.values["extension"] in reasons
        else r
        for r in reports
    ]


def _hide_passwords(reports: list[RowReport]) -> list[RowReport]:
    """Nothing was stored: no password (given or generated) goes back in the report."""
    return [RowReport(r.row, {**r.values, "password": ""}, r.status, r.reason) for r in reports]
