"""`softswitch security bans [--lift ADDR]`: list banned source addresses, lift a ban;
`softswitch security caps [--tenant T] [--all-users] [--json]`: the toll-fraud caps' use.

A lift deletes the stored ban; a running switch follows within ``[security]
sync_interval`` seconds (every node sharing the database does). The caps' use is the
running switch's (it keeps a snapshot in the database every few seconds, calls in progress
included); with no switch running, it is read from the day's CDRs.
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
from config.models import Tenant
from softswitch.cli_common import (
    CommandError,
    guarded,
    load_checked_config,
    load_config_or_exit,
    with_store,
)
from softswitch.provisioning.runtime import stored_config
from softswitch.security.tollfraud import TollFraudGuard
from softswitch.security.tollfraud_store import (
    SNAPSHOT_INTERVAL,
    SNAPSHOT_KEY,
    load_day,
    replay_cdrs,
    usage_rows,
)
from storage import Store
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


async def _caps(
    config: SwitchConfig, store: Store, tenant: str | None, all_users: bool
) -> tuple[list[dict[str, object]], str]:
    """(rows, where they come from)."""
    config = await stored_config(config, store)
    tenants: list[Tenant] = list(config.tenants)
    if tenant is not None:
        tenants = [t for t in tenants if tenant in (t.name, t.domain)]
        if not tenants:
            known = ", ".join(t.name for t in config.tenants) or "none"
            raise CommandError(f"no tenant {tenant!r} (tenants: {known})", 2)
    names = {t.name for t in tenants}
    now = time.time()
    raw = await store.get_setting(SNAPSHOT_KEY)
    snapshot = json.loads(raw) if raw else None
    if (
        not all_users
        and isinstance(snapshot, dict)
        and now - float(snapshot.get("at", 0)) <= 3 * SNAPSHOT_INTERVAL
    ):
        rows = [r for r in snapshot.get("rows", []) if r.get("tenant") in names]
        return rows, f"running switch, {now - float(snapshot['at']):.0f} s ago"
    guard = TollFraudGuard(time.time, {})
    replay_cdrs(guard, await load_day(store, now), tenants)
    return usage_rows(
        guard, tenants, all_users=all_users
    ), "CDRs of the day (calls in progress not seen)"


def _cap(value: object, cap: object) -> str:
    return f"{value}/{cap}" if cap is not None else f"{value}"


def _cmd_caps(args: argparse.Namespace) -> int:
    config = load_checked_config(args.config, args.database)
    rows, source = with_store(
        config, lambda store: _caps(config, store, args.tenant, args.all_users)
    )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"toll-fraud caps, use/cap (from the {source}):")
    heads = ("TENANT", "USER", "OUTBOUND NOW", "INTL LAST HOUR", "MINUTES TODAY")
    print(f"{heads[0]:<20} {heads[1]:<8} {heads[2]:>12} {heads[3]:>15} {heads[4]:>15}")
    for row in rows:
        print(
            f"{row['tenant']!s:<20} {row['user'] or '-'!s:<8} "
            f"{_cap(row['outbound_calls'], row['max_outbound_calls']):>12} "
            f"{_cap(row['international_last_hour'], row['max_international_per_hour']):>15} "
            f"{_cap(row['minutes_today'], row['max_minutes_per_day']):>15}"
        )
    return 0


def add_security_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], default_config: str
) -> None:
    """Register `softswitch security ...` on the main parser."""
    security = sub.add_parser("security", help="bans of source addresses, toll-fraud caps")
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
    caps = security_sub.add_parser("caps", help="toll-fraud caps: current use per tenant")
    caps.add_argument("--config", default=default_config, help="configuration file (TOML)")
    caps.add_argument("--database", help="database URL (overrides the configuration)")
    caps.add_argument("--tenant", help="only this tenant (name or domain)")
    caps.add_argument(
        "--all-users", action="store_true", help="every user (default: those with use or caps)"
    )
    caps.add_argument("--json", action="store_true", help="print JSON")
    caps.set_defaults(func=guarded(_cmd_caps))
