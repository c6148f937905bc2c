"""The `softswitch` command line: run, check-config, registrations."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence

from config import ConfigError, SwitchConfig, example_config_path, load_config


def _load(path: str) -> SwitchConfig:
    try:
        return load_config(path)
    except ConfigError as error:
        print(f"{path}: configuration has errors:\n{error}", file=sys.stderr)
        raise SystemExit(2) from None


def _cmd_run(args: argparse.Namespace) -> int:
    from softswitch.logs import configure_logging
    from softswitch.loop import run
    from softswitch.server import serve

    config = _load(args.config)
    log_file = configure_logging(config.logging)
    domains = ", ".join(t.domain for t in config.tenants) or "(no tenants)"
    listen = ", ".join(f"{x.transport}:{x.host}:{x.port}" for x in config.sip.listen)
    print(f"softswitch: listening on {listen}")
    print(f"softswitch: phones register as <extension>@<domain> (domains: {domains}) "
          f"to this host's address on the ports above")
    print(f"softswitch: database {config.database.backend}, logs -> "
          f"{log_file if log_file else 'standard error'}")
    run(serve(config))
    return 0


def _cmd_check_config(args: argparse.Namespace) -> int:
    config = _load(args.path)
    users = sum(len(t.users) for t in config.tenants)
    print(f"{args.path}: OK ({len(config.tenants)} tenants, {users} users, "
          f"{len(config.sip.listen)} listeners, database {config.database.backend})")
    return 0


async def _registrations(config: SwitchConfig) -> list[dict[str, object]]:
    from storage import open_store

    store = open_store(config.database.url)
    await store.open()
    try:
        bindings = await store.load_bindings(time.time())
    finally:
        await store.close()
    now = time.time()
    return [
        {
            "aor": b.aor,
            "contact": b.contact,
            "expires_in": int(b.expires_at - now),
            "transport": b.transport,
            "received": b.received,
            "user_agent": b.user_agent,
            "reachable": b.reachable,
        }
        for b in sorted(bindings, key=lambda b: (b.aor, b.contact))
    ]


def _cmd_registrations(args: argparse.Namespace) -> int:
    config = _load(args.config)
    if args.database:
        config = config.model_copy(
            update={"database": config.database.model_copy(update={"url": args.database})}
        )
    rows = asyncio.run(_registrations(config))
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no registrations")
        return 0
    print(f"{'AOR':<32} {'EXPIRES':>7} {'TRANSPORT':<9} {'RECEIVED':<26} CONTACT")
    for row in rows:
        print(f"{row['aor']!s:<32} {row['expires_in']!s:>7} {row['transport']!s:<9} "
              f"{row['received'] or '-'!s:<26} {row['contact']}")
    print(f"{len(rows)} registrations")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="softswitch", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    default_config = str(example_config_path())

    run = sub.add_parser("run", help="start the switch")
    run.add_argument("--config", default=default_config, help="configuration file (TOML)")
    run.set_defaults(func=_cmd_run)

    check = sub.add_parser("check-config", help="validate a configuration file")
    check.add_argument("path", help="configuration file (TOML)")
    check.set_defaults(func=_cmd_check_config)

    regs = sub.add_parser("registrations", help="list current registrations")
    regs.add_argument("--config", default=default_config, help="configuration file (TOML)")
    regs.add_argument("--database", help="database URL (overrides the configuration)")
    regs.add_argument("--json", action="store_true", help="print JSON")
    regs.set_defaults(func=_cmd_registrations)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
