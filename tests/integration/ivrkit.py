"""Helpers for auto attendant tests: a carrier (SIPp) calling a DID that answers with a
menu and pressing keys by RFC 4733 (SIPp's ``play_dtmf``)."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path

from peers.sipp import SippResult, run_sipp

_HEADERS = """      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: <sip:+16505550123@carrier.test>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]>{peer}
      Call-ID: [call_id]"""

_INVITE = """  <send retrans="500">
    <![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
{headers}
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
      a=fmtp:101 0-15
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rrs="true"/>
  <send>
    <![CDATA[
      ACK [next_url] SIP/2.0
{peer_headers}
      [routes]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
"""

_BYE = """  <send retrans="500">
    <![CDATA[
      BYE [next_url] SIP/2.0
{peer_headers}
      [routes]
      CSeq: 2 BYE
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200" crlf="true"/>
"""


_EVENTS = {**{str(d): d for d in range(10)}, "*": 10, "#": 11}
_TONE_PACKETS = 8  # 160 ms of key press, one event packet each 20 ms
_GAP_PACKETS = 5  # 100 ms between keys


def _pcap_ms(keys: str) -> int:
    return len(keys) * (_TONE_PACKETS + 3 + _GAP_PACKETS) * 20 + 100


def dtmf_pcap(path: Path, keys: str, start: int = 0) -> Path:
    """A pcap of RTP telephone-event packets (RFC 4733, payload type 101) pressing
    ``keys``, for SIPp's ``play_pcap_audio``: each key 160 ms, its end sent three times.
    SIPp sends the packets as they are: ``start`` (keys pressed before, in earlier pcaps
    of the same call) keeps sequence numbers and timestamps going up, or a receiver takes
    the next key for a repeat of the last one."""
    records = []
    per_key = _TONE_PACKETS + 3
    seq = 1000 + start * per_key
    ts = 8000 + start * (_TONE_PACKETS + _GAP_PACKETS) * 160
    t = 0.0
    for key in keys:
        event = _EVENTS[key]
        for i in range(_TONE_PACKETS + 3):
            end = i >= _TONE_PACKETS
            duration = min(i + 1, _TONE_PACKETS) * 160
            marker = 0x80 if i == 0 else 0
            rtp = struct.pack("!BBHII", 0x80, marker | 101, seq, ts, 0x1234ABCD)
            rtp += struct.pack("!BBH", event, (0x80 if end else 0) | 10, duration)
            records.append((t, rtp))
            seq += 1
            t += 0.02
        ts += (_TONE_PACKETS + _GAP_PACKETS) * 160
        t += _GAP_PACKETS * 0.02
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for when, payload in records:
        udp = struct.pack("!HHHH", 6000, 6000, 8 + len(payload), 0) + payload
        ip = struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
            bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1]),
        )  # fmt: skip
        frame = b"\x00" * 12 + b"\x08\x00" + ip + udp
        sec = int(when)
        out.append(struct.pack("<IIII", sec, int((when - sec) * 1e6), len(frame), len(frame)))
        out.append(frame)
    path.write_bytes(b"".join(out))
    return path


def carrier_scenario(path: Path, steps: Sequence[tuple[str, str | int]]) -> Path:
    """A SIPp scenario: the carrier calls the number in ``-s`` (from +16505550123), then
    for each step ``("pause", ms)`` waits and ``("dtmf", "123")`` sends the keys as
    RFC 4733 events, then hangs up with BYE."""
    path.parent.mkdir(parents=True, exist_ok=True)
    headers = _HEADERS.format(peer="")
    peer_headers = _HEADERS.format(peer="[peer_tag_param]")
    body = [_INVITE.format(headers=headers, peer_headers=peer_headers)]
    pressed = 0
    for kind, value in steps:
        if kind == "pause":
            body.append(f'  <pause milliseconds="{int(value)}"/>')
        elif kind == "dtmf":
            if not str(value) or any(c not in "0123456789*#" for c in str(value)):
                raise ValueError(f"not DTMF keys: {value!r}")
            pcap = dtmf_pcap(path.parent / f"dtmf-{len(body)}.pcap", str(value), pressed)
            pressed += len(str(value))
            body.append(f'  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>')
            body.append(f'  <pause milliseconds="{_pcap_ms(str(value))}"/>')
        else:
            raise ValueError(f"unknown step {kind!r}")
    body.append(_BYE.format(peer_headers=peer_headers))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<!DOCTYPE scenario SYSTEM "sipp.dtd">\n'
        '<scenario name="carrier_dtmf">\n' + "\n".join(body) + "\n</scenario>\n"
    )
    return path


def call_with_keys(
    workdir: Path, switch_port: int, number: str, steps: Sequence[tuple[str, str | int]]
) -> SippResult:
    """One carrier call to ``number`` through the steps of ``carrier_scenario``."""
    scenario = carrier_scenario(workdir / "carrier.xml", steps)
    return run_sipp(
        scenario,
        f"127.0.0.1:{switch_port}",
        calls=1,
        rate=1,
        extra=["-s", number, "-mi", "127.0.0.1"],
        timeout=60,
        workdir=workdir,
    )
