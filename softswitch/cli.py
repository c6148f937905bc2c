"""The `softswitch` command line: run, check-config, registrations, disaster, route, numbers,
admin, token, prompts, security, config export/import, reload, audit."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence

from config import SwitchConfig, example_config_path
from softswitch.cli_common import load_config_or_exit


def _cmd_run(args: argparse.Namespace) -> int:
    from softswitch.logs import configure_logging
    from softswitch.loop import run
    from softswitch.server import serve

    config = load_config_or_exit(args.config)
    if args.media_workers is not None:
        config = config.model_copy(
            update={"media": config.media.model_copy(update={"workers": args.media_workers})}
        )
    log_file = configure_logging(config.logging)
    domains = ", ".join(t.domain for t in config.tenants) or "(no tenants)"
    listen = ", ".join(f"{x.transport}:{x.host}:{x.port}" for x in config.sip.listen)
    print(f"softswitch: listening on {listen}")
    print(
        f"softswitch: phones register as <extension>@<domain> (domains: {domains}) "
        f"to this host's address on the ports above"
    )
    print(
        f"softswitch: database {config.database.backend}, logs -> "
        f"{log_file if log_file else 'standard error'}"
    )
    if config.api.enabled:
        scheme = "https" if config.api.tls_certificate else "http"
        print(f"softswitch: admin API on {scheme}://{config.api.host}:{config.api.port}/docs")
    run(serve(config, args.config))
    return 0


def _cmd_check_config(args: argparse.Namespace) -> int:
    config = load_config_or_exit(args.path)
    users = sum(len(t.users) for t in config.tenants)
    print(
        f"{args.path}: OK ({len(config.tenants)} tenants, {users} users, "
        f"{len(config.sip.listen)} listeners, database {config.database.backend})"
    )
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
    config = load_config_or_exit(args.config, args.database)
    rows = asyncio.run(_registrations(config))
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no registrations")
        return 0
    print(
        f"{'AOR':<32} {'EXPIRES':>7} {'TRANSPORT':<9} {'RECEIVED':<26} {'USER-AGENT':<24} CONTACT"
    )
    for row in rows:
        print(
            f"{row['aor']!s:<32} {row['expires_in']!s:>7} {row['transport']!s:<9} "
            f"{row['received'] or '-'!s:<26} {row['user_agent'] or '-'!s:<24} {row['contact']}"
        )
    print(f"{len(rows)} registrations")
    return 0


def _parse_when(text: str) -> float:
    """Epoch seconds, or an ISO 8601 date/time (UTC unless it names a zone)."""
    import datetime as dt

    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither epoch seconds nor an ISO date/time"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


async def _load_cdrs(
    config: SwitchConfig, start: float, end: float, tenant: str | None
) -> list[object]:
    from storage import open_store

    store = open_store(config.database.url)
    await store.open()
    try:
        return list(await store.load_cdrs(start, end, tenant))
    finally:
        await store.close()


def _cmd_cdr_export(args: argparse.Namespace) -> int:
    import csv

    from storage.cdr import CSV_COLUMNS, Cdr, csv_row

    config = load_config_or_exit(args.config, args.database)
    end = args.to if args.to is not None else time.time() + 1
    cdrs = asyncio.run(_load_cdrs(config, args.from_, end, args.tenant))
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for cdr in cdrs:
        assert isinstance(cdr, Cdr)
        writer.writerow(csv_row(cdr))
    return 0


def _workers(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 0 <= int(text) <= 64:
        raise argparse.ArgumentTypeError(f"{text!r}: must be a number of processes, 0-64")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="softswitch", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    default_config = str(example_config_path())

    run = sub.add_parser("run", help="start the switch")
    run.add_argument("--config", default=default_config, help="configuration file (TOML)")
    run.add_argument(
        "--media-workers",
        type=_workers,
        metavar="N",
        help="run the media engine in N worker processes (0: in the switch "
        "process; overrides [media] workers)",
    )
    run.set_defaults(func=_cmd_run)

    check = sub.add_parser("check-config", help="validate a configuration file")
    check.add_argument("path", help="configuration file (TOML)")
    check.set_defaults(func=_cmd_check_config)

    regs = sub.add_parser("registrations", help="list current registrations")
    regs.add_argument("--config", default=default_config, help="configuration file (TOML)")
    regs.add_argument("--database", help="database URL (overrides the configuration)")
    regs.add_argument("--json", action="store_true", help="print JSON")
    regs.set_defaults(func=_cmd_registrations)

    cdr = sub.add_parser("cdr", help="call detail records")
    cdr_sub = cdr.add_subparsers(dest="cdr_command", required=True)
    export = cdr_sub.add_parser("export", help="write CDRs as CSV to standard output")
    export.add_argument("--config", default=default_config, help="configuration file (TOML)")
    export.add_argument("--database", help="database URL (overrides the configuration)")
    export.add_argument(
        "--from",
        dest="from_",
        type=_parse_when,
        default=0.0,
        help="calls started at or after (epoch seconds or ISO date/time)",
    )
    export.add_argument(
        "--to",
        type=_parse_when,
        default=None,
        help="calls started before (epoch seconds or ISO date/time)",
    )
    export.add_argument("--tenant", help="only this tenant's calls")
    export.set_defaults(func=_cmd_cdr_export)

    from softswitch.cli_routing import add_routing_commands

    add_routing_commands(sub, default_config)

    from softswitch.cli_admin import add_admin_commands

    add_admin_commands(sub, default_config)

    from softswitch.cli_prompts import add_prompt_commands

    add_prompt_commands(sub, default_config)

    from softswitch.cli_security import add_security_commands

    add_security_commands(sub, default_config)

    from softswitch.cli_queues import add_queue_commands

    add_queue_commands(sub, default_config)

    from softswitch.cli_provisioning import add_provisioning_commands

    add_provisioning_commands(sub, default_config)

    from softswitch.cli_voicemail import add_voicemail_commands

    add_voicemail_commands(sub, default_config)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
