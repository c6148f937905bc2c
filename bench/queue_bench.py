"""Call-queue benchmark: many callers waiting in many queues, agents simulated by SIPp.

The switch (started for real, media anchored: waiting callers hear the queue's ringback)
holds `--queues` queues; each of `--agents` agents (users registered by one SIPp UAS that
answers every offer at once, talks `--talk` seconds and hangs up) serves two queues, its
own first. `--callers` SIPp carrier callers dial the queues' numbers at `--rate` per second
and wait (up to `--patience` seconds) until an agent takes them; the agent's BYE ends both.
Only the strategies that offer one agent at a time are used (ring all and cascade ring
several agents for one caller, which a SIPp UAS answering everything cannot play).

Measured:
- free to next offer: for each conversation an agent ends while callers wait in one of
  its queues, the time from the agent's BYE to the next INVITE that agent receives (both
  in the UAS's own clock, SIPp `-trace_logs`), p50 and p99;
- no double offer: the queue event log replayed, no agent rings for two callers at once
  and no caller is answered twice;
- the switch's CPU (user + system seconds from /proc, as a share of one core) over the run.

Callers wait only while they arrive faster than agents finish (`--agents` divided by the
mean talk time, a second per caller); `peak_waiting` in the report says how many did.

    SOFTSWITCH_PURE_PYTHON=1 .venv/bin/python -m bench.queue_bench
    .venv/bin/python -m bench.queue_bench --callers 1000 --queues 50 --agents 200 --rate 100
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from config.queues import Strategy
from peers.sipp import run_sipp, start_sipp, user_rows, write_users
from peers.switchproc import PhoneUser, SwitchConfigFile, SwitchProcess, free_port
from storage import open_store
from storage.queue_events import QueueEvent

TENANT = "test"
STRATEGIES = [s for s in Strategy if s not in (Strategy.RING_ALL, Strategy.LINEAR_CASCADE)]
_TICKS = os.sysconf("SC_CLK_TCK")

_AGENT_UAS = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="queue_agent">
  <recv request="INVITE" crlf="true" rrs="true">
    <action>
      <ereg regexp="[0-9]+" search_in="msg" check_it="true" assign_to="agent"/>
      <log message="inv [$agent] [clock_tick]"/>
    </action>
  </recv>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]agent[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[$agent]@[local_ip]:[local_port];transport=[transport]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=agent 1 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000
    ]]>
  </send>
  <recv request="ACK" crlf="true">
    <action>
      <ereg regexp=".*" search_in="hdr" header="From:" check_it="true" assign_to="them"/>
      <ereg regexp=".*" search_in="hdr" header="To:" check_it="true" assign_to="us"/>
    </action>
  </recv>
  <pause distribution="uniform" min="{talk_min}" max="{talk_max}"/>
  <nop><action><log message="bye [$agent] [clock_tick]"/></action></nop>
  <send retrans="500">
    <![CDATA[
      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: [$us]
      To: [$them]
      [last_Call-ID:]
      CSeq: 1 BYE
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>
</scenario>
"""

_CALLER_UAC = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="queue_caller">
  <send retrans="500">
    <![CDATA[
      INVITE sip:[field0]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:+1650555[call_number]@[local_ip]>;tag=[pid]caller[call_number]
      To: <sip:[field0]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:carrier@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=caller 1 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rrs="true"/>
  <send>
    <![CDATA[
      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:+1650555[call_number]@[local_ip]>;tag=[pid]caller[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv request="BYE" timeout="{patience_ms}" ontimeout="1"/>
  <send next="2">
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
  <label id="1"/>
  <send retrans="500">
    <![CDATA[
      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:+1650555[call_number]@[local_ip]>;tag=[pid]caller[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>
  <label id="2"/>
</scenario>
"""


def _did(queue: int) -> str:
    return f"+1415556{queue:04d}"


def _config(work: Path, queues: int, agents: int) -> tuple[SwitchConfigFile, Path, list[str]]:
    names = [str(30000 + i) for i in range(agents)]
    users = [PhoneUser(n, f"pw{n}") for n in names]
    config = SwitchConfigFile(work / "switch", users=users, log_level="WARNING")
    lines = [
        "[[tenants.trunks]]",
        'name = "carrier"',
        'inbound_addresses = ["127.0.0.0/8"]',
        "[[tenants.trunks.gateways]]",
        'host = "127.0.0.1"',
        f"port = {free_port()}",
    ]
    for q in range(queues):
        own = [n for i, n in enumerate(names) if i % queues == q]
        spill = [n for i, n in enumerate(names) if i % queues == (q + 1) % queues]
        agent_rows = [f'{{ extension = "{n}", order = {i}, priority = 1 }}' for i, n in
                      enumerate(own)]  # fmt: skip
        agent_rows += [f'{{ extension = "{n}", order = {100 + i}, priority = 2 }}' for i, n in
                       enumerate(spill) if n not in own]  # fmt: skip
        lines += [
            "[[tenants.queues]]",
            f'name = "q{q}"',
            f'extension = "{8000 + q}"',
            f'strategy = "{STRATEGIES[q % len(STRATEGIES)].value}"',
            'audio = "ringback"',
            "agent_ring_timeout = 10",
            f"agents = [{', '.join(agent_rows)}]",
        ]
    dids = ", ".join(
        f'{{ number = "{_did(q)}", treatment = "queue", destination = "{8000 + q}" }}'
        for q in range(queues)
    )
    lines += ["[tenants.routing]", f"dids = [{dids}]"]
    path = config.write()
    with path.open("a") as out:
        out.write("\n" + "\n".join(lines) + "\n")
    return config, path, names


def _database(config: SwitchConfigFile) -> str:
    return f"sqlite:///{config.directory / 'switch.db'}"


def _log_in(database: str, agents: list[str]) -> None:
    """Every agent available, written to the log as the CLI would (the switch follows)."""

    async def write() -> None:
        async with open_store(database) as store:
            now = time.time()
            await store.append_queue_events(
                [QueueEvent(TENANT, "agent_status", now, agent=a, reason="available")
                 for a in agents]
            )  # fmt: skip

    asyncio.run(write())


def _events(database: str) -> list[QueueEvent]:
    async def load() -> list[QueueEvent]:
        async with open_store(database) as store:
            return await store.load_queue_events(TENANT, 0, time.time() + 60)

    return asyncio.run(load())


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def check_log(events: list[QueueEvent]) -> tuple[list[str], dict[str, list[bool]]]:
    """Replay the log: double offers found, and per agent, for each conversation it ended
    (in order), whether callers were waiting in its queues at that moment."""
    problems: list[str] = []
    ringing: dict[str, str] = {}  # agent -> call
    offers: dict[str, set[str]] = defaultdict(set)  # call -> agents ringing
    waiting: dict[str, set[str]] = defaultdict(set)  # queue -> calls waiting
    answered: set[str] = set()
    agent_queues: dict[str, set[str]] = defaultdict(set)
    saturated: dict[str, list[bool]] = defaultdict(list)
    for e in events:
        if e.event == "offered":
            agent_queues[e.agent].add(e.queue)
            if e.agent in ringing:
                problems.append(
                    f"{e.agent} offered {e.call_id} while ringing for {ringing[e.agent]}"
                )
            ringing[e.agent] = e.call_id
            offers[e.call_id].add(e.agent)
        elif e.event == "entered":
            waiting[e.queue].add(e.call_id)
        elif e.event in ("missed", "answered"):
            if ringing.get(e.agent) == e.call_id:
                del ringing[e.agent]
            offers[e.call_id].discard(e.agent)
            if e.event == "answered":
                if e.call_id in answered:
                    problems.append(f"{e.call_id} answered twice")
                answered.add(e.call_id)
                waiting[e.queue].discard(e.call_id)
        elif e.event in ("abandoned", "exited"):
            waiting[e.queue].discard(e.call_id)
            for agent in offers.pop(e.call_id, set()):
                if ringing.get(agent) == e.call_id:
                    del ringing[agent]
        elif e.event == "completed":
            saturated[e.agent].append(any(waiting[q] for q in agent_queues[e.agent]))
    return problems, saturated


def _uas_ticks(work: Path) -> dict[str, list[tuple[str, int]]]:
    """Per agent, its ("inv" | "bye", clock tick in ms) in order, from the UAS's log."""
    found: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for path in work.glob("queue_agent*_logs.log"):
        for line in path.read_text(errors="replace").splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[0] in ("inv", "bye") and parts[2].isdigit():
                found[parts[1]].append((parts[0], int(parts[2])))
    return found


def free_to_offer(work: Path, saturated: dict[str, list[bool]], after_ms: int = 0) -> list[float]:
    """Seconds from an agent's BYE to its next INVITE, for the conversations it ended while
    callers waited for it (and, with `after_ms`, after that tick of the UAS's clock)."""
    delays: list[float] = []
    for agent, marks in _uas_ticks(work).items():
        byes = 0
        for i, (kind, tick) in enumerate(marks):
            if kind != "bye":
                continue
            waited = saturated.get(agent, [])
            busy = byes < len(waited) and waited[byes]
            byes += 1
            nxt = next((t for k, t in marks[i + 1 :] if k == "inv"), None)
            if busy and nxt is not None and tick >= after_ms:
                delays.append((nxt - tick) / 1000)
    return delays


def run(opts: argparse.Namespace) -> dict[str, object]:
    work = Path(tempfile.mkdtemp(prefix="queue-bench-"))
    for sub in ("reg", "callers"):
        (work / sub).mkdir()
    config, path, agents = _config(work, opts.queues, opts.agents)
    database = _database(config)
    uas_port = free_port()
    result: dict[str, object] = {
        "callers": opts.callers,
        "queues": opts.queues,
        "agents": opts.agents,
        "rate": opts.rate,
        "talk_s": [opts.talk_min, opts.talk_max],
        "compiled": os.environ.get("SOFTSWITCH_PURE_PYTHON") != "1",
    }
    with SwitchProcess(path, port=config.port) as switch:
        rows = write_users(
            work / "agents.csv", user_rows([(a, "pbx.test", f"pw{a}") for a in agents])
        )
        reg = run_sipp(
            "register.xml", f"127.0.0.1:{config.port}", calls=len(agents), rate=100,
            injection=rows, local_port=uas_port, timeout=60, workdir=work / "reg",
            keys={"c1": "1", "c2": "2", "expires": "3600"},
        )  # fmt: skip
        if not reg.ok:
            raise SystemExit(f"agents did not register: {reg.errors}")
        _log_in(database, agents)
        time.sleep(3)  # the switch follows status changes in the log within 2 s
        scenario = work / "queue_agent.xml"
        scenario.write_text(
            _AGENT_UAS.replace("{talk_min}", str(int(opts.talk_min * 1000))).replace(
                "{talk_max}", str(int(opts.talk_max * 1000))
            )
        )
        expected = opts.callers
        length = opts.callers / opts.rate + opts.patience + 30
        # In the background, stopped by its PID once the last conversations are logged
        # (its own -timeout would keep it, and its port, for minutes after the report).
        uas = start_sipp(
            scenario, f"127.0.0.1:{config.port}", calls=expected * 2, rate=1,
            local_port=uas_port, timeout=length, workdir=work, extra=["-trace_logs"],
        )  # fmt: skip
        try:
            time.sleep(1)
            caller_xml = work / "queue_caller.xml"
            caller_xml.write_text(_CALLER_UAC.replace("{patience_ms}", str(opts.patience * 1000)))
            dids = write_users(
                work / "dids.csv", [(_did(i % opts.queues),) for i in range(opts.callers)]
            )
            cpu_start, wall_start = _cpu_seconds(switch.pid), time.monotonic()
            callers = run_sipp(
                caller_xml, f"127.0.0.1:{config.port}", calls=opts.callers, rate=opts.rate,
                limit=opts.callers, injection=dids, timeout=length, workdir=work / "callers",
            )  # fmt: skip
            cpu = _cpu_seconds(switch.pid) - cpu_start
            wall = time.monotonic() - wall_start
            time.sleep(opts.talk_max + 2)  # the last conversations end and are logged
            events = _events(database)
        finally:
            uas.stop()
    problems, saturated = check_log(events)
    delays = free_to_offer(work, saturated)
    # Once every caller has entered (the UAS starts a second before the callers): what an
    # agent waits with no new arrivals competing for the switch.
    ramp_ms = int((1 + opts.callers / opts.rate + 1) * 1000)
    steady = free_to_offer(work, saturated, ramp_ms)
    counts: dict[str, int] = defaultdict(int)
    for e in events:
        counts[e.event] += 1
    peak = 0
    current = 0
    for e in events:
        if e.event == "entered":
            current += 1
        elif e.event in ("answered", "abandoned", "exited"):
            current -= 1
        peak = max(peak, current)
    p50, p99 = _percentile(delays, 0.5), _percentile(delays, 0.99)
    s50, s99 = _percentile(steady, 0.5), _percentile(steady, 0.99)
    result.update(
        {
            "callers_ok": callers.ok,
            "caller_errors": callers.errors[-400:] if not callers.ok else "",
            "entered": counts["entered"],
            "answered": counts["answered"],
            "abandoned": counts["abandoned"],
            "offered": counts["offered"],
            "missed": counts["missed"],
            "peak_waiting": peak,
            "double_offers": problems[:10],
            "free_to_offer_samples": len(delays),
            "free_to_offer_p50_ms": None if p50 is None else round(p50 * 1000, 1),
            "free_to_offer_p99_ms": None if p99 is None else round(p99 * 1000, 1),
            "after_ramp_samples": len(steady),
            "after_ramp_p50_ms": None if s50 is None else round(s50 * 1000, 1),
            "after_ramp_p99_ms": None if s99 is None else round(s99 * 1000, 1),
            "switch_cpu_s": round(cpu, 1),
            "wall_s": round(wall, 1),
            "switch_cpu_pct_of_core": round(100 * cpu / wall, 1) if wall else None,
            "workdir": str(work),
        }
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--callers", type=int, default=200)
    parser.add_argument("--queues", type=int, default=10)
    parser.add_argument("--agents", type=int, default=40)
    parser.add_argument("--rate", type=float, default=40, help="callers entering per second")
    # Agents must be slower than arrivals for callers to wait: 40 agents talking 10-15 s
    # take about 3 callers a second, so at 40/s nearly every caller waits.
    parser.add_argument("--talk-min", type=float, default=10.0)
    parser.add_argument("--talk-max", type=float, default=15.0)
    parser.add_argument("--patience", type=int, default=120, help="seconds a caller waits")
    opts = parser.parse_args(argv)
    figures = run(opts)
    print(json.dumps(figures), flush=True)
    return 0 if figures["callers_ok"] and not figures["double_offers"] else 1


if __name__ == "__main__":
    sys.exit(main())
