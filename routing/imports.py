"""Bulk imports (CSV / XLSX) with a validation pass, and CSV export of the inventory.

An import is two steps: ``validate_*`` reads the upload and reports every row with a status
and a reason, changing nothing; ``apply_*`` takes a clean report and returns the new
configuration. A report with any bad row (or a bad file) cannot be applied.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError

from config.numbers import Did, DisasterNumber, NumberError, Treatment, to_e164
from config.routing import TenantRouting, did_destination_problem
from routing.disaster import add_numbers, get_plan, number_problem

MAX_UPLOAD_BYTES = 2 * 1024 * 1024
MAX_ROWS = 50_000


class UploadError(ValueError):
    """The file as a whole is unusable (too big, wrong format, unreadable)."""


class ImportNotClean(ValueError):
    """Applying a report that has errors."""


@dataclass(frozen=True, slots=True)
class RowReport:
    """One data row: its 1-based line in the file, the values read, status and reason."""

    row: int
    values: dict[str, str]
    status: Literal["ok", "error"]
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ImportReport:
    """The outcome of a validation pass; ``items`` holds the parsed rows when clean."""

    rows: tuple[RowReport, ...] = ()
    file_error: str | None = None
    items: tuple[Any, ...] = field(default=())

    @property
    def clean(self) -> bool:
        return self.file_error is None and bool(self.rows) and self.errors == 0

    @property
    def errors(self) -> int:
        return sum(r.status == "error" for r in self.rows)

    def lines(self) -> list[str]:
        """The report for people: a summary, then one line per row."""
        if self.file_error is not None:
            return [f"file rejected: {self.file_error}"]
        ok = len(self.rows) - self.errors
        out = [f"{ok} row(s) valid, {self.errors} with errors" + ("" if self.rows else ", empty")]
        for r in self.rows:
            shown = ", ".join(v for v in r.values.values() if v)
            out.append(f"row {r.row}: {r.status} {shown}" + (f" ({r.reason})" if r.reason else ""))
        return out


# -- reading uploads --------------------------------------------------------------------------


def _cell(value: object) -> str:
    # Spreadsheets store "+15055551234" typed without quotes as the integer 15055551234 (and
    # sometimes as a float); read those back as E.164.
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"+{value}"
    if isinstance(value, float):
        return f"+{int(value)}" if value.is_integer() and value > 0 else str(value)
    return str(value).strip()


def read_rows(filename: str, data: bytes) -> list[tuple[int, list[str]]]:
    """(line number, cells) of a .csv or .xlsx upload; raises UploadError with the reason."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise UploadError(f"file is {len(data)} bytes; the limit is 2 MB")
    name = filename.lower().strip()
    suffix = name.rsplit(".", 1)[-1] if "." in name else ""
    if suffix == "csv":
        return _read_csv(data)
    if suffix == "xlsx":
        return _read_xlsx(data)
    if suffix == "xls":
        raise UploadError("legacy .xls files are not supported; save the sheet as .xlsx or .csv")
    shown = f".{suffix}" if suffix else "no extension"
    raise UploadError(f"unsupported file type ({shown}); upload a .csv or .xlsx file")


def _read_csv(data: bytes) -> list[tuple[int, list[str]]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UploadError("the CSV file is not UTF-8 text") from None
    if "\x00" in text:
        raise UploadError("the CSV file contains binary data")
    try:
        sample = text[:4096]
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t") if sample.strip() else "excel"
    except csv.Error:
        dialect = "excel"
    rows: list[tuple[int, list[str]]] = []
    try:
        for i, cells in enumerate(csv.reader(io.StringIO(text), dialect), 1):
            if len(rows) > MAX_ROWS:
                raise UploadError(f"more than {MAX_ROWS} rows")
            if any(c.strip() for c in cells):
                rows.append((i, [c.strip() for c in cells]))
    except csv.Error as exc:
        raise UploadError(f"unreadable CSV: {exc}") from None
    return rows


def _read_xlsx(data: bytes) -> list[tuple[int, list[str]]]:
    import openpyxl  # only imports pay for it

    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise UploadError("not a valid .xlsx file")
    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for broken archives
        raise UploadError(f"not a valid .xlsx file ({type(exc).__name__})") from None
    try:
        sheet = book.worksheets[0] if book.worksheets else None
        if sheet is None:
            raise UploadError("the workbook has no sheet")
        rows: list[tuple[int, list[str]]] = []
        for i, values in enumerate(sheet.iter_rows(values_only=True), 1):
            if len(rows) > MAX_ROWS:
                raise UploadError(f"more than {MAX_ROWS} rows")
            cells = [_cell(v) for v in values]
            if any(cells):
                rows.append((i, cells))
        return rows
    finally:
        book.close()


def _header_key(text: str) -> str:
    return "_".join(text.strip().lower().replace("-", " ").split())


def _records(
    rows: list[tuple[int, list[str]]], columns: tuple[str, ...], aliases: dict[str, str]
) -> Iterator[tuple[int, dict[str, str]]]:
    """Rows as dicts: by header when the first row names columns, else by position."""
    if not rows:
        return
    first = [aliases.get(_header_key(c), _header_key(c)) for c in rows[0][1]]
    if columns[0] in first:
        order = first
        body = rows[1:]
    else:
        order = list(columns)
        body = rows
    for line, cells in body:
        record = {c: "" for c in columns}
        for key, value in zip(order, cells, strict=False):
            if key in record:
                record[key] = value
        yield line, record


# -- DIDs -------------------------------------------------------------------------------------

DID_COLUMNS = ("number", "treatment", "destination", "caller_id_prefix", "notes")
_DID_ALIASES = {
    "phone_number": "number",
    "did": "number",
    "telephone_number": "number",
    "caller_id": "caller_id_prefix",
    "prefix": "caller_id_prefix",
    "note": "notes",
    "description": "notes",
}
_TREATMENT_ALIASES = {
    "call_queue": "queue",
    "pstn": "offnet",
    "pstn_number": "offnet",
    "off_net": "offnet",
    "fax_server": "fax",
    "aa": "auto_attendant",
}


def validate_did_import(routing: TenantRouting, filename: str, data: bytes) -> ImportReport:
    """Check a DID upload row by row against the file itself and the current inventory."""
    try:
        rows = read_rows(filename, data)
    except UploadError as exc:
        return ImportReport(file_error=str(exc))
    existing = {d.number for d in routing.dids}
    seen: dict[str, int] = {}
    reports: list[RowReport] = []
    items: list[Did] = []
    for line, rec in _records(rows, DID_COLUMNS, _DID_ALIASES):
        reason, did = _check_did(routing, rec, existing, seen, line)
        if did is not None:
            items.append(did)
        reports.append(RowReport(line, rec, "error" if reason else "ok", reason or ""))
    return ImportReport(tuple(reports), None, tuple(items))


def _check_did(
    routing: TenantRouting,
    rec: dict[str, str],
    existing: set[str],
    seen: dict[str, int],
    line: int,
) -> tuple[str | None, Did | None]:
    try:
        number = to_e164(rec["number"])
    except NumberError as exc:
        return f"invalid number: {exc.reason}", None
    first = seen.setdefault(number, line)
    if first != line:
        return f"duplicate of row {first}", None
    if number in existing:
        return "duplicate: already in the inventory", None
    key = _header_key(rec["treatment"] or "user")
    try:
        treatment = Treatment(_TREATMENT_ALIASES.get(key, key))
    except ValueError:
        return f"unknown treatment {rec['treatment']!r}", None
    if treatment is Treatment.OFFNET:
        try:
            to_e164(rec["destination"])
        except NumberError as exc:
            return f"invalid destination number: {exc.reason}", None
    try:
        did = Did(
            number=number,
            treatment=treatment,
            destination=rec["destination"],
            caller_id_prefix=rec["caller_id_prefix"],
            notes=rec["notes"],
        )
    except (ValidationError, NumberError) as exc:
        if isinstance(exc, NumberError):
            return f"invalid destination number: {exc.reason}", None
        msg = str(exc.errors()[0].get("msg", "invalid")).removeprefix("Value error, ")
        return msg, None
    problem = did_destination_problem(routing, did)
    if problem:
        return problem, None
    return None, did


def apply_did_import(routing: TenantRouting, report: ImportReport) -> TenantRouting:
    """Add the DIDs of a clean report to the inventory."""
    if not report.clean:
        raise ImportNotClean("the import has errors; fix them and validate again")
    data = {name: getattr(routing, name) for name in TenantRouting.model_fields}
    data["dids"] = (*routing.dids, *report.items)
    return TenantRouting.model_validate(data)


def export_dids_csv(routing: TenantRouting) -> str:
    """The inventory as CSV (the same columns an import takes)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(DID_COLUMNS)
    for d in sorted(routing.dids, key=lambda d: d.number):
        writer.writerow([d.number, d.treatment.value, d.destination, d.caller_id_prefix, d.notes])
    return out.getvalue()


# -- disaster plans ---------------------------------------------------------------------------

DISASTER_COLUMNS = ("number", "forward_to")
_DISASTER_ALIASES = {
    "numbers": "number",
    "telephone_number": "number",
    "phone_number": "number",
    "forward": "forward_to",
    "forward_number": "forward_to",
    "forwardto": "forward_to",
}


def validate_disaster_import(
    routing: TenantRouting, plan_name: str, filename: str, data: bytes
) -> ImportReport:
    """Check a disaster-plan upload: valid E.164 numbers in the inventory, numbers and
    forward-to numbers each unique within the upload, none already in the plan."""
    plan = get_plan(routing, plan_name)
    try:
        rows = read_rows(filename, data)
    except UploadError as exc:
        return ImportReport(file_error=str(exc))
    seen_numbers: dict[str, int] = {}
    seen_forward: dict[str, int] = {}
    reports: list[RowReport] = []
    items: list[DisasterNumber] = []
    for line, rec in _records(rows, DISASTER_COLUMNS, _DISASTER_ALIASES):
        number, forward_to, reason = number_problem(routing, plan, rec["number"], rec["forward_to"])
        if reason is None:
            first = seen_numbers.setdefault(number, line)
            if first != line:
                reason = f"duplicate number (row {first})"
        if reason is None:
            first = seen_forward.setdefault(forward_to, line)
            if first != line:
                reason = f"duplicate forward-to number (row {first})"
        if reason is None:
            items.append(DisasterNumber(number=number, forward_to=forward_to))
        reports.append(RowReport(line, rec, "error" if reason else "ok", reason or ""))
    return ImportReport(tuple(reports), None, tuple(items))


def apply_disaster_import(
    routing: TenantRouting, plan_name: str, report: ImportReport
) -> TenantRouting:
    """Add the numbers of a clean report to the plan."""
    if not report.clean:
        raise ImportNotClean("the import has errors; fix them and validate again")
    return add_numbers(routing, plan_name, tuple(report.items))


def records(
    rows: list[tuple[int, list[str]]], columns: tuple[str, ...], aliases: dict[str, str]
) -> Iterator[tuple[int, dict[str, str]]]:
    """Rows of an upload as dicts of ``columns`` (by header, else by position): for other
    uploads than numbers and plans (customers), read the same way."""
    return _records(rows, columns, aliases)
