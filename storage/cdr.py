"""The call detail record: one row per call, as the Store keeps it and the CLI exports it."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

__all__ = [
    "CDR_COLUMNS",
    "CDR_SQL_COLUMNS",
    "CSV_COLUMNS",
    "DISPOSITIONS",
    "Cdr",
    "cdr_from_row",
    "cdr_rows",
    "cdr_to_row",
    "csv_row",
]

DISPOSITIONS = ("ANSWERED", "NO ANSWER", "BUSY", "FAILED", "CANCELLED")


@dataclass(slots=True)
class Cdr:
    """One call. Times are epoch seconds; ``answer`` is None for unanswered calls.

    ``legs`` is the call flow: one dict per outbound leg tried (target, contact, status,
    started, ended, answered). For a call anchored in the media engine, ``quality`` holds
    each side's reception figures (``caller``/``callee``: jitter_ms, loss, mos, packets,
    codec) and ``mos`` the worse side's estimate; ``recordings`` lists the WAVs made
    (path, started, ended). ``emergency``: a call to an emergency number (911, 112, 999 or
    one the tenant lists), routed before everything else and never refused or capped.
    """

    call_id: str
    sip_call_id: str
    tenant: str
    direction: str  # internal / inbound / outbound
    caller_number: str
    caller_name: str
    dialled: str
    destination: str
    trunk: str
    start: float
    answer: float | None
    end: float
    disposition: str
    sip_code: int
    q850_cause: int
    q850_name: str
    legs: list[dict[str, Any]] = field(default_factory=list)
    mos: float | None = None
    quality: dict[str, Any] = field(default_factory=dict)
    recordings: list[dict[str, Any]] = field(default_factory=list)
    emergency: bool = False

    @property
    def duration(self) -> float:
        return max(0.0, self.end - self.start)

    @property
    def billsec(self) -> float:
        return 0.0 if self.answer is None else max(0.0, self.end - self.answer)


CDR_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(Cdr))
# "start" and "end" are reserved words in SQL: the table calls the times *_time.
_SQL_NAMES = {"start": "start_time", "answer": "answer_time", "end": "end_time"}
CDR_SQL_COLUMNS: tuple[str, ...] = tuple(_SQL_NAMES.get(c, c) for c in CDR_COLUMNS)
_TEXT = frozenset(
    {
        "call_id",
        "sip_call_id",
        "tenant",
        "direction",
        "caller_number",
        "caller_name",
        "dialled",
        "destination",
        "trunk",
        "disposition",
        "q850_name",
    }
)


_JSON: dict[str, type] = {"legs": list, "quality": dict, "recordings": list}


def _clean(text: str) -> str:
    # Same rules as storable_text in storage.base (SIP text may carry surrogate escapes).
    text = text.replace("\x00", "\ufffd")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return text


def cdr_to_row(cdr: Cdr) -> tuple[Any, ...]:
    """Validate and flatten a CDR in CDR_COLUMNS order (legs as JSON text).

    Raises ValueError naming the field for a value that cannot be stored.
    """
    if not isinstance(cdr, Cdr):
        raise ValueError(f"expected a Cdr, got {type(cdr).__name__}")
    row: list[Any] = []
    for name in CDR_COLUMNS:
        value = getattr(cdr, name)
        if name in _TEXT:
            if not isinstance(value, str):
                raise ValueError(f"cdr {cdr.call_id!r}: {name} must be a string")
            value = _clean(value)
        elif name in ("start", "end", "answer", "mos"):
            if value is None and name in ("answer", "mos"):
                pass
            elif (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
            ):
                raise ValueError(f"cdr {cdr.call_id!r}: {name} must be a finite number")
            else:
                value = float(value)
        elif name in ("sip_code", "q850_cause"):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"cdr {cdr.call_id!r}: {name} must be an integer")
        elif name == "emergency":
            if not isinstance(value, bool):
                raise ValueError(f"cdr {cdr.call_id!r}: emergency must be a boolean")
        elif name in _JSON:
            if not isinstance(value, _JSON[name]):
                raise ValueError(f"cdr {cdr.call_id!r}: {name} must be a {_JSON[name].__name__}")
            try:
                value = json.dumps(value, separators=(",", ":"), default=str)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"cdr {cdr.call_id!r}: {name}: {exc}") from None
        row.append(value)
    return tuple(row)


def cdr_rows(cdrs: Sequence[Cdr]) -> list[tuple[Any, ...]]:
    """:func:`cdr_to_row` of every CDR of a batch."""
    return [cdr_to_row(cdr) for cdr in cdrs]


def cdr_from_row(row: Sequence[Any]) -> Cdr:
    """Rebuild a CDR from a row in CDR_COLUMNS order."""
    values = dict(zip(CDR_COLUMNS, row, strict=True))
    for name, kind in _JSON.items():
        raw = values[name]
        values[name] = json.loads(raw) if isinstance(raw, str | bytes) else kind(raw or ())
    for name in ("start", "end"):
        values[name] = float(values[name])
    for name in ("answer", "mos"):
        if values[name] is not None:
            values[name] = float(values[name])
    values["sip_code"] = int(values["sip_code"])
    values["q850_cause"] = int(values["q850_cause"])
    values["emergency"] = bool(values["emergency"])
    return Cdr(**values)


#: The columns of a call-history CSV export, the same from the CLI and the admin API.
CSV_COLUMNS = (
    "call_id",
    "sip_call_id",
    "tenant",
    "direction",
    "caller_number",
    "caller_name",
    "dialled",
    "destination",
    "trunk",
    "start",
    "answer",
    "end",
    "duration",
    "billsec",
    "disposition",
    "sip_code",
    "q850_cause",
    "q850_name",
    "legs",
    "mos",
    "quality",
    "recordings",
    "emergency",
)


def _iso(value: float | None) -> str:
    if value is None:
        return ""
    return dt.datetime.fromtimestamp(value, dt.UTC).isoformat(timespec="milliseconds")


def csv_row(cdr: Cdr) -> list[object]:
    """One CDR as a row of ``CSV_COLUMNS``: times in ISO 8601 UTC, the lists as JSON."""
    return [
        cdr.call_id,
        cdr.sip_call_id,
        cdr.tenant,
        cdr.direction,
        cdr.caller_number,
        cdr.caller_name,
        cdr.dialled,
        cdr.destination,
        cdr.trunk,
        _iso(cdr.start),
        _iso(cdr.answer),
        _iso(cdr.end),
        f"{cdr.duration:.3f}",
        f"{cdr.billsec:.3f}",
        cdr.disposition,
        cdr.sip_code,
        cdr.q850_cause,
        cdr.q850_name,
        json.dumps(cdr.legs, separators=(",", ":")),
        "" if cdr.mos is None else f"{cdr.mos:.2f}",
        json.dumps(cdr.quality, separators=(",", ":")),
        json.dumps(cdr.recordings, separators=(",", ":")),
        "yes" if cdr.emergency else "",
    ]
