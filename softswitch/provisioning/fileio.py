"""The provisioning model and TOML files: export, import, file-mode reload.

`softswitch config export` writes the stored model as `[[tenants]]` tables that
`softswitch config import` (or a file in `provisioning = "file"` mode) reads back to the same
model; runtime settings stay in the operator's own file.
"""

from __future__ import annotations

from typing import Any

import tomli_w

from config.loader import ConfigError, load_config
from config.models import Tenant
from softswitch.provisioning.errors import ReadOnly
from softswitch.provisioning.model import assemble_tenant, split_tenant
from softswitch.provisioning.service import Actor, Change, ProvisioningService

__all__ = ["export_toml", "import_file", "reload_file", "tenants_toml"]

_HEADER = (
    "# The provisioning model as stored (softswitch config export).\n"
    "# Re-import with: softswitch config import FILE [--dry-run]\n\n"
)


def tenants_toml(tenants: list[Tenant]) -> str:
    """Tenants as the file writes them, each table holding only what is not a default."""
    data = {"tenants": [_toml_safe(assemble_tenant(split_tenant(t))) for t in tenants]}
    return _HEADER + tomli_w.dumps(data, multiline_strings=False, indent=4)


async def export_toml(service: ProvisioningService) -> str:
    """The whole stored model as TOML (tenants that do not validate are left out and
    reported by `snapshot`)."""
    snapshot = await service.snapshot()
    return tenants_toml(sorted(snapshot.tenants, key=lambda t: t.name))


async def import_file(
    service: ProvisioningService, path: str, actor: Actor, *, dry_run: bool = False
) -> list[Change]:
    """Make the stored model the file's tenants (validated whole first: `ConfigError`);
    with `dry_run`, only say what would change."""
    config = load_config(path)
    if service.mode == "file" and not dry_run:
        raise ReadOnly(
            'provisioning = "file": the configuration file is the truth; edit it and run '
            "`softswitch reload`"
        )
    return await service.apply(actor, config.tenants, dry_run=dry_run, from_file=dry_run)


async def reload_file(service: ProvisioningService, path: str, actor: Actor) -> list[Change]:
    """File mode: apply the file's provisioning. A file that does not validate is refused
    as a whole (`ConfigError`) and nothing changes."""
    config = load_config(path)
    if config.provisioning != "file":
        raise ConfigError(
            [("provisioning", 'is "database": change the model with `softswitch config import`')],
            path,
        )
    return await service.apply(actor, config.tenants, from_file=True)


def _toml_safe(value: Any) -> Any:
    """TOML has no null: drop None values (they are the defaults the loader fills in)."""
    if isinstance(value, dict):
        return {k: _toml_safe(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_toml_safe(v) for v in value if v is not None]
    return value
