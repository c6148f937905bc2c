"""How configuration errors name where they are."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic_core import PydanticCustomError

Loc = tuple[str | int, ...]


def format_location(loc: Loc) -> str:
    """`("tenants", 0, "users", 3, "extension")` -> `tenants[0].users[3].extension`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def config_error(items: Sequence[tuple[Loc, str]]) -> PydanticCustomError:
    """A multi-location error; `items` are locations relative to the model raising it.

    `config.loader` expands it into one (location, message) line per item.
    """
    summary = "; ".join(f"{format_location(loc)}: {msg}" if loc else msg for loc, msg in items)
    return PydanticCustomError("switch_config", "{summary}", {"summary": summary, "items": items})
