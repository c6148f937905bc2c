"""Message-layer throughput: parse, parse + the fields a proxy/transaction layer reads,
and serialisation of an unmodified and of a modified message.

    python bench/parser_bench.py [--seconds 2] [--profile]

Prints messages per second for one core; figures are for the operator, never asserted.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from collections.abc import Callable

from softswitch.sip.message import SipRequest, parse_message

SDP = (
    b"v=0\r\n"
    b"o=alice 2890844526 2890844526 IN IP4 client.atlanta.example.com\r\n"
    b"s=-\r\n"
    b"c=IN IP4 192.0.2.101\r\n"
    b"t=0 0\r\n"
    b"m=audio 49172 RTP/AVP 0 8 101\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-16\r\n"
    b"a=rtcp:49173 IN IP4 192.0.2.101\r\n"
    b"a=ptime:20\r\n"
    b"a=maxptime:150\r\n"
    b"a=sendrecv\r\n"
)

# A typical INVITE from a desk phone: 12 headers plus an SDP offer.
INVITE = (
    b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP client.atlanta.example.com:5060;branch=z9hG4bK74bf9;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b'From: "Alice Liddell" <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n'
    b"To: Bob <sip:bob@biloxi.example.com>\r\n"
    b"Call-ID: 3848276298220188511@atlanta.example.com\r\n"
    b"CSeq: 31862 INVITE\r\n"
    b"Contact: <sip:alice@client.atlanta.example.com;transport=udp>\r\n"
    b"Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, INFO, UPDATE\r\n"
    b"Supported: replaces, timer, 100rel\r\n"
    b"User-Agent: Acme SoftPhone 4.2.1\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: " + str(len(SDP)).encode() + b"\r\n"
    b"\r\n" + SDP
)


def parse_only() -> None:
    parse_message(INVITE)


def parse_and_read() -> tuple[object, ...]:
    msg = parse_message(INVITE)
    assert isinstance(msg, SipRequest)
    via, from_, to = msg.top_via, msg.from_, msg.to
    assert via is not None and from_ is not None and to is not None
    return (msg.call_id, msg.cseq, via.branch, from_.tag, to.tag, msg.method, msg.uri)


_PARSED = parse_message(INVITE)


def to_bytes_unmodified() -> None:
    _PARSED.to_bytes()


_MODIFIED = parse_message(INVITE)


def modify_and_to_bytes() -> None:
    # A proxy-like change: each call invalidates the cached wire form again.
    _MODIFIED.set("Max-Forwards", "69")
    _MODIFIED.to_bytes()


CASES: list[tuple[str, Callable[[], object]]] = [
    ("parse_message only", parse_only),
    ("parse + call_id/cseq/branch/tags/method/uri", parse_and_read),
    ("to_bytes, unmodified", to_bytes_unmodified),
    ("set(Max-Forwards) + to_bytes, modified", modify_and_to_bytes),
]


def measure(func: Callable[[], object], seconds: float, runs: int = 10) -> float:
    """Calls per second: the best of ``runs`` runs of seconds/runs each (the best run is
    the one least disturbed by other processes on a shared machine)."""
    batch = 1000
    best = 0.0
    for _ in range(runs):
        done = 0
        start = time.perf_counter()
        deadline = start + seconds / runs
        while True:
            for _ in range(batch):
                func()
            done += batch
            now = time.perf_counter()
            if now >= deadline:
                break
        best = max(best, done / (now - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per case")
    parser.add_argument("--profile", action="store_true", help="cProfile parse + reads")
    args = parser.parse_args()
    headers = len(_PARSED.header_items())
    print(f"INVITE: {len(INVITE)} bytes, {headers} headers")
    for name, func in CASES:
        print(f"{name:48s} {measure(func, args.seconds):>12,.0f} msg/s")
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(50_000):
            parse_and_read()
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
