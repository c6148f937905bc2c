"""What the switch answers to requests it handles itself, over a real UDP socket."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from config import load_config
from peers.switchproc import SwitchConfigFile, numbered_users
from softswitch.server import Switch
from softswitch.sip.address import Address
from tests.integration.capture import capture_sends

pytestmark = pytest.mark.integration


def _request(
    method: str,
    port: int,
    local: int,
    *,
    version: str = "SIP/2.0",
    extra: str = "",
    max_forwards: int = 70,
) -> bytes:
    branch = "z9hG4bK" + uuid.uuid4().hex
    return (
        f"{method} sip:pbx.test SIP/2.0\r\n".replace("SIP/2.0", version, 1)
        + f"Via: SIP/2.0/UDP 127.0.0.1:{local};branch={branch};rport\r\n"
        f"Max-Forwards: {max_forwards}\r\nFrom: <sip:probe@pbx.test>;tag=t1\r\n"
        f"To: <sip:pbx.test>\r\nCall-ID: {uuid.uuid4().hex}\r\nCSeq: 1 {method}\r\n"
        f"{extra}Content-Length: 0\r\n\r\n"
    ).encode()


@pytest.fixture
async def switch(tmp_path: Path):
    config = SwitchConfigFile(tmp_path, users=numbered_users(1))
    instance = Switch(load_config(config.write()))
    await instance.start()
    yield instance
    await instance.stop()


CASES = [
    # (label, method, options, expected status, headers that must be present)
    ("options", "OPTIONS", {}, 200, ("Allow:", "Accept:", "Supported:")),
    ("options with max-forwards 0", "OPTIONS", {"max_forwards": 0}, 200, ()),
    ("unknown method", "FOO", {}, 501, ("Allow:",)),
    ("known method not allowed here", "MESSAGE", {}, 405, ("Allow:",)),
    ("subscribe to no event package", "SUBSCRIBE", {}, 489, ("Allow-Events: dialog",)),
    (
        "unsupported extension",
        "OPTIONS",
        {"extra": "Require: foo, path\r\n"},
        420,
        ("Unsupported: foo",),
    ),
    ("max-forwards exhausted", "MESSAGE", {"max_forwards": 0}, 483, ()),
    ("wrong SIP version", "OPTIONS", {"version": "SIP/7.0"}, 505, ()),
    (
        "register for a domain not served",
        "REGISTER",
        {"extra": "Contact: <sip:x@127.0.0.1:1>\r\n"},
        404,
        (),
    ),
]


@pytest.mark.parametrize(
    ("label", "method", "options", "status", "must_have"), CASES, ids=[c[0] for c in CASES]
)
async def test_core_answer(
    switch: Switch,
    label: str,
    method: str,
    options: dict[str, object],
    status: int,
    must_have: tuple[str, ...],
) -> None:
    loop = asyncio.get_running_loop()
    answers: list[bytes] = []

    class Client(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: object) -> None:
            answers.append(data)

    port = switch.listening[0].port
    transport, _ = await loop.create_datagram_endpoint(
        Client, local_addr=("127.0.0.1", 0), remote_addr=("127.0.0.1", port)
    )
    try:
        local = transport.get_extra_info("sockname")[1]
        data = _request(method, port, local, **options)  # type: ignore[arg-type]
        if label == "register for a domain not served":
            data = data.replace(b"sip:pbx.test", b"sip:elsewhere.test").replace(
                b"To: <sip:elsewhere.test>", b"To: <sip:10000@elsewhere.test>"
            )
        transport.sendto(data)
        for _ in range(40):
            if answers:
                break
            await asyncio.sleep(0.025)
    finally:
        transport.close()
    assert answers, label
    answer = answers[-1].decode()
    assert answer.startswith(f"SIP/2.0 {status} "), answer
    for header in must_have:
        assert header in answer, (header, answer)


@pytest.mark.parametrize("burst", [1, 3, 20])
async def test_answers_of_one_burst_leave_together_in_order(switch: Switch, burst: int) -> None:
    # Messages handed up in one loop iteration are answered back to back once the loop
    # moves on (one wake-up of the peer per burst), in arrival order, none lost.
    sent = capture_sends(switch)
    source = Address("UDP", "127.0.0.1", 40000)
    call_ids = []
    for _ in range(burst):
        data = _request("OPTIONS", switch.listening[0].port, 40000)
        call_ids.append(data.split(b"Call-ID: ")[1].split(b"\r\n")[0])
        switch._on_message(data, source)
    assert sent == []  # queued until the loop has handed up the whole burst
    await asyncio.sleep(0)
    assert [m.split(b"Call-ID: ")[1].split(b"\r\n")[0] for m in sent] == call_ids
    assert all(m.startswith(b"SIP/2.0 200 ") for m in sent)


async def test_queued_answers_leave_before_the_switch_stops(tmp_path: Path) -> None:
    config = SwitchConfigFile(tmp_path, users=numbered_users(1))
    instance = Switch(load_config(config.write()))
    await instance.start()
    sent = capture_sends(instance)
    instance._on_message(
        _request("OPTIONS", config.port, 40000), Address("UDP", "127.0.0.1", 40000)
    )
    await instance.stop()  # before the loop ever ran the scheduled send
    assert len(sent) == 1 and sent[0].startswith(b"SIP/2.0 200 ")
