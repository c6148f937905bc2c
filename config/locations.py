"""How configuration errors name where they are."""

from __future__ import annotations

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
