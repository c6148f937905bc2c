"""Provisioning commands of the `softswitch` CLI: config export/import, reload, audit.

    softswitch config export [--config F] > site.toml
    softswitch config import site.toml [--dry-run] [--config F] [--by WHO]
    softswitch reload [--config F]
    softswitch audit [--tenant T] [--kind K] [--key KEY] [--actor A] [--since T]
                     [--until T] [--limit N] [--before-id ID] [--json]

Each opens the database the configuration names (a relative SQLite path is the file's
neighbour) and works on the model stored there, so running switches pick a change up
within a second. Exit status: 0 done, 1 refused, 2 bad configuration or arguments,
3 database unavailable.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from config import ConfigError, SwitchConfig
from softswitch.cli_common import CommandError, guarded, load_checked_config, with_store
from softswitch.provisioning import Actor, ProvisioningError, ProvisioningService
from softswitch.provisioning.fileio import export_toml, import_file, reload_file
from storage.provisioning import AuditQuery, AuditRecord

__all__ = ["add_provisioning_commands"]

_T = TypeVar("_T")


def _actor(by: str | None) -> Actor:
    try:
        who = by or getpass.getuser()
    except (KeyError, OSError):
        who = "unknown"
    return Actor(f"cli:{who}", socket.gethostname())


def _with_service(config: SwitchConfig, work: Callable[[ProvisioningService], Awaitable[_T]]) -> _T:
    try:
        return with_store(
            config, lambda store: work(ProvisioningService(store, mode=config.provisioning))
        )
    except ValueError as exc:  # any ValueError of the work, too: the status stays 2 as before
        raise CommandError(f"database: {exc}", 2) from None


def _cmd_export(args: argparse.Namespace) -> int:
    config = load_checked_config(args.config)
    sys.stdout.write(_with_service(config, export_toml))
    return 0


def _cmd_import(args: argparse.Namespace) -> int:
    config = load_checked_config(args.config)

    async def work(service: ProvisioningService) -> list[Any]:
        return await import_file(service, args.file, _actor(args.by), dry_run=args.dry_run)

    try:
        changes = _with_service(config, work)
    except ConfigError as error:
        raise CommandError(f"{args.file}: configuration has errors:\n{error}", 1) from None
    for change in changes:
        print(change)
    verb = "would change" if args.dry_run else "changed"
    print(f"{len(changes)} objects {verb}" if changes else "nothing to change")
    return 0


def _cmd_reload(args: argparse.Namespace) -> int:
    config = load_checked_config(args.config)
    if config.provisioning != "file":
        raise CommandError(
            f'{args.config}: provisioning = "database": use `softswitch config import`', 1
        )

    async def work(service: ProvisioningService) -> list[Any]:
        return await reload_file(service, args.config, _actor(args.by))

    changes = _with_service(config, work)
    for change in changes:
        print(change)
    print(
        f"{len(changes)} objects changed; running switches apply them within a second"
        if changes
        else "nothing to change"
    )
    return 0


def _when(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither epoch seconds nor ISO") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


def _record_json(record: AuditRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "at": _iso(record.at),
        "actor": record.actor,
        "source": record.source,
        "action": record.action,
        "tenant": record.tenant,
        "kind": record.kind,
        "key": record.key,
        "before": record.before,
        "after": record.after,
        "revision": record.revision,
    }


def _iso(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).isoformat(timespec="seconds")


def _cmd_audit(args: argparse.Namespace) -> int:
    config = load_checked_config(args.config)
    query = AuditQuery(
        tenant=args.tenant,
        kind=args.kind,
        key=args.key,
        actor=args.actor,
        since=args.since,
        until=args.until,
        before_id=args.before_id,
        limit=args.limit,
    )

    async def work(service: ProvisioningService) -> list[AuditRecord]:
        return await service.audit(query)

    records = _with_service(config, work)
    if args.json:
        print(json.dumps([_record_json(r) for r in records], indent=2))
        return 0
    for r in records:
        print(
            f"{r.id:>6} {_iso(r.at)} {r.actor} ({r.source or '-'}) {r.action} "
            f"{r.kind} {r.key!r} tenant {r.tenant!r}"
        )
        for field, (old, new) in _differences(r.before, r.after).items():
            print(f"         {field}: {_short(old)} -> {_short(new)}")
    if not records:
        print("no audit records")
    return 0


def _differences(
    before: dict[str, Any] | None, after: dict[str, Any] | None
) -> dict[str, tuple[Any, Any]]:
    old, new = before or {}, after or {}
    return {k: (old.get(k), new.get(k)) for k in {**old, **new} if old.get(k) != new.get(k)}


def _short(value: Any) -> str:
    if value is None:
        return "-"
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def _positive(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 100_000:
        raise argparse.ArgumentTypeError(f"{text!r}: must be a number from 1 to 100000")
    return int(text)


def add_provisioning_commands(sub: Any, default_config: str) -> None:
    """Add `config`, `reload` and `audit` to the `softswitch` sub-command parser."""
    config = sub.add_parser("config", help="export or import the provisioning model")
    csub = config.add_subparsers(dest="config_command", required=True)
    export = csub.add_parser("export", help="write the stored model as TOML to standard output")
    export.add_argument("--config", default=default_config, help="configuration file (TOML)")
    export.set_defaults(func=guarded(_cmd_export, ProvisioningError))
    imp = csub.add_parser("import", help="replace the stored model with a file's tenants")
    imp.add_argument("file", help="TOML file with [[tenants]] (e.g. from config export)")
    imp.add_argument("--config", default=default_config, help="configuration file (TOML)")
    imp.add_argument(
        "--dry-run", action="store_true", help="list what would change, change nothing"
    )
    imp.add_argument("--by", help="who does it, for the audit log (default: login name)")
    imp.set_defaults(func=guarded(_cmd_import, ProvisioningError))

    reload = sub.add_parser(
        "reload", help='provisioning = "file": apply the file\'s changes to running switches'
    )
    reload.add_argument("--config", default=default_config, help="configuration file (TOML)")
    reload.add_argument("--by", help="who does it, for the audit log (default: login name)")
    reload.set_defaults(func=guarded(_cmd_reload, ProvisioningError))

    audit = sub.add_parser("audit", help="who changed what in the provisioning, newest first")
    audit.add_argument("--config", default=default_config, help="configuration file (TOML)")
    audit.add_argument("--tenant", help="only this tenant's objects")
    audit.add_argument("--kind", help="only objects of this kind (user, number, trunk...)")
    audit.add_argument("--key", help="only this object (extension, number, name)")
    audit.add_argument("--actor", help="only changes by this actor")
    audit.add_argument("--since", type=_when, help="changes at or after (epoch or ISO)")
    audit.add_argument("--until", type=_when, help="changes before (epoch or ISO)")
    audit.add_argument("--limit", type=_positive, default=50, help="records (default 50)")
    audit.add_argument("--before-id", type=int, help="page on: records older than this id")
    audit.add_argument("--json", action="store_true", help="print JSON with before and after")
    audit.set_defaults(func=guarded(_cmd_audit, ProvisioningError))
