"""Provisioning: the model (tenants, users, numbers, rules, trunks, conferences...) kept in
the Store, changed through typed, validated and audited operations, and applied live to a
running switch.

    service.py  ProvisioningService, Actor, Item, Page, Change, Snapshot: the operations
    errors.py   what an operation refuses (InvalidObject names object and field)
    model.py    how a tenant is cut into stored objects and put back together
    fileio.py   TOML export/import and the file mode's reload
    runtime.py  boot (seed / file sync), live apply to a running switch, SIGHUP reload
"""

from softswitch.provisioning.errors import (
    FieldError,
    InvalidObject,
    NotFound,
    ProvisioningError,
    ReadOnly,
    VersionMismatch,
)
from softswitch.provisioning.model import KINDS
from softswitch.provisioning.service import (
    Actor,
    Change,
    Item,
    ObjectChange,
    Page,
    ProvisioningService,
    Snapshot,
)

__all__ = [
    "KINDS",
    "Actor",
    "Change",
    "FieldError",
    "InvalidObject",
    "Item",
    "NotFound",
    "ObjectChange",
    "Page",
    "ProvisioningError",
    "ProvisioningService",
    "ReadOnly",
    "Snapshot",
    "VersionMismatch",
]
