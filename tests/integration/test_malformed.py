"""Malformed input over UDP and TCP never kills the switch nor leaks a transaction."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from config import load_config
from peers.switchproc import SwitchConfigFile, numbered_users
from softswitch.server import Switch

pytestmark = pytest.mark.integration

GOOD = (
    "REGISTER sip:pbx.test SIP/2.0\r\n"
    "Via: SIP/2.0/{transport} 127.0.0.1:{port};branch=z9hG4bK{branch};rport\r\n"
    "From: <sip:10000@pbx.test>;tag=f{branch}\r\n"
    "To: <sip:10000@pbx.test>\r\n"
    "Call-ID: {branch}@bad.test\r\n"
    "CSeq: 1 REGISTER\r\n"
    "Contact: <sip:10000@127.0.0.1:{port}>\r\n"
    "Max-Forwards: 70\r\n"
    "Content-Length: 0\r\n\r\n"
)


def _good(transport: str, port: int, branch: str) -> bytes:
    return GOOD.format(transport=transport, port=port, branch=branch).encode()


def _malformed(transport: str, port: int) -> list[tuple[str, bytes]]:
    """(label, bytes) of broken messages; each should be answered 4xx or dropped."""
    good = _good(transport, port, "base")
    head = good[: good.index(b"\r\n\r\n")]
    rng = random.Random(4475)
    cases = [
        ("garbage", bytes(rng.randrange(256) for _ in range(300))),
        ("text garbage", b"hello world\r\n\r\n"),
        ("truncated start line", b"REGISTER sip:pbx.te"),
        ("truncated headers", good[:120]),
        (
            "bad content-length",
            head.replace(b"Content-Length: 0", b"Content-Length: abc") + b"\r\n\r\n",
        ),
        (
            "negative content-length",
            head.replace(b"Content-Length: 0", b"Content-Length: -5") + b"\r\n\r\n",
        ),
        ("no cseq", head.replace(b"CSeq: 1 REGISTER\r\n", b"") + b"\r\n\r\n"),
        (
            "cseq method mismatch",
            head.replace(b"CSeq: 1 REGISTER", b"CSeq: 1 INVITE") + b"\r\n\r\n",
        ),
        ("huge header", head + b"\r\nX-Huge: " + b"a" * 70000 + b"\r\n\r\n"),
        ("many headers", head + b"".join(b"\r\nX-H%d: v" % i for i in range(2000)) + b"\r\n\r\n"),
        ("bad version", good.replace(b"SIP/2.0\r\n", b"SIP/7.0\r\n", 1)),
        ("nul bytes", good.replace(b"Call-ID: ", b"Call-ID: \x00\x00")),
        ("bad via", good.replace(b"Via: SIP/2.0/", b"Via: SIP/2.0/???")),
        ("bad uri", good.replace(b"REGISTER sip:pbx.test", b"REGISTER sip:@@::")),
    ]
    for i in range(40):  # random byte mutations of a valid message
        data = bytearray(good)
        for _ in range(rng.randrange(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        cases.append((f"mutation {i}", bytes(data)))
    return cases


@pytest.fixture
async def switch(tmp_path: Path):
    config = SwitchConfigFile(tmp_path, users=numbered_users(2), t1=0.02)
    instance = Switch(load_config(config.write()))
    await instance.start()
    yield instance
    await instance.stop()


async def _udp_exchange(port: int, data: bytes, wait: float = 0.05) -> list[bytes]:
    loop = asyncio.get_running_loop()
    received: list[bytes] = []

    class Client(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: object) -> None:
            received.append(data)

    transport, _ = await loop.create_datagram_endpoint(Client, remote_addr=("127.0.0.1", port))
    try:
        transport.sendto(data)
        await asyncio.sleep(wait)
    finally:
        transport.close()
    return received


async def _assert_still_serving(switch: Switch, port: int) -> None:
    answers = await _udp_exchange(port, _good("UDP", port, "alive"), wait=0.2)
    assert answers and answers[0].startswith(b"SIP/2.0 401"), answers


async def test_malformed_udp_is_answered_or_dropped(switch: Switch) -> None:
    port = switch.listening[0].port
    errors: list[object] = []
    asyncio.get_running_loop().set_exception_handler(lambda loop, ctx: errors.append(ctx))
    for label, data in _malformed("UDP", port):
        answers = await _udp_exchange(port, data)
        for answer in answers:
            status = int(answer.split(b" ", 2)[1])
            assert status == 401 or 400 <= status < 600, (label, answer[:200])
    await _assert_still_serving(switch, port)
    assert switch.counters.malformed > 10
    assert errors == []
    # Every transaction ends by its own timers: the table drains to empty.
    for _ in range(100):
        if switch.transactions.transaction_count == 0:
            break
        await asyncio.sleep(0.1)
    assert switch.transactions.transaction_count == 0


async def test_malformed_tcp_is_answered_or_closed(switch: Switch) -> None:
    port = switch.listening[1].port
    errors: list[object] = []
    asyncio.get_running_loop().set_exception_handler(lambda loop, ctx: errors.append(ctx))
    for label, data in _malformed("TCP", port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(data)
            if label.startswith("truncated"):
                writer.write_eof()  # a half message, then the peer goes away
            await writer.drain()
            try:
                answer = await asyncio.wait_for(reader.read(65536), 0.2)
            except TimeoutError:
                answer = b""
            if answer.startswith(b"SIP/2.0 "):
                status = int(answer.split(b" ", 2)[1])
                assert 400 <= status < 600, (label, answer[:200])
        except ConnectionError:
            pass  # closed by the switch: acceptable for garbage
        finally:
            writer.close()
    # Several messages in one write, then a keep-alive ping: all answered on the connection.
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(_good("TCP", port, "one") + _good("TCP", port, "two") + b"\r\n\r\n")
    await writer.drain()
    data = b""
    for _ in range(20):
        data += await asyncio.wait_for(reader.read(65536), 1.0)
        if data.count(b"SIP/2.0 401") == 2 and data.endswith(b"\r\n"):
            break
    writer.close()
    assert data.count(b"SIP/2.0 401") == 2
    await _assert_still_serving(switch, switch.listening[0].port)
    assert errors == []
    for _ in range(100):
        if switch.transactions.transaction_count == 0:
            break
        await asyncio.sleep(0.1)
    assert switch.transactions.transaction_count == 0
