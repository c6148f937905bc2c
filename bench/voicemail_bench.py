"""Voicemail under load: N callers leaving messages at once through ONE media worker.

Run: ``.venv/bin/python -m bench.voicemail_bench [--callers 50 200] [--workers 1]``.

A switch runs in this process with ``[media] workers = 1`` (the process under test is
the switch plus its worker); SIPp plays a carrier calling a DID whose treatment is a shared
mailbox's voicemail, N calls at once. Each caller's RTP comes from a pcap made from a WAV
(silence while the greeting plays, then a sentence spoken by espeak-ng, then a second of
silence) with SIPp's ``play_pcap_audio``; then SIPp hangs up.

A step passes when every call succeeded, every message was filed, the engine counted no
late ticks during the step, and every message's duration is within 0.5 s of the spoken
part of the WAV (no lost audio). CPU per recording caller is (switch + worker CPU
seconds) / callers / call seconds. The machine is shared: figures include SIPp. Each line
says whether the media engine ran compiled (mypyc) or as plain Python, and the machine's
load average (1 min) before and after the step: a late tick on a busy machine may be the
engine's or the other processes'.

With ``SOFTSWITCH_TICK_TRACE=DIR`` the worker records every tick (:mod:`media.ticktrace`)
and the step lists each late tick of its window (late as the engine counts it: started more
than ``late_after`` behind its deadline) with the VM steal time since the tick before
began: the verdict then tells "late while the hypervisor ran another guest" (steal in every
late tick's window) from "late with no steal" (our own work, or another process on the
machine: ``python -m bench.ticktrace_report`` on the file says which).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from bench.ticktrace_report import LateTick, late_ticks
from config.loader import load_config
from media import ticktrace
from media.engine import EngineSettings
from media.g711 import ulaw_encode
from media.pool import MediaWorkerPool
from media.wav import load_wav, write_wav
from peers.sipp import run_sipp
from peers.switchproc import SwitchConfigFile, free_port
from softswitch.server import Switch
from softswitch.voicemail.audio import said
from softswitch.voicemail.events import MailboxAddress

RATE = 8000
DID = "+14155550199"
MAILBOX = "500"
LEAD = 10.0  # seconds of silence from the caller while the greeting and the tone play
TEXT = "Hello, this is a benchmark message. Please call me back about the order."

_SCENARIO = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="leave_message">
  <send retrans="500">
    <![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: <sip:+1650555[call_number]@carrier.test>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:carrier@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rrs="true"/>
  <send>
    <![CDATA[
      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: <sip:+1650555[call_number]@carrier.test>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]>[peer_tag_param]
      Call-ID: [call_id]
      [routes]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>
  <pause milliseconds="{ms}"/>
  <send retrans="500">
    <![CDATA[
      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: <sip:+1650555[call_number]@carrier.test>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]>[peer_tag_param]
      Call-ID: [call_id]
      [routes]
      CSeq: 2 BYE
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200" crlf="true"/>
</scenario>
"""


def caller_audio(work: Path) -> tuple[npt.NDArray[np.int16], float]:
    """What each caller sends (lead silence, speech, 1 s of silence) and how long the
    spoken part is once trimmed as voicemail trims it."""
    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng is not installed (apt-get install espeak-ng)")
    raw = work / "speech-raw.wav"
    subprocess.run(["espeak-ng", "-w", str(raw), TEXT], check=True, timeout=60)
    speech = load_wav(raw)
    alone = work / "speech.wav"
    write_wav(alone, speech)
    voiced = len(said(alone)) / RATE
    pad = np.zeros(int(LEAD * RATE), np.int16)
    audio = np.concatenate([pad, speech, np.zeros(RATE, np.int16)]).astype(np.int16)
    return audio, voiced


def rtp_pcap(path: Path, samples: npt.NDArray[np.int16]) -> float:
    """A pcap of PCMU RTP packets (20 ms each, paced by their capture times) for SIPp's
    ``play_pcap_audio``; its duration in seconds."""
    codes = ulaw_encode(samples[: len(samples) - len(samples) % 160])
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for n in range(len(codes) // 160):
        rtp = struct.pack("!BBHII", 0x80, 0x80 if n == 0 else 0, n, n * 160, 0x5EED0001)
        payload = rtp + codes[n * 160 : (n + 1) * 160].tobytes()
        udp = struct.pack("!HHHH", 6000, 6000, 8 + len(payload), 0) + payload
        ip = struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
            bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1]),
        )  # fmt: skip
        frame = b"\x00" * 12 + b"\x08\x00" + ip + udp
        when = n * 0.02
        sec = int(when)
        out.append(struct.pack("<IIII", sec, int((when - sec) * 1e6), len(frame), len(frame)))
        out.append(frame)
    path.write_bytes(b"".join(out))
    return len(codes) / RATE


def switch_config(work: Path, workers: int) -> Path:
    tenant = f"""
[[tenants.trunks]]
name = "carrier"
inbound_addresses = ["127.0.0.0/8"]
[[tenants.trunks.gateways]]
host = "127.0.0.1"
port = {free_port()}
[tenants.routing]
dids = [{{ number = "{DID}", treatment = "voicemail", destination = "{MAILBOX}" }}]
[tenants.voicemail]
min_message_seconds = 1.0
[tenants.voicemail.mailboxes.{MAILBOX}]
name = "Sales"
max_messages = 10000
max_message_seconds = 120
greetings = {{ unavailable = "Sales. Leave a message." }}
"""
    cfg = SwitchConfigFile(
        work / "switch",
        extra_toml=f"workers = {workers}",
        tenant_toml=tenant,
        log_level="WARNING",
    )
    return cfg.write()


@dataclass
class Step:
    callers: int
    ok_calls: int
    filed: int
    late_ticks: int
    max_tick_ms: float
    worst_error: float
    cpu_seconds: float
    call_seconds: float
    wall: float
    load_before: float
    load_after: float
    steal_ms: float | None = None  # CPU time the hypervisor gave other guests meanwhile
    traced: list[LateTick] | None = None  # the late ticks of the worker's tick trace, if on

    @property
    def passed(self) -> bool:
        return (
            self.ok_calls == self.callers
            and self.filed == self.callers
            and self.late_ticks == 0
            and self.worst_error <= 0.5
        )

    def line(self) -> str:
        per = self.cpu_seconds / self.callers / self.call_seconds
        return (
            f"{self.callers:4d} callers  calls ok {self.ok_calls:4d}  filed {self.filed:4d}  "
            f"late ticks {self.late_ticks} (longest tick {self.max_tick_ms:.1f} ms)  "
            f"worst duration error {self.worst_error:.2f} s  "
            f"CPU {self.cpu_seconds:.1f} s  per recording caller {per * 100:.2f}% of a core  "
            f"[{_build()}, load {self.load_before:.1f} -> {self.load_after:.1f}"
            f"{'' if self.steal_ms is None else f', VM steal {self.steal_ms:.0f} ms'}]  "
            f"({self.verdict()})"
        )

    def verdict(self) -> str:
        """pass, FAIL, or FAIL with the late ticks' VM steal when they were traced."""
        if self.passed:
            return "pass"
        if self.traced is None or not self.late_ticks:
            return "FAIL"
        stolen = sum(1 for t in self.traced if t.stolen)
        own = len(self.traced) - stolen
        only_late = self.ok_calls == self.filed == self.callers and self.worst_error <= 0.5
        if only_late and own == 0 and stolen == self.late_ticks:
            return f"FAIL: all {stolen} late ticks had VM steal in their window"
        return f"FAIL: late ticks traced {stolen} with VM steal in their window, {own} without"

    def late_lines(self) -> list[str]:
        """One line per traced late tick: how late, the steal in its window, the cause."""
        return [
            f"    late tick {t.tick}: {t.late_ms:.1f} ms late, VM steal {t.steal_ms:.0f} ms "
            f"in its window ({'hypervisor' if t.stolen else 'no steal'}; cause: {t.cause})"
            for t in self.traced or []
        ]


def _build() -> str:
    """Whether the media engine runs as a mypyc extension or as plain Python."""
    import media.engine

    return "compiled" if not media.engine.__file__.endswith(".py") else "uncompiled"


def _steal_ms() -> float | None:
    """The machine's steal time so far (all CPUs, /proc/stat): on a virtual machine, time
    its CPUs were ready to run but the hypervisor ran another guest. A tick late while the
    guest was not running at all shows here, not in anything the switch did."""
    try:
        with open("/proc/stat") as stat:
            fields = stat.readline().split()
        return 1000 * int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run_step(callers: int, workers: int, work: Path) -> Step:
    audio, voiced = caller_audio(work)
    seconds = rtp_pcap(work / "caller.pcap", audio)
    scenario = work / "leave_message.xml"
    scenario.write_text(
        _SCENARIO.replace("{pcap}", str(work / "caller.pcap")).replace(
            "{ms}", str(int(seconds * 1000) + 200)
        )
    )
    config = switch_config(work, workers)
    os.chdir(config.parent)  # the prompt library and mailboxes are relative to it
    switch = Switch(load_config(config))
    await switch.start()
    pids: list[int] = []
    try:
        media = switch.media
        assert isinstance(media, MediaWorkerPool), "run with at least one media worker"
        pids = [pid for pid, _, _ in media.worker_stats()]
        box = MailboxAddress("test", MAILBOX)
        before = await media.refresh()
        load_before = os.getloadavg()[0]
        steal0 = _steal_ms()
        cpu0 = _own_cpu() + sum(cpu for _, _, cpu in media.worker_stats())
        started = time.monotonic()
        result = await asyncio.to_thread(
            run_sipp,
            scenario,
            f"127.0.0.1:{switch.listening[0].port}",
            calls=callers,
            rate=callers,
            limit=callers,
            timeout=seconds + 90,
            extra=["-s", DID, "-mi", "127.0.0.1", "-rp", "1000"],
            workdir=work,
        )
        deadline = time.monotonic() + 30
        while len(switch.voicemail.messages(box)) < callers and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        ended = time.monotonic()
        wall = ended - started
        after = await media.refresh()
        cpu = _own_cpu() + sum(c for _, _, c in media.worker_stats()) - cpu0
        steal1 = _steal_ms()
        messages = switch.voicemail.messages(box)
        errors = [abs(m.duration - voiced) for m in messages]
        step = Step(
            callers=callers,
            ok_calls=result.successful,
            filed=len(messages),
            late_ticks=after.late_ticks - before.late_ticks,
            max_tick_ms=after.max_tick_ms,
            worst_error=max(errors, default=float("inf")),
            cpu_seconds=cpu,
            call_seconds=seconds,
            wall=wall,
            load_before=load_before,
            load_after=os.getloadavg()[0],
            steal_ms=None if steal0 is None or steal1 is None else steal1 - steal0,
        )
    finally:
        await switch.stop()  # the workers write their tick traces as they close
    folder = os.environ.get(ticktrace.ENV)
    if folder:
        late_ms = EngineSettings().late_after * 1000
        step.traced = []
        for pid in pids:
            trace = Path(folder) / f"ticks-{pid}.csv"
            if trace.is_file():
                step.traced += late_ticks(trace, late_ms, started, ended)
    return step


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--callers", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--workers", type=int, default=1, help="media worker processes")
    args = parser.parse_args()
    home = os.getcwd()
    for callers in args.callers:
        with tempfile.TemporaryDirectory(prefix="vm-bench-") as tmp:
            try:
                step = asyncio.run(run_step(callers, args.workers, Path(tmp)))
            finally:
                os.chdir(home)
        print(step.line(), flush=True)
        for line in step.late_lines():
            print(line, flush=True)


if __name__ == "__main__":
    main()
