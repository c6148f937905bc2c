"""The call detail record: one row per call, as the Store keeps it and the CLI exports it."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

__all__ = ["CDR_COLUMNS", "CDR_SQL_COLUMNS", "DISPOSITIONS", "Cdr", "cdr_from_row", "cdr_to_row"]

DISPOSITIONS = ("ANSWERED", "NO ANSWER", "BUSY", "FAILED", "CANCELLED")


@dataclass(slots=True)
class Cdr:
    """One call. Times are epoch seconds; ``answer`` is None for unanswered calls.

    ``legs`` is the call flow: one dict per outbound leg tried (target, contact, status,
    started, ended, answered).
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
_TEXT = frozenset({"call_id", "sip_call_id", "tenant", "direction", "caller_number",
                   "caller_name", "dialled", "destination", "trunk", "disposition",
                   "q850_name"})


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
        elif name in ("start", "end", "answer"):
            if value is None and name == "answer":
                pass
            elif isinstance(value, bool) or not isinstance(value, int | float) \
                    or not math.isfinite(value):
                raise ValueError(f"cdr {cdr.call_id!r}: {name} must be a finite number")
            else:
                value = float(value)
        elif name in ("sip_code", "q850_cause"):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"cdr {cdr.call_id!r}: {name} must be an integer")
        elif name == "legs":
            try:
                value = json.dumps(value, separators=(",", ":"), default=str)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"cdr {cdr.call_id!r}: legs: {exc}") from None
        row.append(value)
    return tuple(row)


def cdr_from_row(row: Sequence[Any]) -> Cdr:
    """Rebuild a CDR from a row in CDR_COLUMNS order."""
    values = dict(zip(CDR_COLUMNS, row, strict=True))
    legs = values["legs"]
    values["legs"] = json.loads(legs) if isinstance(legs, str | bytes) else list(legs or ())
    for name in ("start", "end"):
        values[name] = float(values[name])
    if values["answer"] is not None:
        values["answer"] = float(values["answer"])
    values["sip_code"] = int(values["sip_code"])
    values["q850_cause"] = int(values["q850_cause"])
    return Cdr(**values)
