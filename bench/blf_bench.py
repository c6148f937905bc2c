"""Busy-lamp (BLF) bench: many dialog-package subscriptions held while lamps change.

Watchers (users of the tenant, each holding ``per-watcher`` subscriptions, as a desk
phone's sidecar holds its keys) subscribe to the ``dialog`` package (RFC 4235) of the
watched extensions through a small asyncio UDP client of our own (SUBSCRIBE with digest,
200 to every NOTIFY). Then SIPp callers call the watched extensions at ``rate`` calls/s
(a SIPp UAS registered as every one of them answers; callers hang up after ``hold_ms``):
each call turns the callee's lamp early, confirmed and terminated, a NOTIFY to each of
its watchers every time. Reported: NOTIFYs per second received while the calls run (each
second, and the sustained mean), NOTIFYs expected against received, the switch's RSS
growth per subscription (with the SUBSCRIBE transactions still kept for Timer J) and its
CPU.

    .venv/bin/python -m bench.blf_bench                      # 10,000 subscriptions, 100 calls/s
    .venv/bin/python -m bench.blf_bench --subscriptions 2000 --rate 20 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.call_bench import Callee, tree_cpu_seconds
from peers.sipp import SippResult, run_sipp, user_rows, write_users
from peers.switchproc import PhoneUser, SwitchConfigFile, SwitchProcess, free_port
from softswitch.sip.auth import build_authorization

HERE = Path(__file__).resolve().parent
DOMAIN = "pbx.test"
WATCHER_BASE, WATCHED_BASE, CALLER_BASE = 20000, 30000, 40000


def rss_kib(pid: int) -> int:
    """The resident set of one process (VmRSS), KiB."""
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _header(lines: list[str], name: str) -> str:
    prefix = name.lower() + ":"
    for line in lines:
        if line.lower().startswith(prefix):
            return line.split(":", 1)[1].strip()
    return ""


@dataclass
class _Pending:
    """A SUBSCRIBE waiting for its answer (resent until then)."""

    user: str
    target: str
    call_id: str
    cseq: int
    text: bytes
    done: asyncio.Future[int]
    sent: int = 0


@dataclass
class Watchers(asyncio.DatagramProtocol):
    """The watchers' phones: one UDP socket, every subscription a dialog of its own."""

    switch: tuple[str, int]
    port: int
    notifies: list[float] = field(default_factory=list)  # arrival times (monotonic)
    pending: dict[str, _Pending] = field(default_factory=dict)  # Call-ID -> SUBSCRIBE
    refused: dict[int, int] = field(default_factory=dict)  # final status -> count
    transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        text = data.decode(errors="replace")
        head = text.split("\r\n\r\n", 1)[0]
        lines = head.split("\r\n")
        if lines[0].startswith("NOTIFY "):
            self.notifies.append(time.monotonic())
            self._ok(lines, addr)
        elif lines[0].startswith("SIP/2.0 "):
            self._response(lines)

    def _ok(self, lines: list[str], addr: tuple[str, int]) -> None:
        keep = ("via", "from", "to", "call-id", "cseq")
        copied = [line for line in lines[1:] if line.split(":", 1)[0].strip().lower() in keep]
        reply = "SIP/2.0 200 OK\r\n" + "\r\n".join(copied) + "\r\nContent-Length: 0\r\n\r\n"
        self.transport.sendto(reply.encode(), addr)

    def _response(self, lines: list[str]) -> None:
        status = int(lines[0].split()[1])
        pending = self.pending.get(_header(lines, "Call-ID"))
        if pending is None or status < 200 or pending.done.done():
            return
        cseq = int(_header(lines, "CSeq").split()[0] or 0)
        if cseq != pending.cseq:
            return
        if status == 407 and pending.cseq == 1:
            user = pending.user
            auth = build_authorization(
                _header(lines, "Proxy-Authenticate"),
                "SUBSCRIBE",
                f"sip:{pending.target}@{DOMAIN}",
                user,
                f"pw{user}",
            )
            pending.cseq = 2
            pending.text = self._subscribe(pending, auth)
            pending.sent = 0
            self._send(pending)
            return
        self.pending.pop(pending.call_id, None)
        pending.done.set_result(status)

    def _subscribe(self, pending: _Pending, auth: str = "") -> bytes:
        host, port = "127.0.0.1", self.port
        lines = [
            f"SUBSCRIBE sip:{pending.target}@{DOMAIN} SIP/2.0",
            f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bK{pending.call_id}-{pending.cseq};rport",
            f"From: <sip:{pending.user}@{DOMAIN}>;tag={pending.call_id[:12]}",
            f"To: <sip:{pending.target}@{DOMAIN}>",
            f"Call-ID: {pending.call_id}",
            f"CSeq: {pending.cseq} SUBSCRIBE",
            f"Contact: <sip:{pending.user}@{host}:{port}>",
            "Event: dialog",
            "Accept: application/dialog-info+xml",
            "Expires: 3600",
            "Max-Forwards: 70",
        ]
        if auth:
            lines.append(f"Proxy-Authorization: {auth}")
        return ("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode()

    def _send(self, pending: _Pending) -> None:
        pending.sent += 1
        self.transport.sendto(pending.text, self.switch)

    async def subscribe(self, user: str, target: str, serial: int) -> int:
        """One subscription: its final status (0: no answer after five tries)."""
        loop = asyncio.get_running_loop()
        call_id = f"blf{serial:07d}x{random.getrandbits(40):010x}"
        pending = _Pending(user, target, call_id, 1, b"", loop.create_future())
        pending.text = self._subscribe(pending)
        self.pending[call_id] = pending
        for _ in range(5):
            self._send(pending)
            try:
                return await asyncio.wait_for(asyncio.shield(pending.done), 2.0)
            except TimeoutError:
                continue
        self.pending.pop(call_id, None)
        return 0


async def subscribe_all(
    watchers: Watchers, plan: list[tuple[str, str]], window: int
) -> dict[int, int]:
    """Every (watcher, watched) subscription, ``window`` at a time; statuses counted."""
    outcomes: dict[int, int] = {}
    limit = asyncio.Semaphore(window)

    async def one(serial: int, user: str, target: str) -> None:
        async with limit:
            status = await watchers.subscribe(user, target, serial)
        outcomes[status] = outcomes.get(status, 0) + 1

    await asyncio.gather(*(one(n, u, t) for n, (u, t) in enumerate(plan)))
    return outcomes


def call_scenario(work: Path) -> Path:
    """The bench's authenticated caller with the callee from field 4 of its injection."""
    text = (HERE / "scenarios" / "call_uac_auth.xml").read_text()
    path = work / "blf_call_uac.xml"
    path.write_text(text.replace("[service]", "[field4]").replace("callee from -s", "callee"))
    return path


def run(args: argparse.Namespace) -> dict[str, object]:
    work = Path(tempfile.mkdtemp(prefix="blf-bench-"))
    per_watcher = min(args.per_watcher, args.watched)
    watcher_count = -(-args.subscriptions // per_watcher)
    watchers_users = [
        PhoneUser(str(WATCHER_BASE + i), f"pw{WATCHER_BASE + i}") for i in range(watcher_count)
    ]
    watched = [str(WATCHED_BASE + i) for i in range(args.watched)]
    callers = [str(CALLER_BASE + i) for i in range(args.callers)]
    users = [
        *watchers_users,
        *(PhoneUser(e, f"pw{e}") for e in watched),
        *(PhoneUser(c, f"pw{c}") for c in callers),
    ]
    config = SwitchConfigFile(
        work / "switch",
        users=users,
        log_level="WARNING",
        media_anchor="never",  # lamps follow signalling; no RTP to relay
        extra_toml=(
            "[subscriptions]\n"
            f"per_subscriber = {per_watcher}\n"
            f"total = {max(100_000, args.subscriptions * 2)}\n"
            "max_expires = 3600\n"
        ),
    )
    plan = [
        (
            watchers_users[n // per_watcher].extension,
            watched[(n * 7 + n // per_watcher) % len(watched)],
        )
        for n in range(args.subscriptions)
    ]
    with SwitchProcess(config.write(), port=config.port) as switch:
        uas_port = free_port()
        # The UAS's port is every watched extension's contact: registered before it binds.
        registered = run_sipp(
            "register.xml",
            f"127.0.0.1:{switch.port}",
            calls=len(watched),
            rate=500,
            injection=write_users(
                work / "callees.csv", user_rows([(e, DOMAIN, f"pw{e}") for e in watched])
            ),
            local_port=uas_port,
            timeout=120,
            keys={"c1": "1", "c2": "2", "expires": "3600"},
        )
        assert registered.ok, registered.errors[-500:]
        callee = Callee(f"127.0.0.1:{switch.port}", uas_port, work / "uas")
        try:
            return asyncio.run(_measure(args, switch, plan, watched, callers, work))
        finally:
            callee.stop()


async def _measure(
    args: argparse.Namespace,
    switch: SwitchProcess,
    plan: list[tuple[str, str]],
    watched: list[str],
    callers: list[str],
    work: Path,
) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    port = free_port()
    _, watchers = await loop.create_datagram_endpoint(
        lambda: Watchers(("127.0.0.1", switch.port), port), local_addr=("127.0.0.1", port)
    )
    try:
        await asyncio.sleep(1.0)
        before = rss_kib(switch.pid)
        started = time.monotonic()
        outcomes = await subscribe_all(watchers, plan, args.window)
        subscribe_s = time.monotonic() - started
        await asyncio.sleep(2.0)  # initial NOTIFYs answered, the switch settles
        held = outcomes.get(200, 0) + outcomes.get(202, 0)
        after = rss_kib(switch.pid)
        # Each SUBSCRIBE's two server transactions (the 407 and the 200) are kept for Timer J
        # (64*T1 = 32 s over UDP): this RSS growth counts them too, and CPython keeps the
        # memory they free for reuse, so it does not drop later. The subscriptions alone
        # hold about a fifth of it (tracemalloc, see the README's BLF bench).
        initial = len(watchers.notifies)
        # Lamps change: SIPp calls the watched extensions at the offered rate.
        calls = int(args.rate * args.seconds)
        rows = [
            (
                c,
                DOMAIN,
                f"pw{c}",
                f"[authentication username={c} password=pw{c}]",
                random.choice(watched),
            )
            for c in (callers[n % len(callers)] for n in range(calls))
        ]
        injection = write_users(work / "callers.csv", rows)
        result: list[SippResult] = []
        thread = threading.Thread(
            target=lambda: result.append(
                run_sipp(
                    call_scenario(work),
                    f"127.0.0.1:{switch.port}",
                    calls=calls,
                    rate=args.rate,
                    injection=injection,
                    extra=["-d", str(args.hold_ms)],
                    limit=int(args.rate * 10),
                    timeout=args.seconds + 120,
                )
            ),
            daemon=True,
        )
        cpu0 = tree_cpu_seconds(switch.pid)
        calls_started = time.monotonic()
        thread.start()
        while thread.is_alive():
            await asyncio.sleep(0.2)
        calls_s = time.monotonic() - calls_started
        await asyncio.sleep(3.0)  # the last NOTIFYs arrive
        cpu = tree_cpu_seconds(switch.pid) - cpu0
        sipp = result[0] if result else None
    finally:
        watchers.transport.close()
    during = [t - calls_started for t in watchers.notifies[initial:]]
    per_second = [0] * (int(calls_s) + 4)
    for t in during:
        if 0 <= t < len(per_second):
            per_second[int(t)] += 1
    steady = per_second[2 : max(3, int(calls_s) - 1)]  # without ramp-up and drain
    watchers_per_lamp = statistics.mean(sum(1 for _, t in plan if t == w) for w in watched)
    return {
        "subscriptions_offered": len(plan),
        "subscriptions_held": held,
        "subscribe_outcomes": {str(k): v for k, v in sorted(outcomes.items())},
        "subscribe_seconds": round(subscribe_s, 1),
        "subscribes_per_second": round(len(plan) / subscribe_s, 1),
        "rss_before_kib": before,
        "rss_after_kib": after,
        "bytes_per_subscription": round((after - before) * 1024 / max(held, 1)),
        "calls_offered": calls,
        "calls_ok": sipp.successful if sipp else 0,
        "calls_failed": sipp.failed if sipp else 0,
        "calls_errors_tail": (sipp.errors[-600:] if sipp else "no SIPp result"),
        "offered_rate": args.rate,
        "calls_seconds": round(calls_s, 1),
        "watchers_per_lamp": round(watchers_per_lamp, 2),
        # Three lamp changes a call (early, confirmed, terminated); changes within the
        # switch's LAMP_WINDOW go out as one NOTIFY, so fewer may be received.
        "notifies_expected": round(calls * 3 * watchers_per_lamp),
        "notifies_received": len(during),
        "notifies_per_call_ok": round(len(during) / max(sipp.successful if sipp else 0, 1), 1),
        "notifies_per_second_sustained": round(statistics.mean(steady), 1) if steady else 0.0,
        "notifies_per_second_max": max(per_second) if per_second else 0,
        "notifies_per_second": per_second,
        "switch_cpu_percent": round(100 * cpu / (calls_s + 3.0), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscriptions", type=int, default=10_000)
    parser.add_argument("--per-watcher", type=int, default=100, help="BLF keys per watcher")
    parser.add_argument("--watched", type=int, default=1_000, help="extensions watched")
    parser.add_argument("--callers", type=int, default=50)
    parser.add_argument("--rate", type=float, default=100.0, help="calls per second")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long calls are placed")
    parser.add_argument("--hold-ms", type=int, default=1000)
    parser.add_argument("--window", type=int, default=200, help="SUBSCRIBEs in flight")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    figures = run(args)
    text = json.dumps(figures, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
