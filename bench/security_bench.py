"""What an attacker costs the switch: CPU per request from a banned source, from a scanner
and over the flood limit, against an authenticated registration (401 + authorised
REGISTER + 200), all through the switch's own inbound path (``Switch._on_message``) in one
process, without sockets (the kernel's share is the same for every kind).

    python -m bench.security_bench [--seconds 2]

Prints microseconds of CPU per request and requests per second of one core; figures are
for the operator, never asserted. A second switch with the default ``[security]`` settings
measures a password guess (401, then a REGISTER with a wrong password) from a source not
yet banned and from one already banned, and from those figures the REGISTER/s of honest
phones one core still serves while 5,000 guesses a second arrive from other sources.
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
                # The 401 waits in the driver's outbox for the loop's next turn.
                challenge = next(
                    line.split(": ", 1)[1]
                    for line in switch.driver._outbox[-1][0].decode().split("\r\n")
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
    rows += await _guessing(seconds)
    width = max(len(r[0]) for r in rows)
    print(f"{'what':<{width}}  {'CPU us':>8}  {'per s':>9}")
    for label, micros, _ in rows:
        print(f"{label:<{width}}  {micros:8.2f}  {1e6 / micros:9.0f}")
    print(f"a banned source costs {rows[1][1] / rows[0][1]:.1%} of an authenticated registration")
    registration, fresh, banned_guess = rows[0][1], rows[-2][1], rows[-1][1]
    for label, guess in (("not yet banned", fresh), ("banned", banned_guess)):
        left = 1e6 - GUESSES_PER_SECOND * guess  # CPU us a second left for honest phones
        honest = max(0.0, left) / registration
        print(
            f"{GUESSES_PER_SECOND} guesses/s from sources {label}: one core still serves "
            f"{honest:.0f} honest registrations/s"
        )


GUESSES_PER_SECOND = 5000


async def _guessing(seconds: float) -> list[tuple[str, float, int]]:
    """CPU per password guess from a source not yet banned (a new address every ten
    guesses, the default ban threshold) and from a banned one, on a switch with the default
    [security] settings."""
    with tempfile.TemporaryDirectory() as tmp:
        config = SwitchConfigFile(Path(tmp), users=numbered_users(1), security_toml="")
        switch = Switch(load_config(config.write()))
        await switch.start()
        switch.send_message = lambda data, dest: None
        outbox = switch.driver._outbox  # answers wait there for the loop's next turn
        max_failures = switch.config.security.max_failures
        try:
            counter = iter(range(1, 1 << 30))

            def guess(source: Address) -> None:
                call_id = uuid.uuid4().hex
                waiting = len(outbox)
                switch._on_message(_register(source, call_id, 1), source)
                if len(outbox) == waiting:
                    return  # the source is banned: its request was dropped unanswered
                challenge = next(
                    line.split(": ", 1)[1]
                    for line in outbox[-1][0].decode().split("\r\n")
                    if line.startswith("WWW-Authenticate:")
                )
                auth = build_authorization(challenge, "REGISTER", f"sip:{DOMAIN}", USER, "guess")
                second = _register(source, call_id, 2, f"Authorization: {auth}\r\n")
                switch._on_message(second, source)

            def fresh_step() -> None:  # a new address every max_failures guesses
                n = next(counter) // max_failures
                guess(Address("UDP", f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}", 5060))

            banned = Address("UDP", "192.0.2.99", 5060)
            switch.guard.ban(banned.host, "bench")

            def banned_step() -> None:
                guess(banned)

            rows = []
            for label, step in (
                ("guess from a source not yet banned (401 + wrong digest)", fresh_step),
                ("guess from a banned source (dropped)", banned_step),
            ):
                micros, done = await _measure(seconds, step)
                rows.append((label, micros, done))
            assert switch.guard.counters["bans"] > 0
        finally:
            await switch.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per measurement")
    args = parser.parse_args()
    asyncio.run(run(args.seconds))


if __name__ == "__main__":
    main()
