"""What a provisioning operation can refuse, independent of HTTP (the admin API maps these:
InvalidObject -> 422, NotFound -> 404, VersionMismatch -> 409/412, ReadOnly -> 403/405)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "FieldError",
    "InvalidObject",
    "NotFound",
    "ProvisioningError",
    "ReadOnly",
    "VersionMismatch",
]


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem: the object (tenant, kind, key) and the field path within it."""

    tenant: str
    kind: str
    key: str
    field: str  # e.g. "extension", "rules[2].time_frame"; "" = the object as a whole
    message: str

    def __str__(self) -> str:
        where = f"{self.kind} {self.key!r} of tenant {self.tenant!r}"
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


class ProvisioningError(Exception):
    """A provisioning operation was refused; nothing was changed."""


class InvalidObject(ProvisioningError):
    """The change would leave an invalid model; `errors` names every object and field."""

    def __init__(self, errors: Iterable[FieldError]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(map(str, self.errors)))


class NotFound(ProvisioningError):
    """No such object (or tenant, or kind)."""


class VersionMismatch(ProvisioningError):
    """The object changed since the version the caller read (`current` is its version now,
    0 when it no longer exists or, for a create, 0 expected but it exists)."""

    def __init__(self, message: str, current: int) -> None:
        self.current = current
        super().__init__(message)


class ReadOnly(ProvisioningError):
    """Provisioning is kept in the file (`provisioning = "file"`): edit it and reload."""
