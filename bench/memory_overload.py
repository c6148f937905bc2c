"""What an overload leaves in memory: a burst of new INVITEs far beyond what the switch
admits, fed through its inbound path (``Switch._on_message``) in one process without
sockets, as bench/security_bench.py does. Prints the live transactions, the Python heap
(tracemalloc, top allocation sites) and the process RSS before, right after the burst and
after the transactions' timers ran out; figures are for the operator, never asserted.

    python -m bench.memory_overload [--invites 20000] [--after 35] [--trace]

``--trace`` adds the tracemalloc heap and its top allocation sites (slower by half).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path

from config import load_config
from peers.switchproc import SwitchConfigFile, numbered_users
from softswitch.server import Switch
from softswitch.sip.address import Address

DOMAIN = "pbx.test"


def invite(source: Address, n: int) -> bytes:
    """A new INVITE (a new call) from ``source``; its offer is plain PCMU."""
    body = (
        "v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\n"
        "m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    )
    return (
        f"INVITE sip:10001@{DOMAIN} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {source.host}:{source.port};branch=z9hG4bK{uuid.uuid4().hex};rport\r\n"
        f"Max-Forwards: 70\r\nFrom: <sip:10000@{DOMAIN}>;tag=f{n}\r\n"
        f"To: <sip:10001@{DOMAIN}>\r\nCall-ID: {uuid.uuid4().hex}\r\nCSeq: 1 INVITE\r\n"
        f"Contact: <sip:10000@{source.host}:{source.port}>\r\n"
        f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n{body}"
    ).encode()


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def overload_switch(directory: Path, overload_toml: str = "max_transactions = 1000") -> Switch:
    """A switch (not started) whose ``[overload]`` section is ``overload_toml``: by default
    it sheds new INVITEs past 1,000 live transactions (or a queueing delay)."""
    config = SwitchConfigFile(
        directory,
        users=numbered_users(2),
        media_anchor="never",
        extra_toml=f"[overload]\n{overload_toml}\n",
        security_toml='allow = ["127.0.0.0/8"]',
    )
    return Switch(load_config(config.write()))


async def burst(switch: Switch, invites: int) -> None:
    """``invites`` new INVITEs from 100 sources, the loop turning every 100 (it sends)."""
    for n in range(invites):
        source = Address("UDP", "127.0.0.2", 20000 + n % 100)
        switch._on_message(invite(source, n), source)
        if n % 100 == 99:
            await asyncio.sleep(0)


def _line(label: str, switch: Switch) -> None:
    heap, _ = tracemalloc.get_traced_memory()
    print(
        f"{label:<28} transactions {len(switch.transactions):>7}  "
        f"heap {heap / 2**20:8.1f} MiB  rss {rss_mib():8.1f} MiB"
    )


async def _peak_rss(samples: list[float]) -> None:
    while True:
        samples.append(rss_mib())
        await asyncio.sleep(0.2)


async def run(invites: int, after: float, trace: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        switch = overload_switch(Path(tmp))
        await switch.start()
        switch.send_message = lambda data, dest: None
        try:
            if trace:
                tracemalloc.start(8)
            _line("before", switch)
            before = tracemalloc.take_snapshot() if trace else None
            samples: list[float] = []
            sampler = asyncio.create_task(_peak_rss(samples))
            started = time.monotonic()
            await burst(switch, invites)
            print(f"burst of {invites} INVITEs in {time.monotonic() - started:.1f} s")
            _line("after the burst", switch)
            print(f"peak rss during the burst {max(samples, default=0.0):8.1f} MiB")
            sampler.cancel()
            peak = tracemalloc.take_snapshot() if trace else None
            if before is not None and peak is not None:
                print("top allocation sites kept by the burst:")
            for stat in peak.compare_to(before, "filename")[:8] if before and peak else []:
                print(
                    f"  {stat.size_diff / 2**20:8.1f} MiB  {stat.count_diff:>8}  {stat.traceback}"
                )
            await asyncio.sleep(after)
            gc.collect()
            _line(f"{after:.0f} s later", switch)
            print("shed:", switch.overload.counters)
        finally:
            tracemalloc.stop()
            await switch.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--invites", type=int, default=20_000)
    parser.add_argument("--after", type=float, default=35.0, help="seconds to wait after")
    parser.add_argument("--trace", action="store_true", help="tracemalloc heap and sites")
    args = parser.parse_args()
    asyncio.run(run(args.invites, args.after, args.trace))


if __name__ == "__main__":
    main()
