"""The switch answers the RFC 4475 / RFC 5118 torture corpus over TCP as it does over UDP.

Each message goes to a running switch's TCP listener on a real connection, followed on the
same connection by an OPTIONS probe: the probe's answer marks the end of what the message
got, so no test waits for silence. Over a stream the answers come back on the connection
(RFC 3261 18.2.2), whatever host the message's Via names. A message a stream cannot
carry is met as ``TORTURE_STREAM`` (tests/unit/torture_expectations.py) says, with the
reason for each, and the switch still answers a fresh connection afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from config import load_config
from peers.switchproc import SwitchConfigFile, numbered_users
from softswitch.server import Switch
from softswitch.sip.address import Address
from softswitch.sip.framing import FramingError, StreamFramer
from tests.integration.capture import capture_sends, release_sends
from tests.integration.torturekit import CASES, case_bytes, satisfies
from tests.unit.torture_expectations import TORTURE_STREAM as STREAM
from tests.unit.torture_expectations import TORTURE_STREAM_REQUESTS as REQUESTS_IN
from tests.unit.torture_expectations import WAITS

pytestmark = pytest.mark.integration

HOST = "127.0.0.1"
WAIT = 10.0  # bound on one exchange; a failure, never an expectation


@dataclass
class Exchange:
    """What one message sent on a fresh connection got back."""

    answers: list[tuple[str, int]]  # (Call-ID, status) of each response to the message
    probe_answered: bool
    closed: bool  # the switch closed the connection


def _probe(port: int, call_id: str, transport: str = "TCP") -> bytes:
    return (
        f"OPTIONS sip:{HOST}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} {HOST}:9;branch=z9hG4bK{uuid.uuid4().hex}\r\n"
        f"Max-Forwards: 70\r\nFrom: <sip:probe@{HOST}>;tag=p1\r\nTo: <sip:{HOST}:{port}>\r\n"
        f"Call-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def _call_id_and_status(response: bytes) -> tuple[str, int]:
    head, _, _ = response.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() in (b"call-id", b"i"):
            return value.strip().decode(errors="replace"), status
    return "", status


async def exchange(port: int, data: bytes, *, end_with_eof: bool = False) -> Exchange:
    """Send ``data`` then a probe on one connection; read until the probe's answer or EOF.

    ``end_with_eof`` sends no probe and half-closes our side after ``data`` instead, for a
    message that leaves the switch waiting for bytes that never come.
    """
    probe_id = f"probe-{uuid.uuid4().hex}"
    reader, writer = await asyncio.open_connection(HOST, port)
    framer = StreamFramer(1 << 20)
    result = Exchange([], probe_answered=False, closed=False)
    try:
        if end_with_eof:
            writer.write(data)
            writer.write_eof()
        else:
            writer.write(data + _probe(port, probe_id))
        async with asyncio.timeout(WAIT):
            while not result.probe_answered:
                try:
                    chunk = await reader.read(65536)
                except ConnectionResetError:  # closed with bytes of ours unread: a close
                    chunk = b""
                if not chunk:
                    result.closed = True
                    break
                for item in framer.feed(chunk):
                    assert not isinstance(item, FramingError), (item, chunk)
                    if isinstance(item, bytes) and item.startswith(b"SIP/2.0 "):
                        call_id, status = _call_id_and_status(item)
                        if call_id == probe_id:
                            result.probe_answered = True
                        else:
                            result.answers.append((call_id, status))
    finally:
        writer.close()
    return result


@contextlib.asynccontextmanager
async def running_switch(directory: Path) -> AsyncIterator[Switch]:
    config = SwitchConfigFile(directory, users=numbered_users(2))
    running = Switch(load_config(config.write()))
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def switch(tmp_path: Path) -> AsyncIterator[Switch]:
    async with running_switch(tmp_path / "tcp") as running:
        yield running


async def _over_udp(directory: Path, data: bytes) -> list[int]:
    """The statuses a switch of its own (the transaction layer would take the same bytes
    for a retransmission) answers ``data`` with as a datagram, up to the answer to a probe
    datagram sent after it; captured, not sent: the corpus's Via hosts are not ours."""
    probe_id = f"probe-{uuid.uuid4().hex}"
    async with running_switch(directory) as switch:
        sent = capture_sends(switch)
        try:
            source = Address("UDP", "192.0.2.7", 5060)
            switch._on_message(data, source)
            switch._on_message(_probe(_port(switch), probe_id, "UDP"), source)
            async with asyncio.timeout(WAIT):
                while not any(probe_id.encode() in m for m in sent):
                    await asyncio.sleep(0.01)
        finally:
            release_sends(switch)
    return [
        int(m.split(b" ", 2)[1])
        for m in sent
        if m.startswith(b"SIP/2.0 ") and probe_id.encode() not in m
    ]


def _first_final(statuses: list[int]) -> int | None:
    return next((status for status in statuses if status >= 200), None)


def _port(switch: Switch) -> int:
    return int(switch.transports.local_address("TCP").port)


@pytest.mark.parametrize(("corpus", "case"), CASES, ids=[str(c["name"]) for _, c in CASES])
async def test_torture_case_over_tcp(
    switch: Switch, tmp_path: Path, corpus: str, case: dict[str, object]
) -> None:
    name = str(case["name"])
    port = _port(switch)
    stream = STREAM.get(name, "open")
    got = await exchange(port, case_bytes(corpus, case), end_with_eof=stream == WAITS)
    statuses = [status for _, status in got.answers]
    expect = str(case.get("expect_class_tcp", case["expect_class"]))
    assert satisfies(expect, statuses), (name, expect, got)
    if stream == "open":
        assert got.probe_answered and not got.closed, (name, got)
    else:
        assert got.closed and not got.probe_answered, (name, got)
    if stream == WAITS:
        assert not got.answers, (name, got)
    finals = {call_id for call_id, status in got.answers if status >= 200}
    assert len(finals) == REQUESTS_IN.get(name, len(finals)), (name, got)
    if stream == "open":  # the same first answer as the same bytes in a UDP datagram
        udp = await _over_udp(tmp_path / "udp", case_bytes(corpus, case))
        assert _first_final(statuses) == _first_final(udp), (name, statuses, udp)
    after = await exchange(port, b"")
    assert after.probe_answered and not after.answers, f"switch not answering after {name}"


def test_stream_table_names_corpus_cases() -> None:
    assert set(STREAM) <= {str(case["name"]) for _, case in CASES}


async def test_corpus_back_to_back_in_one_segment(switch: Switch) -> None:
    """Every corpus request that frames on a stream, back to back in a single write: the
    connection survives them all and still answers the probe after them. (Many cases share
    a Via branch, so the switch rightly takes some for retransmissions: the answers are
    not counted per message here; each case alone is checked above.)"""
    data = b"".join(
        case_bytes(corpus, case)
        for corpus, case in CASES
        if case["kind"] == "request" and str(case["name"]) not in STREAM
    )
    got = await exchange(_port(switch), data)
    assert got.probe_answered and not got.closed, got
    assert got.answers and all(status != 500 for _, status in got.answers), got
