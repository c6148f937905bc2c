"""Trunk registration as a UAC, driven by hand: digest answer, refresh, back-off."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from config.models import SwitchConfig
from softswitch.sip.address import Address
from softswitch.sip.auth import DigestAuthenticator
from softswitch.sip.message import SipRequest, make_response, parse_message
from softswitch.sip.transaction import (
    ResponseReceived,
    TransactionLayer,
    TransactionTimeout,
)
from softswitch.trunkreg import BACKOFF_MAX, TrunkRegistrar

CARRIER = Address("UDP", "192.0.2.50", 5060)


class Harness:
    def __init__(self) -> None:
        config = SwitchConfig.model_validate(
            {
                "tenants": [
                    {
                        "name": "t",
                        "domain": "pbx.test",
                        "trunks": [
                            {
                                "name": "c",
                                "registration": True,
                                "username": "u",
                                "password": "p",
                                "register_domain": "carrier.test",
                                "register_expires": 300,
                                "gateways": [{"host": "192.0.2.50"}],
                            }
                        ],
                    }
                ]
            }
        )
        self.now = 0.0
        self.layer = TransactionLayer()
        self.delays: list[float] = []
        self.pending: list[tuple[Any, tuple[Any, ...]]] = []
        self.registrar = TrunkRegistrar(
            self.layer,
            tenants=config.tenants,
            clock=lambda: self.now,
            schedule=self._schedule,
            local=lambda dest: ("192.0.2.1", 5060),
            server_header="test",
        )
        self.sent: list[SipRequest] = []

    def _schedule(self, delay: float, callback: Any, *args: Any) -> Any:
        self.delays.append(delay)
        self.pending.append((callback, args))

        class Handle:
            def cancel(self) -> None:
                pass

        return Handle()

    def pump(self) -> None:
        for _ in range(100):
            event = self.layer.next_event()
            if event is None:
                break
            if isinstance(event, ResponseReceived):
                self.registrar.on_response(event.response, event.transaction)
            elif isinstance(event, TransactionTimeout):
                self.registrar.on_transaction_failed(event.transaction)
        for data, _ in self.layer.datagrams_to_send(self.now):
            message = parse_message(data)
            if isinstance(message, SipRequest):
                self.sent.append(message)

    def reply(self, status: int, **headers: str) -> None:
        request = self.sent[-1]
        response = make_response(request, status, to_tag="carrier")
        for name, value in headers.items():
            response.add(name.replace("_", "-"), value)
        self.layer.receive_message(parse_message(response.to_bytes()), CARRIER, self.now)
        self.pump()

    def fire(self) -> None:
        callback, args = self.pending.pop(0)
        callback(*args)
        self.pump()


def test_challenge_answered_and_refresh_before_expiry() -> None:
    h = Harness()
    h.registrar.start()
    h.pump()
    first = h.sent[-1]
    assert first.method == "REGISTER" and first.uri == "sip:carrier.test"
    assert first.get("Expires") == "300" and first.get("Authorization") is None
    verifier = DigestAuthenticator(b"k", algorithms=("MD5",))
    h.reply(401, WWW_Authenticate=verifier.challenge("carrier.test")[0])
    second = h.sent[-1]
    assert second.cseq == (2, "REGISTER") and second.call_id == first.call_id
    result = verifier.verify(
        "REGISTER",
        second.get("Authorization") or "",
        "carrier.test",
        lambda user, realm, alg: hashlib.md5(f"{user}:{realm}:p".encode()).hexdigest(),
    )
    assert result.ok and result.username == "u"
    h.reply(200, Contact=f"{second.get('Contact')};expires=120")
    assert h.registrar.registrations[0].registered
    assert h.delays[-1] == 90.0  # 30 s before the 120 s granted
    h.fire()
    assert h.sent[-1].cseq == (3, "REGISTER") and h.sent[-1].call_id == first.call_id


@pytest.mark.parametrize("status", [403, 503])
def test_failures_back_off_exponentially(status: int) -> None:
    h = Harness()
    h.registrar.start()
    h.pump()
    for _ in range(12):
        h.reply(status)
        h.fire()
    assert h.delays[:5] == [2.0, 4.0, 8.0, 16.0, 32.0]
    assert max(h.delays) == BACKOFF_MAX
    assert not h.registrar.registrations[0].registered


def test_no_answer_is_a_failure() -> None:
    h = Harness()
    h.registrar.start()
    h.pump()
    h.now = 40.0
    h.layer.handle_timer(h.now)
    h.pump()
    assert h.delays == [2.0]
