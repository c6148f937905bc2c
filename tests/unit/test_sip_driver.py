"""The asyncio driver (softswitch.sip.driver) running the dialog layer on a real event loop
with no sockets: what a fuzzer or a test gets, the switch's own inbound path."""

from __future__ import annotations

import asyncio
import random

from softswitch.sip.address import Address
from softswitch.sip.dialog_layer import DialogLayer
from softswitch.sip.driver import SipDriver
from softswitch.sip.message import SipResponse, make_response, parse_message
from softswitch.sip.session import AckReceived, InviteReceived
from softswitch.sip.transaction import TimerSettings, TransactionLayer

PEER = Address("UDP", "203.0.113.5", 15062)


def _invite(cseq_method: str = "INVITE", to_tag: str = "", method: str = "INVITE") -> bytes:
    to = "<sip:bob@198.51.100.1>" + (f";tag={to_tag}" if to_tag else "")
    return (
        f"{method} sip:bob@198.51.100.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {PEER.host}:{PEER.port};branch=z9hG4bK{method}{to_tag};rport\r\n"
        "Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=a1\r\n"
        f"To: {to}\r\nCall-ID: drv-1\r\nCSeq: 1 {cseq_method}\r\n"
        "Contact: <sip:alice@203.0.113.5:15062>\r\nContent-Length: 0\r\n\r\n"
    ).encode()


class Uas:
    """A TU that answers every INVITE 200 and records what the layer hands up."""

    def __init__(self, layer: DialogLayer) -> None:
        self.layer = layer
        self.events: list[object] = []
        self.acked = asyncio.Event()

    def handle(self, event: object, now: float) -> None:
        self.events.append(event)
        if isinstance(event, InviteReceived):
            ok = make_response(event.request, 200, "OK", to_tag="b1")
            ok.add("Contact", "<sip:198.51.100.1:15060>")
            self.layer.answer(event.transaction, ok, now)
        elif isinstance(event, AckReceived):
            self.acked.set()


def _stack() -> tuple[DialogLayer, SipDriver, Uas, list[tuple[bytes, Address]]]:
    transactions = TransactionLayer(TimerSettings(t1=0.02, t2=0.08, t4=0.1))
    layer = DialogLayer(transactions, local=lambda dest: ("198.51.100.1", 15060))
    wire: list[tuple[bytes, Address]] = []
    uas = Uas(layer)
    driver = SipDriver(layer, handle_event=uas.handle, send=lambda d, a: wire.append((d, a)))
    return layer, driver, uas, wire


def _statuses(wire: list[tuple[bytes, Address]]) -> list[int | str]:
    out: list[int | str] = []
    for data, _ in wire:
        message = parse_message(data)
        out.append(message.status if isinstance(message, SipResponse) else message.method)
    return out


async def test_the_driver_runs_the_dialog_layer_timers_on_the_loop() -> None:
    layer, driver, uas, wire = _stack()
    driver.start()
    driver.on_message(_invite(), PEER)
    # the 2xx is retransmitted by the layer's timer, armed on the loop by the driver
    for _ in range(200):
        await asyncio.sleep(0.01)
        if _statuses(wire).count(200) >= 3:
            break
    assert _statuses(wire)[:2] == [100, 200] and _statuses(wire).count(200) >= 3
    driver.on_message(_invite("ACK", "b1", "ACK"), PEER)
    await asyncio.wait_for(uas.acked.wait(), 5)
    wire.clear()
    await asyncio.sleep(0.3)
    assert 200 not in _statuses(wire)  # no retransmission after the ACK
    assert len(layer) == 1
    driver.stop()


async def test_garbage_gets_an_error_answer_or_silence_and_never_raises() -> None:
    _, driver, _, wire = _stack()
    driver.start()
    rng = random.Random(14)
    valid = _invite()
    for _ in range(300):
        data = bytearray(valid)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        driver.on_message(bytes(data), PEER)
    driver.on_message(b"\x00\xffnot sip at all\r\n\r\n", PEER)
    driver.on_message(_invite(cseq_method="BYE"), PEER)  # CSeq method mismatch
    await asyncio.sleep(0)
    assert driver.counters.malformed >= 1
    for status in _statuses(wire):
        # 100/200: a mutation that left a valid INVITE, answered by the TU
        assert status in (100, 200, 505) or (isinstance(status, int) and 400 <= status < 500)
    driver.stop()
