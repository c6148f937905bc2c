"""Routing commands of the `softswitch` CLI: disaster plans, route explain, DID import/export.

    softswitch disaster enable NAME [--tenant T] [--by WHO]
    softswitch disaster disable NAME [--tenant T] [--by WHO]
    softswitch disaster status [--tenant T]
    softswitch route explain --to NUMBER --from NUMBER [--at ISO-TIME] [--tenant T]
                             [--registered EXT]... [--busy EXT]... [--outcome OUTCOME]...
    softswitch numbers import FILE.csv|FILE.xlsx [--tenant T] [--apply | --print-toml]
                   (--apply: into the database, or the file with provisioning = "file")
    softswitch numbers export [--tenant T] [--output FILE]

Each reads the configuration (--config) and the database it names (--database overrides).
Disaster plan statuses live in the database, so enable/disable reach running switches
(which poll it, see `softswitch.routing_state`) without a restart.

Exit status: 0 done, 1 refused (unknown plan, import with errors, ...), 2 bad configuration
or arguments, 3 database unavailable.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import os
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from config import ConfigError, SwitchConfig, load_config
from config.models import Tenant
from config.numbers import Did, DisasterPlan
from config.routing import TenantRouting
from routing.disaster import DisasterError, get_plan, plan_status
from routing.engine import plan_call
from routing.explain import ASSUMABLE_OUTCOMES, explain
from routing.facts import CallFacts
from routing.imports import (
    ImportNotClean,
    ImportReport,
    RowReport,
    apply_did_import,
    export_dids_csv,
    validate_did_import,
)
from routing.numbers import clean
from routing.plan import Outcome, TargetKind
from softswitch.apps.attendant_menu import describe_attendant
from softswitch.cli_common import CommandError, guarded, load_checked_config, with_store
from softswitch.provisioning import (
    Actor,
    InvalidObject,
    ProvisioningError,
    ProvisioningService,
)
from softswitch.provisioning.runtime import stored_config
from softswitch.routing_state import current_routing, set_disaster_plan
from softswitch.security.emergency import describe_emergency
from storage import Store

__all__ = ["add_routing_commands", "did_toml", "parse_when"]

# -- shared helpers ---------------------------------------------------------------------------


def _load(args: argparse.Namespace) -> SwitchConfig:
    config = load_checked_config(args.config, getattr(args, "database", None))
    # The tenants the switch runs with: in database mode the stored ones, not the file's.
    return with_store(config, lambda store: stored_config(config, store))


def _tenant(config: SwitchConfig, name: str | None) -> Tenant:
    """The tenant named (by name or domain); the only one when not named."""
    if name is None:
        if len(config.tenants) == 1:
            return config.tenants[0]
        if not config.tenants:
            raise CommandError("the configuration has no tenants", 2)
        names = ", ".join(t.name for t in config.tenants)
        raise CommandError(f"several tenants ({names}): choose one with --tenant", 2)
    for tenant in config.tenants:
        if name in (tenant.name, tenant.domain):
            return tenant
    names = ", ".join(t.name for t in config.tenants) or "none"
    raise CommandError(f"no tenant {name!r} (tenants: {names})", 2)


def _format_time(at: dt.datetime) -> str:
    return at.isoformat(timespec="seconds")


def parse_when(text: str | None) -> tuple[dt.datetime, str]:
    """An ISO 8601 time for `--at` (now when None) and a note for the reader.

    A time without offset is read as UTC, and the note says so.
    """
    if text is None:
        return dt.datetime.now(dt.UTC), ""
    try:
        at = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise CommandError(
            f"--at {text!r} is not an ISO 8601 time such as 2026-07-04T10:00-04:00", 2
        ) from None
    if at.tzinfo is None or at.utcoffset() is None:
        return at.replace(tzinfo=dt.UTC), " (no UTC offset given: read as UTC)"
    return at, ""


def _who(by: str | None) -> str:
    if by is None:
        try:
            by = getpass.getuser()
        except (KeyError, OSError):  # no passwd entry (containers)
            by = ""
        by = by or "cli"
    text = by.strip()
    if not text or len(text) > 120 or any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise CommandError("--by must be 1 to 120 printable characters", 2)
    return text


# -- disaster ---------------------------------------------------------------------------------


def _cmd_disaster_change(args: argparse.Namespace) -> int:
    enable = args.action == "enable"
    config = _load(args)
    tenant = _tenant(config, args.tenant)
    by = _who(args.by)
    at = dt.datetime.now(dt.UTC)

    async def work(store: Store) -> DisasterPlan:
        try:
            return await set_disaster_plan(store, tenant, args.name, enable, by, at)
        except DisasterError as exc:
            raise CommandError(f"tenant {tenant.name}: {exc}") from None

    plan = with_store(config, work)
    verb = "enabled" if enable else "disabled"
    lines = [
        f"tenant {tenant.name}: disaster plan {plan.name!r} {verb} by {by} at {_format_time(at)}"
    ]
    if enable:
        lines += [f"  {n.number} -> {n.forward_to}" for n in plan.numbers]
    else:
        lines.append(f"  {len(plan.numbers)} number(s) back to normal routing")
    lines.append("running switches apply this to new calls within about a second")
    print("\n".join(lines))
    return 0


def _cmd_disaster_status(args: argparse.Namespace) -> int:
    config = _load(args)
    tenants = [_tenant(config, args.tenant)] if args.tenant else list(config.tenants)

    async def work(store: Store) -> list[str]:
        lines: list[str] = []
        for tenant in tenants:
            routing, problems = await current_routing(store, tenant)
            lines.append(f"tenant {tenant.name}:")
            statuses = plan_status(routing)
            if not statuses:
                lines.append("  no disaster plans")
            for status in statuses:
                lines.append(f"  {status}")
                if status.status == "enabled":
                    plan = get_plan(routing, status.name)
                    lines += [f"    {n.number} -> {n.forward_to}" for n in plan.numbers]
            lines += [f"  warning: {p}" for p in problems]
            names = {p.name for p in routing.disaster_plans}
            for state in await store.load_disaster_plans(tenant.name):
                if state.plan not in names:
                    word = "enabled" if state.enabled else "disabled"
                    lines.append(
                        f"  note: stored state of plan {state.plan!r} ({word}) has no plan "
                        "in the configuration"
                    )
        return lines

    print("\n".join(with_store(config, work)))
    return 0


# -- route explain ----------------------------------------------------------------------------


def _registered(bindings: list[Any], tenant: Tenant) -> dict[str, int]:
    """Live devices per extension of the tenant, from the stored registrations."""
    counts: dict[str, int] = {}
    suffix = "@" + tenant.domain
    for b in bindings:
        aor: str = b.aor
        if aor.startswith("sip:") and aor.lower().endswith(suffix):
            user = aor[4 : -len(suffix)]
            found = tenant.user_by_extension(user) or tenant.user_by_username(user)
            if found is not None:
                counts[found.extension] = counts.get(found.extension, 0) + 1
    return counts


def _cmd_route_explain(args: argparse.Namespace) -> int:
    config = _load(args)
    tenant = _tenant(config, args.tenant)
    at, note = parse_when(args.at)
    caller = args.caller.strip()
    internal = clean(caller) in tenant.routing.users

    async def work(store: Store) -> tuple[TenantRouting, list[str], dict[str, int]]:
        routing, problems = await current_routing(store, tenant)
        registered: dict[str, int]
        if args.registered is None:
            registered = _registered(await store.load_bindings(time.time()), tenant)
        else:
            registered = {ext: 1 for ext in args.registered}
        return routing, problems, registered

    routing, problems, registered = with_store(config, work)
    facts = CallFacts(
        caller=caller or None,
        dialled=args.to,
        at=at,
        tenant=tenant.name,
        registered=registered,
        busy=frozenset(args.busy or ()),
        spam=args.spam,
        from_trunk=not internal,
    )
    origin = "extension of the tenant" if internal else "outside caller, via a trunk"
    enabled = [p.name for p in routing.disaster_plans if p.enabled]
    devices = ", ".join(f"{e} ({n})" for e, n in sorted(registered.items())) or "none"
    lines = [
        f"call from {caller or 'anonymous'} ({origin}) to {args.to} at {_format_time(at)}"
        f"{note}, tenant {tenant.name}",
        f"registered devices: {devices}; busy: {', '.join(sorted(facts.busy)) or 'none'}",
        f"enabled disaster plans: {', '.join(map(repr, enabled)) or 'none'}",
        *(f"warning: {p}" for p in problems),
        "decision path:",
        *explain(routing, facts, [Outcome(o) for o in args.outcome or ()]),
        *attendant_lines(tenant, routing, facts),
    ]
    if internal and clean(args.to) in routing.emergency():  # the call layer's part of it
        lines += describe_emergency(tenant, tenant.user_by_extension(clean(caller)))
    print("\n".join(lines))
    return 0


def attendant_lines(tenant: Tenant, routing: TenantRouting, facts: CallFacts) -> list[str]:
    """What each auto attendant of the callflow would play at the call's time."""
    try:
        flow = plan_call(routing, facts)
    except ValueError:
        return []
    refs = [t.ref for t in flow.targets() if t.kind is TargetKind.AUTO_ATTENDANT]
    return [
        line for ref in dict.fromkeys(refs) for line in describe_attendant(tenant, ref, facts.at)
    ]


# -- numbers ----------------------------------------------------------------------------------


def _toml_string(text: str) -> str:
    out = ['"']
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def did_toml(dids: tuple[Did, ...] | list[Did]) -> str:
    """`[[tenants.routing.dids]]` blocks for `dids` (they belong to the last [[tenants]])."""
    blocks = []
    for did in dids:
        lines = ["[[tenants.routing.dids]]", f"number = {_toml_string(did.number)}"]
        lines.append(f"treatment = {_toml_string(did.treatment.value)}")
        if did.destination:
            lines.append(f"destination = {_toml_string(did.destination)}")
        if did.caller_id_prefix:
            lines.append(f"caller_id_prefix = {_toml_string(did.caller_id_prefix)}")
        if did.notes:
            lines.append(f"notes = {_toml_string(did.notes)}")
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def _write_dids(
    path: Path, config: SwitchConfig, index: int, routing: TenantRouting, added: tuple[Did, ...]
) -> None:
    """Append `added` to the configuration file, verified, atomically.

    An appended [[tenants.routing.dids]] belongs to the file's last [[tenants]], so only that
    tenant can be extended this way; the candidate file is loaded and compared with the
    intended configuration before it replaces the original (comments and layout stay).
    """
    if index != len(config.tenants) - 1:
        raise CommandError(
            f"tenant {config.tenants[index].name} is not the last [[tenants]] of {path}, so its "
            "DIDs cannot be appended safely; use --print-toml and paste the blocks into its "
            "section"
        )
    try:
        original = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror or exc}", 2) from None
    header = f"\n# DIDs imported {_format_time(dt.datetime.now(dt.UTC))}\n"
    candidate = original.rstrip("\n") + "\n" + header + did_toml(added)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(candidate)
        try:
            written = load_config(tmp)
        except ConfigError as exc:
            raise CommandError(f"appending to {path} would not give a valid file:\n{exc}") from None
        expected = [t.model_dump(exclude={"routing": {"dids"}}) for t in config.tenants]
        actual = [t.model_dump(exclude={"routing": {"dids"}}) for t in written.tenants]
        if (
            actual != expected
            or written.tenants[index].routing.dids != routing.dids
            or written.model_dump(exclude={"tenants"}) != config.model_dump(exclude={"tenants"})
        ):
            raise CommandError(
                f"appending to {path} would change more than the DIDs (is dids written as an "
                "inline array?); use --print-toml and edit the file by hand"
            )
        os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _cmd_numbers_import(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror or exc}", 2) from None
    config = load_checked_config(args.config, args.database)
    if config.provisioning == "database":
        return with_store(config, lambda store: _import_to_store(args, config, store, path, data))
    config = _load(args)
    tenant = _tenant(config, args.tenant)
    report = _report(tenant, path, data)
    if not report.clean:
        return 1
    if not (args.apply or args.print_toml):
        print("valid; run again with --apply to add these numbers to the configuration")
        return 0
    try:
        routing = apply_did_import(tenant.routing, report)
    except (ImportNotClean, ValueError) as exc:
        raise CommandError(f"nothing applied: {exc}") from None
    added = tuple(routing.dids[len(tenant.routing.dids) :])
    if args.print_toml:
        _print_toml(tenant, added)
        return 0
    _write_dids(Path(args.config), config, config.tenants.index(tenant), routing, added)
    print(f"{len(added)} DID(s) added to {args.config}; restart the switch to route them")
    return 0


def _report(tenant: Tenant, path: Path, data: bytes) -> ImportReport:
    """Validate the upload against the tenant's inventory and print the per-row report."""
    report = validate_did_import(tenant.routing, path.name, data)
    print(f"tenant {tenant.name}: import of {path.name}")
    print("\n".join(report.lines()))
    if not report.clean:
        print("nothing applied: fix the rows with errors and run the import again")
    return report


def _print_toml(tenant: Tenant, added: tuple[Did, ...]) -> None:
    print(f"# paste into the [[tenants]] section of tenant {tenant.name}:")
    print(did_toml(added), end="")


async def _import_to_store(
    args: argparse.Namespace, config: SwitchConfig, store: Store, path: Path, data: bytes
) -> int:
    """`provisioning = "database"`: the rows are checked against the stored inventory and
    created through the provisioning service in one transaction (all or none), audited as
    the command line's user; running switches apply them within a second."""
    service = ProvisioningService(store, mode="database")
    actor = _actor()
    if await store.provisioning_revision() == 0 and config.tenants:
        # What the switch's first start does: the file's tenants become the stored model.
        await service.seed(actor, config.tenants)
        print("the database held no provisioning: seeded from the configuration file")
    tenant = _tenant(await stored_config(config, store), args.tenant)
    report = _report(tenant, path, data)
    if not report.clean:
        return 1
    if args.print_toml:
        _print_toml(tenant, tuple(report.items))
        return 0
    if not args.apply:
        print("valid; run again with --apply to add these numbers to the database")
        return 0
    try:
        await service.create_all(
            actor, "number", tenant.name, [_did_document(d) for d in report.items]
        )
    except InvalidObject as exc:
        print("\n".join(_refused(report, exc).lines()))
        print("nothing applied: the tenant's rules refuse the rows with errors")
        return 1
    except ProvisioningError as exc:  # a number created meanwhile, the tenant deleted
        raise CommandError(f"nothing applied: {exc}") from None
    print(
        f"{len(report.items)} DID(s) added to the database of tenant {tenant.name} "
        f"(audited as {actor.name}); running switches route them within a second"
    )
    return 0


def _actor() -> Actor:
    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = "unknown"
    return Actor(f"cli:{who}", socket.gethostname())


def _did_document(did: Did) -> dict[str, Any]:
    return did.model_dump(mode="json", exclude_defaults=True) | {"number": did.number}


def _refused(report: ImportReport, exc: InvalidObject) -> ImportReport:
    """The report with the reasons the tenant's rules gave put on the rows they concern
    (every row when a reason names no number)."""
    reasons: dict[str, str] = {}
    for error in exc.errors:
        text = f"{error.field}: {error.message}" if error.field else error.message
        reasons.setdefault(error.key, text)
    rows = [
        RowReport(row.row, row.values, "error" if item.number in reasons else "ok",
                  reasons.get(item.number, ""))
        for row, item in zip(report.rows, report.items, strict=True)
    ]  # fmt: skip
    if not any(r.status == "error" for r in rows):
        first = next(iter(reasons.values()), "refused")
        rows = [RowReport(r.row, r.values, "error", first) for r in report.rows]
    return ImportReport(tuple(rows), None, ())


def _cmd_numbers_export(args: argparse.Namespace) -> int:
    config = _load(args)
    tenant = _tenant(config, args.tenant)
    text = export_dids_csv(tenant.routing)
    if args.output in (None, "-"):
        sys.stdout.write(text)
        return 0
    try:
        Path(args.output).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"cannot write {args.output}: {exc.strerror or exc}", 2) from None
    print(f"{len(tenant.routing.dids)} DID(s) written to {args.output}")
    return 0


# -- parser -----------------------------------------------------------------------------------


def _common(parser: argparse.ArgumentParser, default_config: str, database: bool = True) -> None:
    parser.add_argument("--config", default=default_config, help="configuration file (TOML)")
    if database:
        parser.add_argument("--database", help="database URL (overrides the configuration)")
    parser.add_argument("--tenant", help="tenant name or domain (default: the only one)")


def add_routing_commands(sub: Any, default_config: str) -> None:
    """Add `disaster`, `route` and `numbers` to the `softswitch` sub-command parser."""
    disaster = sub.add_parser("disaster", help="enable, disable and list disaster plans")
    dsub = disaster.add_subparsers(dest="action", required=True)
    for action, text in (("enable", "execute a plan"), ("disable", "revert a plan")):
        cmd = dsub.add_parser(action, help=text)
        cmd.add_argument("name", help="plan name")
        _common(cmd, default_config)
        cmd.add_argument("--by", help="who does it, for the history (default: login name)")
        cmd.set_defaults(func=guarded(_cmd_disaster_change))
    status = dsub.add_parser("status", help="plans, their status and last change")
    _common(status, default_config)
    status.set_defaults(func=guarded(_cmd_disaster_status))

    route = sub.add_parser("route", help="routing decisions")
    rsub = route.add_subparsers(dest="action", required=True)
    exp = rsub.add_parser("explain", help="why a call goes where it goes")
    exp.add_argument("--to", required=True, help="dialled number or extension")
    exp.add_argument(
        "--from",
        dest="caller",
        required=True,
        help="caller number or extension ('anonymous' when withheld)",
    )
    exp.add_argument("--at", help="ISO 8601 time, e.g. 2026-07-04T10:00-04:00 (default: now)")
    exp.add_argument(
        "--registered",
        action="append",
        metavar="EXT",
        help="assume only these extensions are registered (repeatable; "
        "default: the registrations in the database)",
    )
    exp.add_argument(
        "--busy",
        action="append",
        metavar="EXT",
        help="assume this extension is on a call (repeatable)",
    )
    exp.add_argument("--spam", action="store_true", help="the call is marked as spam")
    exp.add_argument(
        "--outcome",
        action="append",
        choices=[o.value for o in ASSUMABLE_OUTCOMES],
        help="assume the next ring node on the way ends so (repeatable, in order; "
        "default: nobody answers)",
    )
    _common(exp, default_config)
    exp.set_defaults(func=guarded(_cmd_route_explain))

    numbers = sub.add_parser("numbers", help="the DID inventory")
    nsub = numbers.add_subparsers(dest="action", required=True)
    imp = nsub.add_parser("import", help="validate (and apply) a CSV/XLSX of DIDs")
    imp.add_argument(
        "file", help=".csv or .xlsx: number, treatment, destination, caller_id_prefix, notes"
    )
    mode = imp.add_mutually_exclusive_group()
    mode.add_argument(
        "--apply",
        action="store_true",
        help="when every row is valid, add the DIDs: to the database (all or none, audited, "
        'applied live) with provisioning = "database", else to the configuration file',
    )
    mode.add_argument(
        "--print-toml",
        action="store_true",
        help="when every row is valid, print them as TOML to paste",
    )
    _common(imp, default_config)
    imp.set_defaults(func=guarded(_cmd_numbers_import))
    exp_n = nsub.add_parser("export", help="the DID inventory as CSV")
    exp_n.add_argument("--output", help="file to write (default: standard output)")
    _common(exp_n, default_config, database=False)
    exp_n.set_defaults(func=guarded(_cmd_numbers_export))
