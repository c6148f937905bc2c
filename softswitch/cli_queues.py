"""`softswitch queues ...`: call-center statistics, live status, agents' log in/out/pause.

    softswitch queues stats --from 2026-03-01 --to 2026-04-01 [--queue Q] [--agent EXT]
                            [--timezone Europe/Berlin] [--weekdays mon-fri]
                            [--day-part 09:00-17:00] [--format table|csv|json]
    softswitch queues status [--format table|json]
    softswitch queues agent login|logout|pause EXT [--reason lunch]

Everything goes through the queue event log in the database: an agent's status change is
an event the running switch picks up (every node sharing the database does), and the live
status is the log's tail.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from dataclasses import asdict

from config import SwitchConfig
from config.models import Tenant
from softswitch.cli_common import CommandError, guarded, load_checked_config, with_store
from softswitch.queues.live import live_state
from softswitch.queues.period import Period
from softswitch.queues.report import FORMATS, collect, render
from storage import Store
from storage.queue_events import QueueEvent

__all__ = ["LIVE_WINDOW", "add_queue_commands"]

#: How far back `queues status` reads the log for calls still waiting or in progress.
LIVE_WINDOW = 86400.0


def _tenant(config: SwitchConfig, name: str | None) -> Tenant:
    if name is None:
        if len(config.tenants) != 1:
            names = ", ".join(t.name for t in config.tenants) or "none"
            raise CommandError(f"--tenant: name one of the tenants ({names})", 2)
        return config.tenants[0]
    for tenant in config.tenants:
        if tenant.name == name:
            return tenant
    raise CommandError(f"--tenant: no tenant {name!r}", 2)


def _cmd_stats(args: argparse.Namespace) -> int:
    config = load_checked_config(args.config, args.database)
    tenant = _tenant(config, args.tenant)
    try:
        period = Period.build(args.start, args.end, args.timezone, args.weekdays, args.day_part)
    except ValueError as exc:
        raise CommandError(str(exc), 2) from None
    known = {q.name for q in tenant.queues}
    if args.queue is not None and args.queue not in known:
        raise CommandError(f"--queue: tenant {tenant.name} has no queue {args.queue!r}", 2)
    thresholds = {q.name: q.service_level for q in tenant.queues}

    async def work(store: Store) -> str:
        report = await collect(
            store,
            tenant.name,
            period,
            thresholds=thresholds,
            queues=sorted(known),
            queue=args.queue,
            agent=args.agent,
            now=time.time(),
        )
        what = "agents" if args.agent else "both"
        return render(report, args.format, what)

    print(with_store(config, work), end="")
    return 0


def _clock(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).isoformat(timespec="seconds")


def _cmd_status(args: argparse.Namespace) -> int:
    config = load_checked_config(args.config, args.database)
    tenant = _tenant(config, args.tenant)
    now = time.time()

    async def work(store: Store) -> tuple[list[QueueEvent], list[QueueEvent]]:
        events = await store.load_queue_events(tenant.name, now - LIVE_WINDOW, now + 1)
        return events, await store.last_agent_statuses(tenant.name, now + 1)

    events, statuses = with_store(config, work)
    callers, agents = live_state(events, statuses)
    configured = {a.extension for q in tenant.queues for a in q.agents}
    listed = {a.agent for a in agents}
    if args.format == "json":
        doc = {
            "tenant": tenant.name,
            "callers": [{**asdict(c), "waited": now - c.entered} for c in callers],
            "agents": [asdict(a) for a in agents]
            + [
                {"agent": ext, "status": "logged_out", "state": "idle"}
                for ext in sorted(configured - listed)
            ],
        }
        print(json.dumps(doc, indent=2))
        return 0
    print(f"callers waiting: {len(callers)}")
    for c in callers:
        ringing = f" ringing {','.join(c.ringing)}" if c.ringing else ""
        print(f"  {c.queue:<20} {c.call_id:<36} waited {now - c.entered:7.0f} s{ringing}")
    print("agents:")
    for a in agents:
        status = f"{a.status}:{a.reason}" if a.reason else a.status
        where = f" {a.queue} {a.call_id}" if a.call_id else ""
        print(f"  {a.agent:<10} {status:<24} {a.state:<8} since {_clock(a.since)}{where}")
    for ext in sorted(configured - listed):
        print(f"  {ext:<10} {'logged_out':<24} {'idle':<8}")
    return 0


_STATUS_OF = {"login": "available", "logout": "logged_out", "pause": "on_break"}


def _cmd_agent(args: argparse.Namespace) -> int:
    config = load_checked_config(args.config, args.database)
    tenant = _tenant(config, args.tenant)
    agents = {a.extension for q in tenant.queues for a in q.agents}
    if args.extension not in agents:
        raise CommandError(f"{args.extension}: not an agent of any queue of {tenant.name}", 2)
    status = _STATUS_OF[args.action]
    if args.reason and status != "on_break":
        raise CommandError("--reason: only for pause", 2)
    label = f"{status}:{args.reason}" if args.reason else status
    event = QueueEvent(tenant.name, "agent_status", time.time(), agent=args.extension, reason=label)

    async def work(store: Store) -> None:
        try:
            await store.append_queue_events([event])
        except Exception as exc:
            raise CommandError(str(exc), 2) from None

    with_store(config, work)
    print(f"{args.extension}: {label}")
    return 0


def add_queue_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], default_config: str
) -> None:
    """Register `softswitch queues ...` on the main parser."""
    queues = sub.add_parser("queues", help="call queues: statistics, live status, agents")
    queues_sub = queues.add_subparsers(dest="queues_command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", default=default_config, help="configuration file (TOML)")
        p.add_argument("--database", help="database URL (overrides the configuration)")
        p.add_argument("--tenant", help="tenant name (needed when there are several)")

    stats = queues_sub.add_parser("stats", help="call-center statistics for a period")
    common(stats)
    stats.add_argument("--from", dest="start", required=True, help="ISO date or date-time")
    stats.add_argument("--to", dest="end", required=True, help="ISO date or date-time (excl.)")
    stats.add_argument("--queue", help="only this queue (and its agents)")
    stats.add_argument("--agent", help="only this agent (extension)")
    stats.add_argument("--timezone", default="UTC", help="zone of dates, weekdays, day part")
    stats.add_argument("--weekdays", help="e.g. mon-fri or sat,sun")
    stats.add_argument("--day-part", help="e.g. 09:00-17:00")
    stats.add_argument("--format", choices=FORMATS, default="table")
    stats.set_defaults(func=guarded(_cmd_stats))

    status = queues_sub.add_parser("status", help="callers waiting and agents' states now")
    common(status)
    status.add_argument("--format", choices=("table", "json"), default="table")
    status.set_defaults(func=guarded(_cmd_status))

    agent = queues_sub.add_parser("agent", help="log an agent in or out, or pause them")
    common(agent)
    agent.add_argument("action", choices=sorted(_STATUS_OF))
    agent.add_argument("extension", help="the agent's extension")
    agent.add_argument("--reason", help="break reason for pause (lunch, meeting...)")
    agent.set_defaults(func=guarded(_cmd_agent))
