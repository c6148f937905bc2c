"""What an attacker costs the switch: CPU per request from a banned source, from a scanner
and over the flood limit, against an authenticated registration (401 + authorised
REGISTER + 200), all through the switch's own inbound path (``Switch._on_message``) in one
process, without sockets (the kernel's share is the same for every kind).

    python -m bench.security_bench [--seconds 2]

Prints microseconds of CPU per request and requests per second of one core; figures are
for the operator, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from config import load_config
from peers.switchproc import SwitchConfigFile, numbered_users
from softswitch.server import Switch
from softswitch.sip.address import Address
from softswitch.sip.auth import build_authorization

DOMAIN = "pbx.test"
USER = "10000"
PASSWORD = "pw10000"


def _register(source: Address, call_id: str, cseq: int, extra: str = "", agent: str = "") -> bytes:
    return (
        f"REGISTER sip:{DOMAIN} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {source.host}:{source.port};branch=z9hG4bK{uuid.uuid4().hex};rport\r\n"
        f"Max-Forwards: 70\r\nFrom: <sip:{USER}@{DOMAIN}>;tag=t{cseq}\r\n"
        f"To: <sip:{USER}@{DOMAIN}>\r\nCall-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\n"
        f"Contact: <sip:{USER}@{source.host}:{source.port}>\r\nExpires: 600\r\n"
        f"User-Agent: {agent or 'Yealink SIP-T46S 66.86.0.15'}\r\n{extra}Content-Length: 0\r\n\r\n"
    ).encode()


async def _measure(seconds: float, step: Callable[[], None]) -> tuple[float, int]:
    """CPU microseconds per step, steps done; the loop turns every 50 steps (it sends)."""
    done = 0
    cpu = time.process_time()
    wall_end = time.monotonic() + seconds
    while time.monotonic() < wall_end:
        for _ in range(50):
            step()
        done += 50
        await asyncio.sleep(0)
    return (time.process_time() - cpu) / done * 1e6, done


async def run(seconds: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = SwitchConfigFile(
            Path(tmp),
            users=numbered_users(1),
            security_toml=(
                # the phone is allow-listed; everyone else gets 1 request/s (never banned)
                'allow = ["127.0.0.2/32"]\nrate = 1\nburst = 1\nflood_ban_after = 0'
            ),
        )
        switch = Switch(load_config(config.write()))
        await switch.start()
        sent: list[bytes] = []
        switch.send_message = lambda data, dest: sent.append(data)
        try:
            phone = Address("UDP", "127.0.0.2", 40002)
            banned = Address("UDP", "127.0.0.9", 40009)
            switch.guard.ban(banned.host, "bench")

            def registration() -> None:
                call_id = uuid.uuid4().hex
                switch._on_message(_register(phone, call_id, 1), phone)
                # The 401 waits in the outbox for the loop's next turn.
                challenge = next(
                    line.split(": ", 1)[1]
                    for line in switch._outbox[-1][0].decode().split("\r\n")
                    if line.startswith("WWW-Authenticate:")
                )
                auth = build_authorization(challenge, "REGISTER", f"sip:{DOMAIN}", USER, PASSWORD)
                switch._on_message(
                    _register(phone, call_id, 2, f"Authorization: {auth}\r\n"), phone
                )

            banned_request = _register(banned, "b", 1)
            scanner_request = _register(phone, "s", 1, agent="friendly-scanner")

            def banned_step() -> None:
                switch._on_message(banned_request, banned)

            scanners = iter(range(1, 1 << 30))

            def scanner_step() -> None:  # a new scanner address every time (not yet banned)
                n = next(scanners)
                source = Address("UDP", f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}", 5060)
                switch._on_message(scanner_request, source)

            flooder = Address("UDP", "127.0.0.3", 40003)
            flood_request = _register(flooder, "f", 1)

            def flood_step() -> None:
                switch._on_message(flood_request, flooder)

            rows = []
            for label, step in (
                ("authenticated registration (401 + REGISTER + 200)", registration),
                ("request from a banned source (dropped)", banned_step),
                ("request over the per-source rate (dropped)", flood_step),
                ("request from a new scanner (dropped, banned, logged)", scanner_step),
            ):
                micros, done = await _measure(seconds, step)
                rows.append((label, micros, done))
            assert switch.registrar is not None and switch.registrar.registered > 0
        finally:
            await switch.stop()
    width = max(len(r[0]) for r in rows)
    print(f"{'what':<{width}}  {'CPU us':>8}  {'per s':>9}")
    for label, micros, _ in rows:
        print(f"{label:<{width}}  {micros:8.2f}  {1e6 / micros:9.0f}")
    print(f"a banned source costs {rows[1][1] / rows[0][1]:.1%} of an authenticated registration")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per measurement")
    args = parser.parse_args()
    asyncio.run(run(args.seconds))


if __name__ == "__main__":
    main()
