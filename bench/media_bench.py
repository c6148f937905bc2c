"""Media-engine load: N concurrent bridged G.711 calls through one engine process.

Run: ``.venv/bin/python bench/media_bench.py [--calls 100 200 400 500] [--seconds 10]
[--generators 2] [--poll-ms 2.5] [--decode] [--workers 1] [--all]``.

``--decode`` offers no telephone-event, so every leg is decoded for in-band DTMF and
re-encoded (the feature path); by default legs are relayed with header rewrite only.

Processes: one engine (MediaEngine on uvloop, the process under test) and ``generators``
load processes of our own RTP phones.  With ``--workers 1`` the engine process is signalling
only: it allocates and bridges through a :class:`media.pool.MediaWorkerPool`, and the media
runs in one ``python -m media.worker`` process (the process under test; its CPU is the
figure reported, as pushed by the worker).  Every call is two phones (A, B) whose legs the
engine bridges; each phone sends one 160-byte PCMU packet every 20 ms (phases spread over
the frame) carrying its send time, and receives what the engine relays from the other side.

Per step it reports: packet loss (sent vs received over the whole run), late engine ticks
(a tick starting > 5 ms after its deadline) during the measured window, p99 added jitter
(per stream, the packet's transit delay minus that stream's minimum, over all packets of
the window; a delay runs from the send stamp to the kernel's arrival time at the phone's
socket, so a generator late reading its socket does not count), the engine's CPU per
call, and passes when loss is 0, no tick was late and p99 added jitter < 5 ms.  The ramp
stops at the first failing step unless ``--all``.
Figures on a shared machine include the generators competing for the same cores.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import resource
import struct
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection

import numpy as np

from bench.rtpload import StealMeter, open_phone_socket, run_phones

PAYLOAD = 160
_RTP = struct.Struct("!BBHII")
SILENCE = b"\xff" * PAYLOAD


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _offer(port: int, telephone_event: bool) -> bytes:
    fmts, attrs = "0", "a=rtpmap:0 PCMU/8000\r\n"
    if telephone_event:  # as phones do; without it the engine listens for in-band DTMF
        fmts += " 101"
        attrs += "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n"
    return (
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP {fmts}\r\n{attrs}a=ptime:20\r\n"
    ).encode()


# ---- engine process ---------------------------------------------------------------------


def split_cpus() -> tuple[set[int], set[int]]:
    """(the media core, the rest) for ``--pin``: the last CPU this process may use is the
    media's own; signalling and the generators share the others."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        raise SystemExit("--pin needs at least two CPUs")
    return {cpus[-1]}, set(cpus[:-1])


def engine_main(
    conn: Connection, port_min: int, poll: float, workers: int = 0, pin: bool = False
) -> None:
    """Allocate and bridge the calls asked for, then report on request."""
    _raise_fd_limit()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(_engine(conn, port_min, poll, workers, pin))


async def _engine(conn: Connection, port_min: int, poll: float, workers: int, pin: bool) -> None:
    from media.engine import EngineSettings, MediaEngine
    from media.pool import MediaWorkerPool

    loop = asyncio.get_running_loop()
    settings = EngineSettings(
        port_min=port_min,
        port_max=min(65535, port_min + 9999),
        read_on_arrival=poll < 0,
        poll_interval=max(poll, 0.0),
    )
    engine = MediaWorkerPool(settings, workers) if workers else MediaEngine(settings)
    await engine.start()
    if pin:
        media_cpu, rest = split_cpus()
        if isinstance(engine, MediaWorkerPool):
            for pid in engine.pids:
                os.sched_setaffinity(pid, media_cpu)
            os.sched_setaffinity(0, rest)
        else:
            os.sched_setaffinity(0, media_cpu)

    async def counters() -> tuple[float, int]:
        """CPU seconds of the media process(es) and their late ticks, now."""
        if isinstance(engine, MediaWorkerPool):
            late = (await engine.refresh(60)).late_ticks  # a fresh push from every worker
            return sum(cpu for _, _, cpu in engine.worker_stats()), late
        return time.process_time(), engine.clock_stats.late_ticks

    marks: dict[str, tuple[float, float, int, float]] = {}
    while True:
        cmd, arg = await loop.run_in_executor(None, conn.recv)
        if cmd == "calls":
            ports = []
            pairs, telephone_event = arg
            for pa, pb in pairs:
                a = engine.allocate(_offer(pa, telephone_event))
                b = engine.allocate(_offer(pb, telephone_event), near=a)  # type: ignore[arg-type]
                engine.bridge(a, b)  # type: ignore[arg-type]
                ports.append((a.port, b.port))
            if isinstance(engine, MediaWorkerPool):
                await engine.refresh(60)  # every port bound before the phones send
            conn.send(ports)
        elif cmd == "mark":
            cpu, late = await counters()
            marks[arg] = (time.monotonic(), cpu, late, time.process_time())
            conn.send(None)
        elif cmd == "report":
            (w0, c0, l0, s0), (w1, c1, l1, s1) = marks["start"], marks["end"]
            s = engine.stats()
            conn.send(
                {
                    "cpu": (c1 - c0) / (w1 - w0),
                    "signalling_cpu": (s1 - s0) / (w1 - w0) if workers else None,
                    "late_ticks": l1 - l0,
                    "ticks": s.ticks,
                    "max_tick_ms": s.max_tick_ms,
                    "relayed": s.relayed_directions,
                    "resyncs": s.resyncs,
                }
            )
        elif cmd == "stop":
            await engine.close()
            conn.send(None)
            return


# ---- load generator process ------------------------------------------------------------


def generator_main(conn: Connection, calls: int, first_leg: int) -> None:
    """Phones for ``calls`` calls: learn engine ports, send/receive, report.

    All legs of one generator share one UDP socket (its address is in every leg's SDP), so
    the generator spends its CPU on packets, not on polling thousands of sockets; packets
    are told apart by the stamp they carry.
    """
    sock = open_phone_socket()
    port = sock.getsockname()[1]
    conn.send([(port, port)] * calls)
    engine_ports: list[tuple[int, int]] = conn.recv()
    targets = []
    for a, b in engine_ports:
        targets += [("127.0.0.1", a), ("127.0.0.1", b)]
    start_at, warmup, seconds = conn.recv()
    ssrc = 0x10000 * (first_leg + 1)
    measure_from = start_at + warmup
    stop_at = start_at + warmup + seconds
    delays: dict[int, list[float]] = {}
    seen: set[tuple[int, int]] = set()
    counts = {"received": 0, "corrupt": 0, "repeated": 0}

    def packet(k: int, number: int) -> bytes:
        # ASCII stamp: survives a G.711 decode/encode round trip (decoded mode)
        stamp = b"%.6f,%d,%d," % (time.monotonic(), first_leg + k, number)
        head = _RTP.pack(0x80, 0, number & 0xFFFF, (number * 160) & 0xFFFFFFFF, ssrc + k)
        return head + stamp + SILENCE[len(stamp) :]

    def received(data: bytes, arrival: float) -> None:
        if len(data) != 12 + PAYLOAD or data[1] & 0x7F:
            return  # RTCP, not our audio
        try:
            ts_text, leg_text, seq_text, _ = data[12:60].split(b",", 3)
            t, stream, number = float(ts_text), int(leg_text), int(seq_text)
        except ValueError:
            if data[12:] == SILENCE:
                counts["repeated"] += 1  # concealment silence after the senders stopped
            else:
                counts["corrupt"] += 1
            return
        if (stream, number) in seen:
            counts["repeated"] += 1  # concealment repeated a frame: not a new packet
            return
        seen.add((stream, number))
        counts["received"] += 1
        if t >= measure_from:
            delays.setdefault(stream, []).append(arrival - t)

    sent = run_phones(
        sock,
        targets,
        packet,
        received,
        start_at=start_at,
        stop_at=stop_at,
        drain_until=stop_at + 0.3,
    )
    added: list[np.ndarray] = []
    base: list[float] = []
    for d in delays.values():
        arr = np.asarray(d)
        added.append(arr - arr.min())
        base.append(float(np.median(arr)))
    conn.send(
        {
            "sent": sent,
            "received": counts["received"],
            "added": np.concatenate(added) if added else np.zeros(0),
            "median_delay": float(np.median(base)) if base else 0.0,
            "corrupt": counts["corrupt"],
            "repeated": counts["repeated"],
        }
    )
    sock.close()


# ---- orchestration ----------------------------------------------------------------------


@dataclass
class Step:
    calls: int
    loss: int
    late_ticks: int
    p99_added_ms: float
    median_delay_ms: float
    engine_cpu: float  # fraction of one core: the engine process, or the media worker
    max_tick_ms: float
    relayed: int
    repeated: int  # concealment frames seen by the phones (decoded mode)
    corrupt: int
    signalling_cpu: float | None = None  # the pool's process, with --workers
    steal: float | None = None  # CPU time the hypervisor took during the window (0-1)

    @property
    def passed(self) -> bool:
        return self.loss == 0 and self.late_ticks == 0 and self.p99_added_ms < 5.0

    def line(self) -> str:
        per_call = 100 * self.engine_cpu / self.calls if self.calls else 0.0
        return (
            f"{self.calls:5d} calls  loss {self.loss:6d}  late ticks {self.late_ticks:4d}  "
            f"p99 added jitter {self.p99_added_ms:6.2f} ms  median delay "
            f"{self.median_delay_ms:5.1f} ms  "
            f"{'engine' if self.signalling_cpu is None else 'worker'} CPU "
            f"{100 * self.engine_cpu:5.1f}% ({per_call:.3f}% of a core per call)  "
            + (
                ""
                if self.signalling_cpu is None
                else f"signalling CPU {100 * self.signalling_cpu:4.1f}%  "
            )
            + f"max tick {self.max_tick_ms:5.2f} ms  "
            f"relayed dirs {self.relayed}  concealed {self.repeated}  corrupt {self.corrupt}  "
            + ("" if self.steal is None else f"steal {100 * self.steal:.1f}%  ")
            + f"{'PASS' if self.passed else 'FAIL'}"
        )


def run_step(
    calls: int,
    generators: int,
    seconds: float,
    warmup: float,
    port_min: int,
    telephone_event: bool,
    poll: float,
    workers: int = 0,
    pin: bool = False,
) -> Step:
    ctx = mp.get_context("spawn")
    e_parent, e_child = ctx.Pipe()
    engine = ctx.Process(
        target=engine_main, args=(e_child, port_min, poll, workers, pin), daemon=True
    )
    engine.start()
    shares = [calls // generators + (1 if g < calls % generators else 0) for g in range(generators)]
    gens = []
    first = 0
    for share in shares:
        if not share:
            continue
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=generator_main, args=(child, share, first), daemon=True)
        proc.start()
        if pin and proc.pid is not None:
            os.sched_setaffinity(proc.pid, split_cpus()[1])
        gens.append((proc, parent))
        first += 2 * share
    try:
        for _, parent in gens:
            e_parent.send(("calls", (parent.recv(), telephone_event)))
            parent.send(e_parent.recv())
        start_at = time.monotonic() + 0.5
        for _, parent in gens:
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
        results = [parent.recv() for _, parent in gens]
        e_parent.send(("report", None))
        report = e_parent.recv()
        e_parent.send(("stop", None))
        e_parent.recv()
    finally:
        for proc, _ in gens:
            proc.join(5)
        engine.join(5)
    sent = sum(r["sent"] for r in results)
    received = sum(r["received"] for r in results)
    added = np.concatenate([r["added"] for r in results])
    p99 = float(np.percentile(added, 99)) * 1000 if len(added) else float("inf")
    median = float(np.median([r["median_delay"] for r in results])) * 1000
    return Step(
        calls,
        sent - received,
        report["late_ticks"],
        p99,
        median,
        report["cpu"],
        report["max_tick_ms"],
        report["relayed"],
        sum(r["repeated"] for r in results),
        sum(r["corrupt"] for r in results),
        report["signalling_cpu"],
        stolen,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, nargs="+", default=[100, 200, 300, 400, 500, 600])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured window per step")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--generators", type=int, default=2, help="load processes")
    parser.add_argument("--port-min", type=int, default=40000)
    parser.add_argument("--all", action="store_true", help="do not stop at the first failure")
    parser.add_argument(
        "--poll-ms",
        type=float,
        default=2.5,
        help="engine socket reading: drain every N ms (default 2.5), 0 on the tick only, "
        "<0 read each socket on arrival",
    )
    parser.add_argument(
        "--decode",
        action="store_true",
        help="phones without telephone-event: every leg decoded for in-band DTMF detection",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="media in N worker processes behind a MediaWorkerPool (default 0: in-process)",
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="give the media process (the worker with --workers) a core of its own; "
        "signalling and the generators share the other cores",
    )
    args = parser.parse_args()
    cores = "the media process on a core of its own" if args.pin else "shared"
    where = f"{args.workers} media worker process(es)" if args.workers else "one engine process"
    print(
        f"media bench: bridged PCMU calls through {where}, "
        f"{args.generators} generator process(es), {os.cpu_count()} CPUs ({cores}), "
        f"{args.seconds:.0f} s window, {'decoded (in-band DTMF)' if args.decode else 'relay'}, "
        + (
            "sockets read on arrival"
            if args.poll_ms < 0
            else f"sockets drained every {args.poll_ms or 20:g} ms"
        )
    )
    best = 0
    for n in args.calls:
        step = run_step(
            n,
            args.generators,
            args.seconds,
            args.warmup,
            args.port_min,
            not args.decode,
            args.poll_ms / 1000,
            args.workers,
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
