"""`softswitch security bans [--lift ADDR]`: list banned source addresses, lift a ban.

A lift deletes the stored ban; a running switch follows within ``[security]
sync_interval`` seconds (every node sharing the database does).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import ipaddress
import json
import sys
import time

from config import SwitchConfig
from softswitch.cli_common import load_config_or_exit
from storage.bans import Ban

__all__ = ["add_security_commands"]


async def _bans(config: SwitchConfig, lift: str | None, since: float) -> tuple[list[Ban], bool]:
    from storage import open_store

    store = open_store(config.database.url)
    await store.open()
    try:
        lifted = await store.delete_ban(lift) if lift is not None else False
        return await store.load_bans(since), lifted
    finally:
        await store.close()


def _when(value: float) -> str:
    return dt.datetime.fromtimestamp(value, dt.UTC).isoformat(timespec="seconds")


def _address(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text.strip().strip("[]")))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an IP address") from None


def _cmd_bans(args: argparse.Namespace) -> int:
    config = load_config_or_exit(args.config, args.database)
    now = time.time()
    since = now - config.security.offence_memory if args.all else now
    bans, lifted = asyncio.run(_bans(config, args.lift, since))
    if args.lift is not None:
        if not lifted:
            print(f"{args.lift}: not banned", file=sys.stderr)
            return 1
        print(
            f"{args.lift}: ban lifted (a running switch follows within "
            f"{config.security.sync_interval:g} s)"
        )
        return 0
    rows = [
        {
            "address": b.address,
            "reason": b.reason,
            "offences": b.offences,
            "banned_at": _when(b.banned_at),
            "expires_at": _when(b.expires_at),
            "active": b.active(now),
        }
        for b in bans
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no bans")
        return 0
    print(f"{'ADDRESS':<40} {'OFFENCES':>8} {'UNTIL':<26} REASON")
    for row in rows:
        until = row["expires_at"] if row["active"] else f"(ended {row['expires_at']})"
        print(f"{row['address']!s:<40} {row['offences']!s:>8} {until!s:<26} {row['reason']}")
    print(f"{len(rows)} bans")
    return 0


def add_security_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], default_config: str
) -> None:
    """Register `softswitch security ...` on the main parser."""
    security = sub.add_parser("security", help="bans of source addresses")
    security_sub = security.add_subparsers(dest="security_command", required=True)
    bans = security_sub.add_parser("bans", help="list banned addresses, or lift a ban")
    bans.add_argument("--config", default=default_config, help="configuration file (TOML)")
    bans.add_argument("--database", help="database URL (overrides the configuration)")
    bans.add_argument("--lift", metavar="ADDR", type=_address, help="lift this address's ban")
    bans.add_argument(
        "--all", action="store_true", help="also ended bans still counted as offences"
    )
    bans.add_argument("--json", action="store_true", help="print JSON")
    bans.set_defaults(func=_cmd_bans)
