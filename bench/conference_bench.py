"""Conference mixing with real RTP I/O: N participants in rooms of 3-50 on one engine.

Run: ``.venv/bin/python -m bench.conference_bench [--participants 250 500 750 1000]
[--seconds 60] [--generators 2] [--pin] [--all]`` (``--seconds 10`` for a quick look).

Processes: one engine (MediaEngine on uvloop, the process under test) whose endpoints
all sit in mix rooms (sizes 3-50, fixed seed), and ``generators`` load processes of our
own RTP phones.  Every phone sends one 160-byte PCMU frame of a tone every 20 ms (phases
spread over the frame) and receives the mix the engine sends back.

A step passes with zero late engine ticks (a tick starting > 5 ms after its deadline)
during the measured window and zero loss both ways: inbound, every frame the phones sent
reached its room in time (engine counters: not lost, not dropped as late by the jitter
buffer); outbound, the mix stream each phone receives has no sequence gap.  The ramp stops
at the first failing step unless ``--all``.  Figures on a shared machine include the
generators competing for the same cores.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import random
import struct
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection

import numpy as np

from bench.media_bench import _offer, _raise_fd_limit, split_cpus
from bench.rtpload import StealMeter, open_phone_socket, run_phones

_RTP = struct.Struct("!BBHII")


def room_sizes(participants: int, seed: int = 1) -> list[int]:
    """Room sizes of 3..50 adding up to ``participants`` (a last room may be smaller)."""
    rng = random.Random(seed)
    sizes: list[int] = []
    left = participants
    while left > 0:
        size = min(rng.randint(3, 50), left)
        sizes.append(size)
        left -= size
    return sizes


# ---- engine process ---------------------------------------------------------------------


def engine_main(conn: Connection, port_min: int, poll: float, pin: bool = False) -> None:
    """Put the phones asked for into rooms, then report on request."""
    _raise_fd_limit()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    if pin:
        os.sched_setaffinity(0, split_cpus()[0])
    asyncio.run(_engine(conn, port_min, poll))


async def _engine(conn: Connection, port_min: int, poll: float) -> None:
    from media.engine import EngineSettings, MediaEngine

    loop = asyncio.get_running_loop()
    settings = EngineSettings(
        port_min=port_min, port_max=min(65535, port_min + 9999), poll_interval=poll
    )
    engine = MediaEngine(settings)
    await engine.start()
    endpoints = []
    marks: dict[str, tuple[float, float, int]] = {}
    max_tick_ms = 0.0
    while True:
        cmd, arg = await loop.run_in_executor(None, conn.recv)
        if cmd == "rooms":
            phone_ports, sizes = arg  # one (generator) port per participant
            ports = iter(phone_ports)
            engine_ports = []
            for size in sizes:
                room = engine.mix_room()
                for _ in range(size):
                    ep = engine.allocate(_offer(next(ports), True))
                    room.join(ep)
                    endpoints.append(ep)
                    engine_ports.append(ep.port)
            conn.send(engine_ports)
        elif cmd == "mark":
            clock = engine.clock_stats
            if arg == "start":
                clock.max_duration = 0.0  # the window's longest tick, not the set-up's
            marks[arg] = (time.monotonic(), time.process_time(), clock.late_ticks)
            max_tick_ms = clock.max_duration * 1000
            conn.send(None)
        elif cmd == "report":
            (w0, c0, l0), (w1, c1, l1) = marks["start"], marks["end"]
            stats = [ep.stats() for ep in endpoints]
            s = engine.stats()
            conn.send(
                {
                    "cpu": (c1 - c0) / (w1 - w0),
                    "late_ticks": l1 - l0,
                    "max_tick_ms": max_tick_ms,
                    "received": sum(st.packets_received for st in stats),
                    "late_in": sum(st.late_packets for st in stats),
                    "relayed": s.relayed_directions,
                }
            )
        elif cmd == "stop":
            await engine.close()
            conn.send(None)
            return


# ---- load generator process ------------------------------------------------------------


def _tone_payloads(count: int) -> list[bytes]:
    """One PCMU frame of a different tone per phone (a whole number of cycles per frame)."""
    from media import g711

    t = np.arange(160) / 8000
    out = []
    for k in range(count):
        freq = 50.0 * (4 + k % 40)  # 200..2150 Hz, periodic within 20 ms
        pcm = (3000 * np.sin(2 * np.pi * freq * t)).astype(np.int16)
        out.append(g711.encode(pcm, g711.PT_PCMU).tobytes())
    return out


def generator_main(conn: Connection, phones: int, first: int) -> None:
    """``phones`` phones on one UDP socket: send paced tones, count the mix received.

    The engine's stream to each phone is told apart by its SSRC; loss is a gap in its
    sequence numbers during the measured window.
    """
    _raise_fd_limit()
    sock = open_phone_socket()
    conn.send([sock.getsockname()[1]] * phones)
    targets = [("127.0.0.1", p) for p in conn.recv()]
    start_at, warmup, seconds = conn.recv()
    payloads = _tone_payloads(phones)
    last_seq: dict[int, int] = {}  # engine stream (SSRC) -> last sequence number seen
    counts = {"received": 0, "gaps": 0}
    measure_from, stop_at = start_at + warmup, start_at + warmup + seconds

    def packet(k: int, number: int) -> bytes:
        head = _RTP.pack(0x80, 0, number & 0xFFFF, (number * 160) & 0xFFFFFFFF, 0x1000 + first + k)
        return head + payloads[k]

    def received(data: bytes, arrival: float) -> None:
        if len(data) < 12 or data[1] & 0x7F:
            return  # RTCP
        _, _, number, _, ssrc = _RTP.unpack_from(data)
        prev = last_seq.get(ssrc)
        last_seq[ssrc] = number
        if measure_from <= arrival < stop_at and prev is not None:
            counts["received"] += 1
            counts["gaps"] += ((number - prev) & 0xFFFF) - 1

    sent = run_phones(
        sock,
        targets,
        packet,
        received,
        start_at=start_at,
        stop_at=stop_at,
        drain_until=stop_at + 0.2,
    )
    conn.send(
        {
            "sent": sent,
            "received": counts["received"],
            "gaps": counts["gaps"],
            "streams": len(last_seq),
        }
    )
    sock.close()


# ---- orchestration ----------------------------------------------------------------------


@dataclass
class Step:
    participants: int
    rooms: int
    late_ticks: int
    loss_in: int  # sent by phones but lost or late at the engine
    loss_out: int  # gaps in the mix streams the phones received
    engine_cpu: float
    max_tick_ms: float
    streams: int  # mix streams the phones received
    steal: float | None = None  # CPU time the hypervisor took during the window (0-1)

    @property
    def passed(self) -> bool:
        return (
            self.late_ticks == 0
            and self.loss_in == 0
            and self.loss_out == 0
            and self.streams == self.participants
        )

    def line(self) -> str:
        return (
            f"{self.participants:5d} participants in {self.rooms:3d} rooms  "
            f"late ticks {self.late_ticks:4d}  loss in {self.loss_in:6d}  "
            f"loss out {self.loss_out:6d}  engine CPU {100 * self.engine_cpu:5.1f}%  "
            f"max tick {self.max_tick_ms:6.2f} ms  streams {self.streams}  "
            + ("" if self.steal is None else f"steal {100 * self.steal:.1f}%  ")
            + f"{'PASS' if self.passed else 'FAIL'}"
        )


def run_step(
    participants: int,
    generators: int,
    seconds: float,
    warmup: float,
    port_min: int,
    poll: float,
    pin: bool = False,
) -> Step:
    ctx = mp.get_context("spawn")
    e_parent, e_child = ctx.Pipe()
    engine = ctx.Process(target=engine_main, args=(e_child, port_min, poll, pin), daemon=True)
    engine.start()
    shares = [
        participants // generators + (1 if g < participants % generators else 0)
        for g in range(generators)
    ]
    gens = []
    first = 0
    for share in shares:
        if share:
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=generator_main, args=(child, share, first), daemon=True)
            proc.start()
            if pin and proc.pid is not None:
                os.sched_setaffinity(proc.pid, split_cpus()[1])
            gens.append((proc, parent, share))
            first += share
    sizes = room_sizes(participants)
    try:
        phone_ports = [p for _, parent, _ in gens for p in parent.recv()]
        e_parent.send(("rooms", (phone_ports, sizes)))
        engine_ports = e_parent.recv()
        offset = 0
        for _, parent, share in gens:
            parent.send(engine_ports[offset : offset + share])
            offset += share
        start_at = time.monotonic() + 0.5
        for _, parent, _ in gens:
            parent.send((start_at, warmup, seconds))
        time.sleep(max(0.0, start_at + warmup - time.monotonic()))
        e_parent.send(("mark", "start"))
        e_parent.recv()
        steal = StealMeter()
        steal.start()
        time.sleep(seconds)
        stolen = steal.stop()
        e_parent.send(("mark", "end"))
        e_parent.recv()
        results = [parent.recv() for _, parent, _ in gens]
        time.sleep(0.2)  # the last frames in flight reach the engine
        e_parent.send(("report", None))
        report = e_parent.recv()
        e_parent.send(("stop", None))
        e_parent.recv()
    finally:
        for proc, _, _ in gens:
            proc.join(5)
        engine.join(5)
    sent = sum(r["sent"] for r in results)
    # never received, or received too late for its tick (dropped by the jitter buffer)
    loss_in = max(0, sent - report["received"]) + report["late_in"]
    return Step(
        participants,
        len(sizes),
        report["late_ticks"],
        loss_in,
        sum(r["gaps"] for r in results),
        report["cpu"],
        report["max_tick_ms"],
        sum(r["streams"] for r in results),
        stolen,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--participants", type=int, nargs="+", default=[250, 500, 750, 1000])
    parser.add_argument("--seconds", type=float, default=60.0, help="measured window per step")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--generators", type=int, default=2, help="load processes")
    parser.add_argument("--port-min", type=int, default=40000)
    parser.add_argument(
        "--poll-ms",
        type=float,
        default=0.0,
        help="engine socket draining between ticks every N ms (0: on the tick "
        "only, enough when every leg is decoded)",
    )
    parser.add_argument("--all", action="store_true", help="do not stop at the first failure")
    parser.add_argument(
        "--pin",
        action="store_true",
        help="give the engine a core of its own; the generators share the other cores",
    )
    args = parser.parse_args()
    cores = "the engine on a core of its own" if args.pin else "shared"
    print(
        f"conference bench: rooms of 3-50 on one engine process, {args.generators} "
        f"generator process(es), {os.cpu_count()} CPUs ({cores}), {args.seconds:.0f} s window"
    )
    best = 0
    for n in args.participants:
        step = run_step(
            n,
            args.generators,
            args.seconds,
            args.warmup,
            args.port_min,
            args.poll_ms / 1000,
            args.pin,
        )
        print(step.line(), flush=True)
        if step.passed:
            best = max(best, n)
        elif not args.all:
            break
    print(f"highest N passing: {best}")


if __name__ == "__main__":
    main()
