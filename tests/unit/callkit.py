"""The call layer driven without sockets, for unit tests: the SIP stack's transaction and
dialog layers, the CallManager and a fake clock in :class:`Net`; callers and phones are
played by hand."""

from __future__ import annotations

import gc
import heapq
import itertools
from collections.abc import Callable
from typing import Any

from config.models import SwitchConfig
from softswitch.calls import CallManager
from softswitch.calls.anchor import MediaAnchor
from softswitch.directory import Directory
from softswitch.location import LocationService
from softswitch.security.tollfraud import TollFraudGuard
from softswitch.sip.address import Address
from softswitch.sip.auth import DigestAuthenticator, build_authorization
from softswitch.sip.dialog_layer import DialogLayer
from softswitch.sip.message import SipRequest, SipResponse, make_response, parse_message
from softswitch.sip.session import InviteReceived
from softswitch.sip.timers import TimerSettings
from softswitch.sip.transaction import (
    CancelReceived,
    RequestReceived,
    ResponseReceived,
    TransactionLayer,
    TransactionTimeout,
    TransportFailed,
)
from storage.base import Binding

CALLER = Address("UDP", "198.51.100.1", 5060)
SDP = (
    b"v=0\r\no=- 1 1 IN IP4 198.51.100.1\r\ns=-\r\nc=IN IP4 198.51.100.1\r\nt=0 0\r\n"
    b"m=audio 4000 RTP/AVP 0\r\n"
)


class _Handle:
    __slots__ = ("cancelled",)

    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Net:
    """A switch without sockets: everything sent is parsed and kept in ``out``."""

    def __init__(
        self,
        routing: dict[str, Any] | None = None,
        trunks: list[dict[str, Any]] | None = None,
        *,
        anchor: MediaAnchor | None = None,
        tollfraud: TollFraudGuard | None = None,
        **settings: Any,
    ) -> None:
        tenant: dict[str, Any] = {
            "name": "t",
            "domain": "pbx.test",
            "users": [{"extension": e, "password": f"pw{e}"} for e in ("100", "102", "200")],
            **settings,
        }
        if routing:
            tenant["routing"] = routing
        if trunks:
            tenant["trunks"] = trunks
        config = SwitchConfig.model_validate({"tenants": [tenant]})
        self.now = 0.0
        self.layer = TransactionLayer(TimerSettings())
        self.dialogs = DialogLayer(
            self.layer,
            local=lambda dest: ("192.0.2.1", 5060),
            allow="INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE, INFO",
            server_header="test",
            answer_no_dialog=False,
        )
        self.location = LocationService(store=None)  # type: ignore[arg-type]  # never flushed
        self.cdrs: list[Any] = []
        self._timers: list[tuple[float, int, _Handle, Callable[..., None], tuple[Any, ...]]] = []
        self._seq = itertools.count()
        self.out: list[tuple[SipRequest | SipResponse, Address]] = []
        self.mgr = CallManager(
            self.dialogs,
            directory=Directory(config, frozenset({"192.0.2.1"})),
            location=self.location,
            authenticator=DigestAuthenticator(
                b"secret", algorithms=("MD5",), clock=lambda: 1000.0 + self.now
            ),
            clock=lambda: self.now,
            schedule=self._schedule,
            local=lambda dest: ("192.0.2.1", 5060),
            on_cdr=self.cdrs.append,
            allow="INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE, INFO",
            server_header="test",
            tenants=config.tenants,
            anchor=anchor,
            tollfraud=tollfraud,
        )

    def _schedule(self, delay: float, callback: Callable[..., None], *args: Any) -> _Handle:
        handle = _Handle()
        heapq.heappush(self._timers, (self.now + delay, next(self._seq), handle, callback, args))
        return handle

    # -- driving ---------------------------------------------------------------------------
    def register(self, ext: str, host: str) -> Address:
        source = Address("UDP", host, 5060)
        binding = Binding(
            f"sip:{ext}@pbx.test",
            f"sip:{ext}@{host}:5060",
            1e12,
            None,
            f"reg-{host}",
            1,
            None,
            None,
            [],
            str(source),
            "UDP",
            None,
            0.0,
        )
        self.location.update(binding.aor, [(binding, source)])
        return source

    def deliver(self, message: SipRequest | SipResponse, source: Address) -> None:
        parsed = parse_message(message.to_bytes())
        self.dialogs.receive_message(parsed, source, self.now)
        self._pump()

    def advance(self, seconds: float, step: float = 0.25) -> None:
        end = self.now + seconds
        for _ in range(int(seconds / step) + 2):  # bounded
            if self.now >= end:
                break
            self.now = min(end, self.now + step)
            while self._timers and self._timers[0][0] <= self.now:
                _, _, handle, callback, args = heapq.heappop(self._timers)
                if not handle.cancelled:
                    callback(*args)
            self.dialogs.handle_timer(self.now)
            self._pump()

    def _pump(self) -> None:
        mgr, layer = self.mgr, self.layer
        for _ in range(10_000):
            event = self.dialogs.next_event()
            if event is None:
                break
            if isinstance(event, InviteReceived):
                mgr.on_invite(event.request, event.source, event.transaction)
            elif isinstance(event, RequestReceived):
                request, tx = event.request, event.transaction
                if tx is not None:  # a request in no dialog (an ACK matching nothing: absorbed)
                    layer.send_response(tx, make_response(request, 481), self.now)
            elif isinstance(event, ResponseReceived):
                mgr.on_response(event.response, event.transaction)
            elif isinstance(event, CancelReceived):
                mgr.on_cancel(event.invite_transaction)
            elif isinstance(event, TransactionTimeout | TransportFailed):
                mgr.on_transaction_failed(event.transaction, isinstance(event, TransactionTimeout))
            else:
                mgr.on_dialog_event(event)
        for data, dest in layer.datagrams_to_send(self.now):
            self.out.append((parse_message(data), dest))

    # -- reading what went out ---------------------------------------------------------------
    def take(self, dest: Address | None = None) -> list[SipRequest | SipResponse]:
        """Messages sent (to ``dest``) since the last take, oldest first."""
        found = [m for m, d in self.out if dest is None or d.host == dest.host]
        self.out = [(m, d) for m, d in self.out if not (dest is None or d.host == dest.host)]
        return found

    def requests(self, dest: Address, method: str) -> list[SipRequest]:
        """Requests sent to ``dest``; retransmissions (same branch) counted once."""
        seen: dict[str, SipRequest] = {}
        for m, d in self.out:
            if isinstance(m, SipRequest) and m.method == method and d.host == dest.host:
                assert m.top_via is not None
                seen.setdefault(f"{m.top_via.branch}", m)
        return list(seen.values())

    def statuses(self, dest: Address = CALLER) -> list[int]:
        return [m.status for m, d in self.out if isinstance(m, SipResponse) and d == dest]


def invite(
    dialled: str = "102",
    cseq: int = 1,
    auth: str | None = None,
    call_id: str = "call-1",
    from_user: str = "100",
) -> SipRequest:
    headers = [
        ("Via", f"SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bKcaller{cseq}{call_id}"),
        ("Max-Forwards", "70"),
        ("From", f'"Alice" <sip:{from_user}@pbx.test>;tag=alice'),
        ("To", f"<sip:{dialled}@pbx.test>"),
        ("Call-ID", call_id),
        ("CSeq", f"{cseq} INVITE"),
        ("Contact", "<sip:100@198.51.100.1:5060>"),
        ("Content-Type", "application/sdp"),
    ]
    if auth:
        headers.append(("Proxy-Authorization", auth))
    return SipRequest("INVITE", f"sip:{dialled}@pbx.test", headers, SDP)


def place_call(
    net: Net, dialled: str = "102", password: str = "pw100", call_id: str = "call-1"
) -> SipRequest:
    """INVITE, 407, ACK, INVITE with credentials; returns the authenticated INVITE."""
    net.deliver(invite(dialled, call_id=call_id), CALLER)
    challenge = next(m for m in net.take(CALLER) if isinstance(m, SipResponse) and m.status == 407)
    value = challenge.get("Proxy-Authenticate")
    assert value is not None
    auth = build_authorization(value, "INVITE", f"sip:{dialled}@pbx.test", "100", password)
    request = invite(dialled, 2, auth, call_id)
    net.deliver(request, CALLER)
    return request


def answer(
    net: Net, request: SipRequest, status: int, source: Address, tag: str, body: bytes = b""
) -> None:
    response = make_response(request, status, to_tag=tag, body=body)
    response.add("Contact", f"<sip:102@{source.host}:5060>")
    if body:
        response.add("Content-Type", "application/sdp")
    net.deliver(response, source)


def caller_request(net: Net, method: str, cseq: int, final: SipResponse) -> SipRequest:
    """An in-dialog request from the caller, addressed per the switch's 200."""
    to = final.get("To")
    assert to is not None
    headers = [
        ("Via", f"SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bK{method}{cseq}"),
        ("Max-Forwards", "70"),
        ("From", '"Alice" <sip:100@pbx.test>;tag=alice'),
        ("To", to),
        ("Call-ID", "call-1"),
        ("CSeq", f"{cseq} {method}"),
    ]
    return SipRequest(method, "sip:192.0.2.1:5060", headers)


def cyclic_garbage() -> set[str]:
    """Names of our types the cyclic collector would have to free."""
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        ours = ("softswitch", "storage", "routing", "media")
        return {type(o).__name__ for o in gc.garbage if type(o).__module__.startswith(ours)}
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
