"""The systems the suite benchmarks: our switch with one configuration per workload, Kamailio
as registrar and as stateful proxy, the Sippy B2BUA, or a switch on another machine.

Each is started as its own process on loopback and stopped by its PID; the workloads see
them through call_bench.SystemUnderTest (name, scenario, target, service, pid, stop).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.call_bench import BENCH_SCENARIOS, CALLEE, CALLER, DOMAIN, HERE, Kamailio, Sippy
from peers.sipp import run_sipp, user_rows, write_users
from peers.switchproc import PhoneUser, SwitchConfigFile, SwitchProcess, free_port

DID = "+14155550100"  # the carrier's number for the callee in the trunk configuration
AUTH_SCENARIO = BENCH_SCENARIOS / "call_uac_auth.xml"
NOAUTH_SCENARIO = BENCH_SCENARIOS / "call_uac_noauth.xml"
CALL_USERS = (PhoneUser(CALLER, "pw" + CALLER), PhoneUser(CALLEE, "pw" + CALLEE))


@dataclass
class Running:
    """A started system as the workloads see it; `pid` 0 when it is not ours to measure."""

    name: str
    target: str
    pid: int
    stop: Callable[[], object]
    scenario: Path = NOAUTH_SCENARIO
    service: str = CALLEE
    config: Path | None = None  # our switch's configuration file (CDR export, the report)
    notes: list[str] = field(default_factory=list)


def register_callee(
    target: str, uas_port: int, work: Path, *, transport: str = "udp", local_ip: str = "127.0.0.1"
) -> None:
    """The SIPp UAS registers as the callee so the switch can route calls to it."""
    injection = write_users(work / "callee.csv", user_rows([(CALLEE, DOMAIN, "pw" + CALLEE)]))
    result = run_sipp(
        "register.xml",
        target,
        calls=1,
        rate=1,
        injection=injection,
        local_port=uas_port,
        timeout=15,
        transport=transport,
        local_ip=local_ip,
        keys={"c1": "1", "c2": "2", "expires": "3600"},
    )
    if not result.ok:
        raise RuntimeError(
            f"the UAS could not register as {CALLEE} at {target}: {result.errors[-500:]}"
        )


# --- our switch ---------------------------------------------------------------------------


def trunk_toml() -> list[str]:
    """Calls from loopback come in on a carrier trunk (IP authentication, no digest) to a DID
    that rings the callee: the lightest call path the switch has."""
    return [
        "[tenants.routing]",
        f'dids = [{{ number = "{DID}", treatment = "user", destination = "{CALLEE}" }}]',
        "[[tenants.trunks]]",
        'name = "carrier"',
        'inbound_addresses = ["127.0.0.0/8"]',
        "[[tenants.trunks.gateways]]",
        'host = "127.0.0.1"',
        "port = 5060",  # never dialled: every call is inbound to a DID
    ]


def full_path_toml(now: dt.datetime | None = None) -> list[str]:
    """A tenant routing as an operator's would: DIDs, a block list, the callee's answering
    rules evaluated top-down (a past closure first, then an always-open frame with sim-ring
    and forwarding on busy), and a default rule."""
    now = now or dt.datetime.now(dt.UTC)
    closed_start = (now - dt.timedelta(days=30)).replace(tzinfo=None, microsecond=0)
    closed_end = closed_start + dt.timedelta(days=1)
    dids = ", ".join(
        f'{{ number = "+1415555{n:04d}", treatment = "user", destination = "{CALLEE}" }}'
        for n in range(100, 120)
    )
    return [
        "[tenants.routing]",
        'default_region = "US"',
        f"dids = [{dids}]",
        "[tenants.routing.block]",
        'blocked = ["+1900*", "+1976*", "+12125550000"]',
        "[[tenants.routing.time_frames]]",
        'name = "Closed for stocktaking"',
        'timezone = "UTC"',
        "[tenants.routing.time_frames.when]",
        'kind = "specific_dates"',
        f"periods = [{{ start = {closed_start.isoformat()}, end = {closed_end.isoformat()} }}]",
        "[[tenants.routing.time_frames]]",
        'name = "Open"',
        'timezone = "America/New_York"',
        "[tenants.routing.time_frames.when]",
        'kind = "always"',
        f"[tenants.routing.users.{CALLEE}]",
        'name = "Callee"',
        "ring_time = 30",
        f"[[tenants.routing.users.{CALLEE}.rules]]",
        'time_frame = "Closed for stocktaking"',
        f'forward.always = {{ kind = "voicemail", target = "{CALLEE}" }}',
        f"[[tenants.routing.users.{CALLEE}.rules]]",
        'time_frame = "Open"',
        f'forward.when_busy = {{ kind = "voicemail", target = "{CALLEE}" }}',
        f"[tenants.routing.users.{CALLEE}.rules.simring]",
        "ring_all_devices = true",
        f"[tenants.routing.users.{CALLEE}.default_rule]",
        f'forward.always = {{ kind = "voicemail", target = "{CALLEE}" }}',
    ]


def start_softswitch(
    work: Path,
    users: Sequence[PhoneUser],
    extra_toml: Sequence[str] = (),
    *,
    uas_port: int | None = None,
    scenario: Path = AUTH_SCENARIO,
    service: str = CALLEE,
    notes: Sequence[str] = (),
    transport: str = "udp",
    anchor: str = "never",
) -> Running:
    """Our switch as its own process with a generated configuration; with `uas_port`, the
    SIPp UAS listening there (over `transport`) registers as the callee. ``anchor``:
    "always" puts the switch's media engine in every call (two RTP endpoints per call),
    "never" passes SDP through as the proxy and Sippy do."""
    config = SwitchConfigFile(
        work, users=users, domain=DOMAIN, port=free_port(), log_level="WARNING", media_anchor=anchor
    )
    path = config.write()
    if extra_toml:
        path.write_text(path.read_text() + "\n".join(extra_toml) + "\n")
    switch = SwitchProcess(path, port=config.port).start()
    target = f"127.0.0.1:{config.port}"
    try:
        if uas_port is not None:
            register_callee(target, uas_port, work, transport=transport)
    except Exception:
        switch.stop()
        raise
    return Running(
        "softswitch",
        target,
        switch.pid,
        switch.stop,
        scenario=scenario,
        service=service,
        config=path,
        notes=list(notes),
    )


# --- reference systems --------------------------------------------------------------------


def _ha1(user: PhoneUser, realm: str) -> str:
    return hashlib.md5(f"{user.extension}:{realm}:{user.password}".encode()).hexdigest()


def kamailio_registrar(
    work: Path, users: Sequence[PhoneUser], cores: Sequence[int] = (0,)
) -> Running:
    """Kamailio with bench/kamailio/registrar.cfg: each user's HA1 in an htable loaded once
    at start from a db_text table, so the registrar reads no database per request."""
    db = work / "dbtext"
    db.mkdir(parents=True, exist_ok=True)
    # db_text tables: a typed header line, then `:`-separated rows; htable checks the
    # table's version in the `version` table. key_type 0: a plain key; value_type 0: a string.
    (db / "version").write_text("table_name(string) table_version(int) \nhtable:2\n")
    rows = [f"{i}:{u.extension}:0:0:{_ha1(u, DOMAIN)}:0" for i, u in enumerate(users, 1)]
    (db / "htable").write_text(
        "id(int,auto) key_name(string) key_type(int) value_type(int) key_value(string) "
        "expires(int) \n" + "\n".join(rows) + "\n"
    )
    template = (HERE / "kamailio" / "registrar.cfg").read_text()
    kamailio = Kamailio(
        work, 0, config_text=template.replace("__DB_URL__", f"text://{db}"), cores=cores
    )
    return Running(
        "kamailio",
        kamailio.target,
        kamailio.pid,
        kamailio.stop,
        notes=[
            f"registrar: HA1 in an htable loaded at start, usrloc in memory (db_mode 0), "
            f"TLSF allocator, {_workers(kamailio)}"
        ],
    )


def kamailio_proxy(work: Path, uas_port: int, cores: Sequence[int] = (0,)) -> Running:
    kamailio = Kamailio(work, uas_port, cores=cores)
    return Running(
        "kamailio",
        kamailio.target,
        kamailio.pid,
        kamailio.stop,
        notes=[
            "stateful proxy (tm), no authentication, no accounting, TLSF allocator, "
            + _workers(kamailio)
        ],
    )


def _workers(kamailio: Kamailio) -> str:
    cores = ",".join(map(str, kamailio.cores)) if kamailio.cores else "any"
    return f"{kamailio.children} worker(s) pinned to core(s) {cores}"


def sippy_b2bua(work: Path, uas_port: int) -> Running:
    sippy = Sippy(work, uas_port)
    return Running(
        "sippy",
        sippy.target,
        sippy.pid,
        sippy.stop,
        notes=["b2bua_simple: no authentication, no CDRs"],
    )


def references_missing() -> dict[str, str]:
    """Reference systems that cannot run here, with what to install."""
    missing: dict[str, str] = {}
    if not (shutil.which("kamailio") or Path("/usr/sbin/kamailio").exists()):
        missing["kamailio"] = "Debian package kamailio is not installed (make bench installs it)"
    if not (Path(sys.executable).parent / "b2bua_simple").exists():
        missing["sippy"] = "PyPI sippy is not installed (pip install '.[bench]')"
    return missing


def remote(
    target: str,
    *,
    scenario: Path,
    service: str,
    uas_port: int | None,
    work: Path,
    transport: str,
    local_ip: str,
) -> Running:
    """A switch on another machine: nothing to start or stop, nothing of its process to read."""
    work.mkdir(parents=True, exist_ok=True)
    if uas_port is not None:
        register_callee(target, uas_port, work, transport=transport, local_ip=local_ip)
    return Running(
        "softswitch",
        target,
        0,
        lambda: None,
        scenario=scenario,
        service=service,
        notes=[f"remote switch at {target}: its CPU and memory are not measured"],
    )
