"""The call manager: where the switch hands INVITEs, in-dialog requests, CANCELs and the
responses of call legs; it authenticates callers, asks routing for a plan, and does the
SIP work of every ``Call`` (building legs, relaying, ACK/CANCEL/BYE, 2xx retransmission).

Timers are loop timer handles (``schedule``), never tasks; the host drains the transaction
layer after each callback.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import structlog

from config.models import Tenant
from config.routing import TenantRouting
from config.trunks import Gateway, Trunk
from media.dtmf import Digit
from routing.engine import plan_call
from routing.facts import CallFacts
from routing.plan import Target
from softswitch.calls.anchor import CallMedia, MediaAnchor, MediaRefused, worst_mos
from softswitch.calls.apps import AppCall, Application, CallRefused, run_application
from softswitch.calls.call import Call, CallState
from softswitch.calls.identity import (
    CallerIdentity,
    diversion_headers,
    is_withheld,
    phone_identity,
    subscriber_caller,
    trunk_caller,
    trunk_identity,
)
from softswitch.calls.leg import Leg, LegState, response_sdp
from softswitch.calls.loops import LoopGuard
from softswitch.calls.media import leg_sdp
from softswitch.dialog import Dialog, uri_address
from softswitch.directory import Directory, Domain, Subscriber
from softswitch.location import LocationService
from softswitch.sip.address import Address
from softswitch.sip.auth import DigestAuthenticator, realm_of
from softswitch.sip.headers import parse_name_addr
from softswitch.sip.message import (
    REASON_PHRASES,
    SipParseError,
    SipRequest,
    SipResponse,
    make_response,
    new_call_id,
    new_tag,
)
from softswitch.sip.timers import TimerSettings
from softswitch.sip.transaction import (
    ClientTransaction,
    ServerTransaction,
    Transaction,
    TransactionLayer,
)
from storage.base import Binding
from storage.cdr import Cdr

__all__ = ["CallManager", "Cancellable", "Scheduler"]

log = structlog.get_logger(__name__)

#: Headers carried from one leg's in-dialog request to the other's (besides the body).
_RELAYED_HEADERS = ("Content-Disposition", "Info-Package", "Recv-Info")
#: The smallest session interval accepted (RFC 4028 4: at least 90 s).
MIN_SE = 90
#: Seconds a caller refused by call admission control is asked to wait.
RETRY_AFTER = 5
_ELSEWHERE = 'SIP;cause=200;text="Call completed elsewhere"'


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class Scheduler(Protocol):
    def __call__(self, delay: float, callback: Callable[..., None], *args: Any) -> Any: ...


@dataclass(slots=True)
class _Transfer:
    """A blind transfer: ``transferor`` sent REFER; ``transferee`` moves from ``old`` to
    ``call``, which rings the target named in Refer-To."""

    old: Call
    transferor: Leg
    transferee: Leg
    call: Call
    notified_ringing: bool = False


@dataclass(slots=True)
class _TransferReinvite:
    """The re-INVITE that gives the transferee the transfer target's SDP offer."""

    transfer: _Transfer
    target: Leg
    request: SipRequest
    ack: SipRequest | None = None


@dataclass(slots=True)
class _Relay:
    """An in-dialog request relayed from ``source`` leg to ``target`` leg."""

    source: Leg
    target: Leg
    server_tx: ServerTransaction
    request: SipRequest
    out: SipRequest
    response: SipResponse | None = None
    ack: SipRequest | None = None
    deferred: bool = False  # the 2xx carried the offer: the ACK waits for the answer


class _Registered(Mapping[str, int]):
    """Registered device counts per extension, read from the location service on demand."""

    __slots__ = ("_domain", "_location", "_tenant")

    def __init__(self, location: LocationService, tenant: Tenant, domain: str) -> None:
        self._location = location
        self._tenant = tenant
        self._domain = domain

    def __getitem__(self, extension: str) -> int:
        count = len(self._location.bindings(f"sip:{extension}@{self._domain}"))
        if not count:
            raise KeyError(extension)
        return count

    def __iter__(self) -> Iterator[str]:
        return (u.extension for u in self._tenant.users if u.extension in self)

    def __len__(self) -> int:
        return sum(1 for _ in self)


class _RateLimit:
    """A token bucket: ``rate`` new calls per second, bursts of up to one second's worth."""

    __slots__ = ("rate", "stamp", "tokens")

    def __init__(self, rate: float, now: float) -> None:
        self.rate = rate
        self.tokens = max(rate, 1.0)
        self.stamp = now

    def take(self, now: float) -> bool:
        self.tokens = min(max(self.rate, 1.0), self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


def _configured_routing(tenant: Tenant) -> TenantRouting:
    return tenant.routing


class CallManager:
    """Every call of the switch; see the module docstring."""

    def __init__(
        self,
        transactions: TransactionLayer,
        *,
        directory: Directory,
        location: LocationService,
        authenticator: DigestAuthenticator,
        timers: TimerSettings,
        clock: Callable[[], float],
        schedule: Scheduler,
        local: Callable[[Address], tuple[str, int]],
        on_cdr: Callable[[Cdr], None],
        allow: str,
        server_header: str,
        tenants: Sequence[Tenant] = (),
        local_hosts: frozenset[str] = frozenset(),
        routing_for: Callable[[Tenant], TenantRouting] | None = None,
        anchor: MediaAnchor | None = None,
    ) -> None:
        self.tx = transactions
        self.anchor = anchor  # None: SDP passes through and phones exchange RTP directly
        # Applications (conference bridges, monitoring...): ``services`` may claim a call
        # by what was dialled before routing (feature codes); ``applications`` run a
        # routing plan's final destination of their kind (TargetKind value).
        self.services: list[Callable[[Call], Application | None]] = []
        self.applications: dict[str, Callable[[Call, Target], Application | None]] = {}
        # The tenant's routing as calls should see it now: the configuration with the
        # disaster plans' stored state merged in (softswitch.routing_state.DisasterState).
        self.routing_for: Callable[[Tenant], TenantRouting] = (
            routing_for if routing_for is not None else _configured_routing
        )
        self.directory = directory
        self.location = location
        self.auth = authenticator
        self.timers = timers
        self.clock = clock
        self.schedule_raw = schedule
        self.local = local
        self.on_cdr = on_cdr
        self.allow = allow
        self.server_header = server_header
        self.tenants: dict[str, Tenant] = {}
        self._trunk_sources: list[
            tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, Tenant, Trunk]
        ] = []
        self.replace_tenants(tenants)
        self.calls: dict[str, Call] = {}
        self.calls_in_setup = 0  # calls neither answered nor ended (kept by Call.state)
        self.loops = LoopGuard(local_hosts)
        self._dialogs: dict[tuple[str, str], Leg] = {}
        self._busy: dict[str, dict[str, int]] = {}
        self._tenant_calls: dict[str, int] = {}
        self._trunk_calls: dict[tuple[str, str], int] = {}
        self._rates: dict[tuple[str, str], _RateLimit] = {}
        self.counters: dict[str, int] = {
            "calls": 0,
            "answered": 0,
            "challenged": 0,
            "rejected": 0,
            "over_limit": 0,
            "loops": 0,
        }

    def __len__(self) -> int:
        return len(self.calls)

    def replace_tenants(self, tenants: Sequence[Tenant]) -> None:
        """The provisioning new calls see (softswitch.provisioning swaps it live); calls in
        progress go on."""
        self.tenants = {t.name: t for t in tenants}
        # Inbound trunk sources: (network, tenant, trunk), most specific network first.
        self._trunk_sources = sorted(
            ((net, t, trunk) for t in tenants for trunk in t.trunks for net in trunk.networks()),
            key=lambda item: -item[0].prefixlen,
        )

    @property
    def dialog_count(self) -> int:
        """Legs findable by in-dialog requests (for leak checks)."""
        return len(self._dialogs)

    # ================================================================= entry points
    def on_invite(self, request: SipRequest, source: Address, tx: ServerTransaction) -> None:
        """A new INVITE (no To tag) that passed the switch's checks."""
        ruri = request.ruri
        if not ruri.is_sip or not ruri.user:
            self._respond(tx, 484, "Address Incomplete")
            return
        if self.loops.looped(request):
            self.counters["loops"] += 1
            log.warning("loop_detected", call_id=request.call_id, dialled=ruri.user)
            self._respond(tx, 482, "Loop Detected")
            return
        from_ = request.from_
        assert from_ is not None
        trunk_source = self._trunk_for(source.host)
        if trunk_source is not None:
            tenant, trunk = trunk_source
            self._start_call(
                request, source, tx, tenant, trunk_caller(request, trunk), ruri.user, trunk=trunk
            )
            return
        domain = self.directory.domain_for(ruri.host)
        if domain is None:
            self._respond(tx, 404, "Domain Not Served")
            return
        withheld = is_withheld(request)
        if (
            not request.get_all("Proxy-Authorization")
            and not withheld
            and self.directory.domain_for(from_.uri.host or "") is None
        ):
            # Neither one of our subscribers nor a listed trunk address.
            self.counters["rejected"] += 1
            self._respond(tx, 403, "Forbidden")
            return
        subscriber = self._authenticate(request, tx, domain)
        if subscriber is None:
            return
        user = subscriber.user
        if from_.uri.user not in (user.extension, user.username) and not withheld:
            self.counters["rejected"] += 1
            self._respond(tx, 403, "Forbidden")
            return
        self._start_call(
            request, source, tx, domain.tenant, subscriber_caller(request, user), ruri.user
        )

    def _trunk_for(self, host: str) -> tuple[Tenant, Trunk] | None:
        if not self._trunk_sources:
            return None
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return None
        for network, tenant, trunk in self._trunk_sources:
            if address.version == network.version and address in network:
                return tenant, trunk
        return None

    def on_in_dialog(self, request: SipRequest, source: Address, tx: ServerTransaction) -> bool:
        """A request with a To tag; False when no call knows the dialog."""
        to = request.to
        leg = self._dialogs.get((request.call_id or "", to.tag or "")) if to else None
        if leg is None:
            return False
        method = request.method
        if method == "OPTIONS":
            self._respond(tx, 200, "OK", allow=True)
            return True
        dialog = leg.dialog
        if dialog is None or leg.call.state is CallState.ENDED:
            self._respond(tx, 481, "Call/Transaction Does Not Exist")
            return True
        if not dialog.accept_cseq(request):
            self._respond(tx, 500, "CSeq Out of Order")
            return True
        if method == "BYE":
            self._on_bye(leg, tx)
        elif method in ("INVITE", "UPDATE", "INFO"):
            self._relay_request(leg, request, tx)
        elif method == "REFER":
            self._on_refer(leg, request, tx)
        else:
            self._respond(tx, 405, "Method Not Allowed", allow=True)
        return True

    def on_ack(self, request: SipRequest) -> None:
        """An ACK for a 2xx (no transaction)."""
        to = request.to
        leg = self._dialogs.get((request.call_id or "", to.tag or "")) if to else None
        if leg is None or leg.ack_wait is None:
            return
        cseq = request.cseq
        number, relay = leg.ack_wait
        if cseq is None or cseq[0] != number:
            return
        leg.ack_wait = None
        if leg.rtx is not None:
            leg.rtx.cancel()
            leg.rtx = None
        body = request.body
        if body and leg.media is not None and self.anchor is not None:
            self.anchor.ack_answer(leg, body)  # the answer to the offer in our 2xx
            return
        if body:
            body = leg_sdp(body, leg.peer.host)
        call = leg.call
        if relay is None:
            if call.ack_deferred and call.winner is not None:
                call.ack_deferred = False
                self.send_ack(call.winner, body, request.get("Content-Type"))
        elif isinstance(relay, _Relay):
            relay.source.pending = None
            if relay.deferred and relay.target.dialog is not None:
                dest = self._dest(relay.target)
                relay.ack = relay.target.dialog.build_ack(
                    relay.out.cseq[0] if relay.out.cseq else 0,
                    self._via(dest),
                    body,
                    request.get("Content-Type"),
                )
                self.tx.send_stateless(relay.ack, dest)

    def on_response(self, response: SipResponse, ctx: ClientTransaction) -> bool:
        """A response to a request a call sent; False if it is none of ours."""
        app = ctx.app_data
        if isinstance(app, Leg):
            if ctx.method != "INVITE":
                return True
            leg = app
            status = response.status
            if status < 200:
                if leg.active:
                    leg.call.leg_provisional(leg, response)
            elif status < 300:
                if leg.dialog is not None:
                    self.resend_ack(leg)  # a retransmitted 2xx (none yet if deferred)
                else:
                    leg.call.leg_answered(leg, response)
            elif leg.active:
                leg.call.leg_failed(leg, status, response.reason)
            return True
        if isinstance(app, _Relay):
            self._relay_response(app, response)
            return True
        if isinstance(app, _TransferReinvite):
            self._transfer_reinvite_response(app, response)
            return True
        return False

    def on_cancel(self, invite_tx: ServerTransaction) -> bool:
        """The caller's CANCEL matched an INVITE of ours (the layer already said 200)."""
        leg = invite_tx.app_data
        if not isinstance(leg, Leg):
            return False
        leg.call.caller_cancelled()
        return True

    def on_transaction_failed(self, tx: Transaction, timeout: bool) -> bool:
        """Timer B/F/H, the proceeding guard, or a transport failure on one of our
        transactions; False if it is none of ours."""
        app = tx.app_data
        if isinstance(app, Leg):
            leg = app
            if isinstance(tx, ServerTransaction):
                # The caller's INVITE: no final answer in time (the layer sent 408).
                call = leg.call
                if call.state is CallState.ROUTING:
                    for other in call.outbound:
                        if other.active:
                            self.cancel_leg(other)
                    call.end("FAILED", 408)
            elif leg.active and leg.answered_at is None:
                leg.call.leg_failed(
                    leg, 408 if timeout else 503, "Request Timeout" if timeout else "Unreachable"
                )
            return True
        if isinstance(app, _Relay):
            # A relayed request already answered (its transaction released) needs no reply
            # and no longer owns the legs' pending state.
            if not app.server_tx.released:
                self._respond(
                    app.server_tx,
                    408 if timeout else 503,
                    "Request Timeout" if timeout else "Service Unavailable",
                )
                app.source.pending = app.target.pending = None
            return True
        if isinstance(app, _TransferReinvite):
            call = app.transfer.call
            app.transfer.transferee.pending = None
            self._hang_up(call, "FAILED", 408)
            return True
        return False

    def shutdown(self) -> None:
        """End every call before the switch stops: answered calls get BYE on both legs,
        ringing ones are cancelled and the caller gets 503; each leaves its CDR."""
        for call in list(self.calls.values()):
            if call.state is CallState.ANSWERED:
                self._hang_up(call, "ANSWERED", 200)
            else:
                call.fail(503, "Service Unavailable")

    # ================================================================= call set-up
    def _authenticate(
        self, request: SipRequest, tx: ServerTransaction, domain: Domain
    ) -> Subscriber | None:
        realm = domain.realm
        credentials = [
            value
            for value in request.get_all("Proxy-Authorization")
            if realm_of(value) in (realm, None)
        ]
        stale = False
        if credentials:

            def lookup_ha1(username: str, realm_: str, algorithm: str) -> str | None:
                found = self.directory.subscriber(domain.name, username)
                return found.user.ha1(realm_, algorithm) if found else None

            result = self.auth.verify(request.method, credentials[0], realm, lookup_ha1)
            if result.ok and result.username is not None:
                found = self.directory.subscriber(domain.name, result.username)
                if found is not None:
                    return found
            if not result.stale:
                self.counters["rejected"] += 1
                log.info(
                    "call_denied",
                    reason=str(result.reason),
                    detail=result.detail,
                    username=result.username,
                    call_id=request.call_id,
                )
                self._respond(tx, 403, "Forbidden")
                return None
            stale = True
        self.counters["challenged"] += 1
        response = self._response(tx.request, 407, "Proxy Authentication Required")
        for value in self.auth.challenge(realm, stale=stale):
            response.add("Proxy-Authenticate", value)
        self.tx.send_response(tx, response, self.clock())
        return None

    def _start_call(
        self,
        request: SipRequest,
        source: Address,
        tx: ServerTransaction,
        tenant: Tenant,
        caller: CallerIdentity,
        dialled: str,
        *,
        trunk: Trunk | None = None,
    ) -> None:
        session = _session_interval(request)
        if session is not None and session < MIN_SE:
            response = self._response(request, 422, "Session Interval Too Small")
            response.add("Min-SE", str(MIN_SE))
            self.tx.send_response(tx, response, self.clock())
            return
        active = self._tenant_calls.get(tenant.name, 0)
        trunk_key = (tenant.name, trunk.name) if trunk is not None else None
        over = tenant.max_calls is not None and active >= tenant.max_calls
        if trunk is not None and trunk.max_calls is not None and trunk_key is not None:
            over = over or self._trunk_calls.get(trunk_key, 0) >= trunk.max_calls
        now = self.clock()
        if not over and tenant.max_calls_per_second is not None:
            over = not self._rate(("", tenant.name), tenant.max_calls_per_second, now)
        if not over and trunk is not None and trunk.max_calls_per_second is not None:
            over = not self._rate((tenant.name, trunk.name), trunk.max_calls_per_second, now)
        if over:
            self.counters["over_limit"] += 1
            response = self._response(request, 503, "Service Unavailable")
            response.add("Retry-After", str(RETRY_AFTER))
            self.tx.send_response(tx, response, self.clock())
            return
        self._tenant_calls[tenant.name] = active + 1
        caller_number = caller.number
        call = Call(
            self, new_call_id(), tenant.name, tenant.domain, caller_number, caller.name, dialled
        )
        call.caller = caller
        if trunk is not None and trunk_key is not None:
            call.direction = "inbound"
            call.trunk = trunk.name
            call.from_trunk = True
            self._trunk_calls[trunk_key] = self._trunk_calls.get(trunk_key, 0) + 1
        if session is not None and _supports_timer(request):
            # RFC 4028: honoured when the caller asks and supports it; the caller refreshes.
            call.session_interval = session
        leg = Leg(call, True, request, source, new_tag(), call.started_at)
        leg.invite_tx = tx
        leg.label = caller_number
        tx.app_data = leg
        call.inbound = leg
        self.calls[call.id] = call
        self._dialogs[(leg.call_id, leg.local_tag)] = leg
        self.counters["calls"] += 1
        if not call.from_trunk:
            self.mark_busy(call, caller_number, +1)
        if self.anchor is not None:
            call.media = CallMedia()
            try:
                self.anchor.answer_caller_offer(leg, _sdp_body(request))
            except MediaRefused as refused:
                call.fail(refused.status, refused.reason)
                return
        for service in self.services:
            try:
                app = service(call)
            except CallRefused as refused:
                call.fail(refused.status, refused.reason)
                return
            if app is not None:
                self.start_application(call, app, dialled)
                return
        busy = self._busy.setdefault(tenant.name, {})
        facts = CallFacts(
            caller="anonymous" if caller.private else caller_number,
            dialled=dialled,
            at=call.started_at,
            tenant=tenant.name,
            registered=_Registered(self.location, tenant, tenant.domain),
            busy=busy.keys(),
            from_trunk=call.from_trunk,
        )
        try:
            plan = plan_call(self.routing_for(tenant), facts)
        except ValueError:
            log.exception("routing_failed", call=call.id)
            call.fail(500, "Routing Failed")
            return
        if plan.caller_id_prefix:
            call.caller_name = plan.caller_id_prefix + call.caller_name
            call.caller = replace(caller, name=call.caller_name)
        call.execute(plan.root)

    def _rate(self, key: tuple[str, str], rate: float, now: float) -> bool:
        bucket = self._rates.get(key)
        if bucket is None or bucket.rate != rate:
            bucket = self._rates[key] = _RateLimit(rate, now)
        return bucket.take(now)

    def ring_user(self, call: Call, target: Target) -> list[Leg]:
        """Start one outbound leg per registered contact of ``target.ref`` (sim-ring)."""
        bindings = self.location.bindings(f"sip:{target.ref}@{call.domain}")
        if not target.all_devices:
            bindings = bindings[:1]
        legs = []
        for binding in bindings:
            try:
                legs.append(self._send_invite(call, target, binding))
            except (SipParseError, ValueError) as error:
                log.warning("leg_not_started", contact=binding.contact, error=str(error))
        return legs

    def _binding_dest(self, binding: Binding) -> Address:
        if binding.path:
            first = binding.path[0]
            start, end = first.find("<"), first.find(">")
            return uri_address(first[start + 1 : end] if 0 <= start < end else first)
        source = self.location.source(binding)
        return source if source is not None else uri_address(binding.contact)

    def _send_invite(self, call: Call, target: Target, binding: Binding) -> Leg:
        dest = self._binding_dest(binding)
        from_value, identity = phone_identity(call.caller, call.domain)
        return self._send_leg(
            call,
            target,
            dest,
            binding.contact,
            f"sip:{target.ref}@{call.domain}",
            from_value,
            binding.path,
            binding.contact,
            identity,
        )

    def ring_external(self, call: Call, target: Target) -> list[Leg]:
        """Start the leg to an outside number through the tenant's outbound route: its first
        trunk's first gateway; the others follow on failure, see ``failover``."""
        tenant = self.tenants.get(call.tenant)
        route = tenant.outbound_route() if tenant is not None else ()
        leg = self._try_route(call, target, route, 0, None, 0)
        return [] if leg is None else [leg]

    def failover(self, leg: Leg) -> bool:
        """Try the next gateway after ``leg`` failed (408, 5xx, no answer, transport error):
        the trunk's next one, then the next trunk's; False when there is none."""
        if leg.route is None:
            return False
        route, trunk_index, gateways, index, target = leg.route
        return (
            self._try_route(leg.call, target, route, trunk_index, gateways, index + 1) is not None
        )

    def _try_route(
        self,
        call: Call,
        target: Target,
        route: Sequence[Trunk],
        trunk_index: int,
        gateways: list[Gateway] | None,
        index: int,
    ) -> Leg | None:
        """The first leg that starts, from gateway ``index`` of trunk ``trunk_index`` on."""
        for t in range(trunk_index, len(route)):
            trunk = route[t]
            if gateways is None:
                gateways = trunk.gateway_order()
            for g in range(index, len(gateways)):
                leg = self._send_trunk_leg(call, target, trunk, gateways[g])
                if leg is not None:
                    leg.route = (route, t, gateways, g, target)
                    return leg
            gateways, index = None, 0
        return None

    def _send_trunk_leg(
        self, call: Call, target: Target, trunk: Trunk, gateway: Gateway
    ) -> Leg | None:
        dest = Address(gateway.transport.upper(), gateway.host, gateway.port)
        local_host, local_port = self.local(dest)
        if self.loops.is_us(gateway.host, gateway.port, local_port):
            self.counters["loops"] += 1
            log.error(
                "trunk_gateway_is_this_switch",
                trunk=trunk.name,
                host=gateway.host,
                port=gateway.port,
            )
            return None
        number = trunk.format_number(target.ref)
        host = f"[{gateway.host}]" if ":" in gateway.host else gateway.host
        params = "" if gateway.transport == "udp" else f";transport={gateway.transport}"
        ruri = f"sip:{number}@{host}:{gateway.port}{params}"
        tenant = self.tenants.get(call.tenant)
        user = (
            tenant.user_by_extension(call.caller_number)
            if tenant is not None and not call.from_trunk
            else None
        )
        from_value, identity = trunk_identity(call.caller, user, trunk, local_host)
        try:
            leg = self._send_leg(
                call, target, dest, ruri, f"sip:{number}@{host}", from_value, [], ruri, identity
            )
        except (SipParseError, ValueError) as error:
            log.warning("trunk_leg_not_started", trunk=trunk.name, error=str(error))
            return None
        call.trunk = trunk.name
        call.direction = "outbound" if not call.from_trunk else call.direction
        return leg

    def _send_leg(
        self,
        call: Call,
        target: Target,
        dest: Address,
        ruri: str,
        to_uri: str,
        from_value: str,
        route: list[str],
        contact: str,
        identity: Sequence[tuple[str, str]],
    ) -> Leg:
        """Build and send one outbound INVITE: a new dialog with nothing of the caller's
        leg in it but the body and what ``identity`` (softswitch.calls.identity) and the
        forwards (Diversion, History-Info) deliberately say."""
        inbound = call.inbound.invite
        tag = new_tag()
        call_id = new_call_id()
        max_forwards = max(0, (inbound.max_forwards or 70) - 1)
        lines: list[tuple[str, str]] = [
            ("Via", f"{self._via(dest)};branch={self.loops.branch(inbound)}"),
            ("Max-Forwards", str(max_forwards)),
            ("From", f"{from_value};tag={tag}"),
            ("To", f"<{to_uri}>"),
            ("Call-ID", call_id),
            ("CSeq", "1 INVITE"),
            ("Contact", self.contact_for(dest)),
        ]
        lines.extend(("Route", hop) for hop in route)
        lines.extend(identity)
        lines.extend(diversion_headers(target, call.domain, to_uri))
        lines.append(("Allow", self.allow))
        lines.append(("User-Agent", self.server_header))
        endpoint = None
        if call.media is not None and self.anchor is not None:
            try:
                endpoint, body = self.anchor.offer_to_branch(call.inbound)
            except MediaRefused as refused:
                raise ValueError(str(refused)) from None
            lines.append(("Content-Type", "application/sdp"))
        else:
            body = inbound.body if call.transfer is None else b""
            content_type = inbound.get("Content-Type")
            if body and content_type:
                if "application/sdp" in content_type.lower():
                    body = leg_sdp(body, call.inbound.peer.host)
                lines.append(("Content-Type", content_type))
            else:
                body = b""
        request = SipRequest("INVITE", ruri, lines, body)
        leg = Leg(call, False, request, dest, tag, time.time())
        if endpoint is not None and self.anchor is not None:
            self.anchor.attach(leg, endpoint)
        leg.target = target.describe()
        leg.contact = contact
        leg.label = target.ref
        call.outbound.append(leg)
        ctx = self.tx.send_request(request, dest, self.clock())
        ctx.app_data = leg
        leg.invite_tx = ctx
        self._dialogs[(call_id, tag)] = leg
        return leg

    # ================================================================= SIP work for calls
    def schedule(self, delay: float, callback: Callable[..., None], *args: Any) -> Any:
        return self.schedule_raw(delay, callback, *args)

    def _via(self, dest: Address) -> str:
        host, port = self.local(dest)
        host = f"[{host}]" if ":" in host else host
        return f"SIP/2.0/{dest.transport} {host}:{port};rport"

    def contact_for(self, dest: Address) -> str:
        """Our Contact for a leg reached at ``dest``."""
        host, port = self.local(dest)
        host = f"[{host}]" if ":" in host else host
        return f"<sip:{host}:{port};transport={dest.transport.lower()}>"

    def _dest(self, leg: Leg) -> Address:
        dialog = leg.dialog
        if dialog is not None and dialog.route_set:
            try:
                return uri_address(dialog.next_hop_uri())
            except SipParseError:
                pass
        return leg.peer

    def _response(
        self,
        request: SipRequest,
        status: int,
        reason: str | None,
        to_tag: str | None = None,
        *,
        allow: bool = False,
        body: bytes = b"",
    ) -> SipResponse:
        response = make_response(request, status, reason, to_tag=to_tag or new_tag(), body=body)
        if allow:
            response.add("Allow", self.allow)
        response.add("Server", self.server_header)
        return response

    def _respond(
        self, tx: ServerTransaction, status: int, reason: str | None, *, allow: bool = False
    ) -> None:
        self.tx.send_response(
            tx, self._response(tx.request, status, reason, allow=allow), self.clock()
        )

    def relay_provisional(self, call: Call, status: int, reason: str, sdp: bytes, leg: Leg) -> None:
        if call.originated is not None:
            return  # nobody to tell: the switch is the caller
        if call.transfer is not None:
            transfer = call.transfer
            if not transfer.notified_ringing:
                transfer.notified_ringing = True
                self._notify(transfer.transferor, "SIP/2.0 180 Ringing", final=False)
            return
        inbound = call.inbound
        assert isinstance(inbound.invite_tx, ServerTransaction)
        if self.anchor is not None and call.media is not None:
            body = b""
            if sdp and self.anchor.remote_answer(leg, sdp):
                self.anchor.bridge(inbound, leg)  # early media: the caller hears the branch
                if inbound.media is not None and inbound.media.stream is not None:
                    body = inbound.media.local_sdp
        else:
            body = leg_sdp(sdp, leg.peer.host) if sdp else b""
        response = self._response(inbound.invite, status, reason, inbound.local_tag, body=body)
        response.add("Contact", self.contact_for(inbound.peer))
        if body:
            response.add("Content-Type", "application/sdp")
        self.tx.send_response(inbound.invite_tx, response, self.clock())

    def answer_caller(self, call: Call, leg: Leg, response: SipResponse) -> None:
        """Bridge: the caller gets a 200 with the winning leg's SDP."""
        if call.originated is not None:
            self._originate_answered(call, leg, response)
            return
        if call.transfer is not None:
            self._transfer_answered(call.transfer, leg, response)
            return
        inbound = call.inbound
        sdp = response_sdp(response)
        if self.anchor is not None and call.media is not None:
            if not self.anchor.remote_answer(leg, sdp):
                log.info("callee_answer_unusable", call=call.id)
            self.anchor.bridge(inbound, leg)
            body = inbound.media.local_sdp if inbound.media is not None else b""
            self._answered_media(call)
        else:
            body = leg_sdp(sdp, leg.peer.host) if sdp else b""
        self._answer_inbound(call, body)

    def _answer_inbound(self, call: Call, body: bytes) -> None:
        """The caller's 200 (retransmitted until its ACK): the inbound dialog starts."""
        inbound = call.inbound
        tx = inbound.invite_tx
        assert isinstance(tx, ServerTransaction)
        contact = self.contact_for(inbound.peer)
        inbound.dialog = Dialog.from_uas(inbound.invite, inbound.local_tag, contact)
        inbound.state = LegState.ANSWERED
        inbound.answered_at = call.answered_at
        answer = self._response(inbound.invite, 200, "OK", inbound.local_tag, allow=True, body=body)
        answer.add("Contact", contact)
        if body:
            answer.add("Content-Type", "application/sdp")
        self._session_refreshed(call, answer)
        self.tx.send_response(tx, answer, self.clock())
        cseq = inbound.invite.cseq
        self._start_2xx_rtx(inbound, tx, answer, cseq[0] if cseq else 0, None)
        self.counters["answered"] += 1

    def _start_2xx_rtx(
        self,
        leg: Leg,
        tx: ServerTransaction,
        response: SipResponse,
        cseq: int,
        relay: _Relay | None,
    ) -> None:
        # RFC 3261 13.3.1.4: the UAS core retransmits its 2xx until the ACK arrives.
        leg.ack_wait = (cseq, relay)
        t1 = self.timers.t1
        deadline = self.clock() + self.timers.timeout
        leg.rtx = self.schedule(t1, self._retransmit_2xx, leg, tx, response, t1, deadline)

    def _retransmit_2xx(
        self,
        leg: Leg,
        tx: ServerTransaction,
        response: SipResponse,
        interval: float,
        deadline: float,
    ) -> None:
        leg.rtx = None
        if leg.ack_wait is None or leg.call.state is CallState.ENDED:
            return
        now = self.clock()
        if now >= deadline:
            leg.ack_wait = None
            log.info("ack_timeout", call=leg.call.id)
            self._hang_up(leg.call, "FAILED", 408)
            return
        self.tx.send_response(tx, response, now)
        interval = min(2 * interval, self.timers.t2)
        leg.rtx = self.schedule(
            min(interval, deadline - now),
            self._retransmit_2xx,
            leg,
            tx,
            response,
            interval,
            deadline,
        )

    def send_ack(self, leg: Leg, body: bytes = b"", content_type: str | None = None) -> None:
        dialog = leg.dialog
        if dialog is None:
            return
        dest = self._dest(leg)
        cseq = leg.invite.cseq
        leg.ack = dialog.build_ack(cseq[0] if cseq else 1, self._via(dest), body, content_type)
        self.tx.send_stateless(leg.ack, dest)

    def resend_ack(self, leg: Leg) -> None:
        if leg.ack is not None:
            self.tx.send_stateless(leg.ack, self._dest(leg))

    def ack_and_bye(self, leg: Leg) -> None:
        """A 2xx nobody wants (a losing branch, a cancelled call): ACK it, then BYE."""
        self.send_ack(leg)
        self.send_bye(leg)

    def send_bye(self, leg: Leg) -> None:
        dialog = leg.dialog
        leg.state = LegState.ENDED
        if leg.ended_at is None:
            leg.ended_at = time.time()
        if dialog is None:
            return
        dest = self._dest(leg)
        self.tx.send_request(dialog.build_request("BYE", self._via(dest)), dest, self.clock())

    def cancel_leg(self, leg: Leg, *, elsewhere: bool = False) -> None:
        """Give up on an outbound leg: CANCEL now, or once it sends a provisional (9.1)."""
        if not leg.active or leg.cancel_pending or leg.answered_at is not None:
            return
        leg.cancel_pending = True
        leg.status = 487
        leg.ended_at = time.time()
        leg.reason = "completed elsewhere" if elsewhere else "cancelled"
        if leg.state is LegState.RINGING:
            self.send_cancel(leg)

    def send_cancel(self, leg: Leg) -> None:
        invite = leg.invite
        leg.cancel_sent = True
        cseq = invite.cseq
        lines: list[tuple[str, str]] = [
            ("Via", invite.get_all("Via")[0]),
            ("Max-Forwards", "70"),
            ("From", invite.get("From") or ""),
            ("To", invite.get("To") or ""),
            ("Call-ID", leg.call_id),
            ("CSeq", f"{cseq[0] if cseq else 1} CANCEL"),
        ]
        lines.extend(("Route", route) for route in invite.get_all("Route"))
        if leg.reason == "completed elsewhere":
            lines.append(("Reason", _ELSEWHERE))
        # ValueError: a CANCEL for this branch is already on its way.
        with contextlib.suppress(ValueError):
            self.tx.send_request(SipRequest("CANCEL", invite.uri, lines), leg.peer, self.clock())

    def reject_caller(self, call: Call, status: int, reason: str | None) -> None:
        if call.originated is not None:
            call.inbound.state = LegState.ENDED
            log.info("originate_failed", call=call.id, status=status)
            return
        if call.transfer is not None:
            self._transfer_failed(call.transfer, status, reason)
            return
        inbound = call.inbound
        tx = inbound.invite_tx
        assert isinstance(tx, ServerTransaction)
        inbound.state = LegState.ENDED
        response = self._response(inbound.invite, status, reason, inbound.local_tag)
        if status == 503:
            response.add("Retry-After", str(RETRY_AFTER))
        self.tx.send_response(tx, response, self.clock())

    def mark_busy(self, call: Call, extension: str, delta: int) -> None:
        busy = self._busy.setdefault(call.tenant, {})
        count = busy.get(extension, 0) + delta
        if count > 0:
            busy[extension] = count
        else:
            busy.pop(extension, None)

    def call_ended(self, call: Call, cdr: Cdr) -> None:
        """Forget the call's dialogs and hand its CDR to the writer."""
        if not call.from_trunk:
            self.mark_busy(call, call.caller_number, -1)
        elif call.trunk:
            key = (call.tenant, call.trunk)
            left = self._trunk_calls.get(key, 1) - 1
            if left > 0:
                self._trunk_calls[key] = left
            else:
                self._trunk_calls.pop(key, None)
        remaining = self._tenant_calls.get(call.tenant, 1) - 1
        if remaining > 0:
            self._tenant_calls[call.tenant] = remaining
        else:
            self._tenant_calls.pop(call.tenant, None)
        for leg in (call.inbound, *call.outbound):
            if leg.call is not call:
                continue  # a transferred leg that lives on in another call
            self._dialogs.pop((leg.call_id, leg.local_tag), None)
            if leg.rtx is not None:
                leg.rtx.cancel()
                leg.rtx = None
        self.calls.pop(call.id, None)
        self.on_cdr(cdr)
        call.release()

    # ================================================================= in-dialog requests
    def _on_bye(self, leg: Leg, tx: ServerTransaction) -> None:
        self._respond(tx, 200, "OK")
        leg.state = LegState.ENDED
        leg.ended_at = time.time()
        call = leg.call
        transfer = call.transferring
        if transfer is not None and leg is transfer.transferor:
            # The transferor leaves while the target rings: the transferee stays on.
            call.end("ANSWERED", 200)
        elif call.state is CallState.ANSWERED:
            other = call.other(leg)
            if other is not None and other.state is not LegState.ENDED:
                self.send_bye(other)
            call.end("ANSWERED", 200)
        elif call.transfer is not None or leg.inbound:
            call.caller_cancelled()

    # ================================================================= blind transfer
    def _on_refer(self, leg: Leg, request: SipRequest, tx: ServerTransaction) -> None:
        """REFER (RFC 3515) from one party: the other party is transferred to Refer-To."""
        call = leg.call
        other = call.other(leg)
        if call.state is not CallState.ANSWERED or other is None or other.dialog is None:
            self._respond(tx, 481, "Call/Transaction Does Not Exist")
            return
        if call.transferring is not None or other.pending is not None:
            self._respond(tx, 491, "Request Pending")
            return
        try:
            refer_to = parse_name_addr(request.get("Refer-To") or "")
            uri = refer_to.uri
        except (SipParseError, ValueError):
            self._respond(tx, 400, "Bad Refer-To")
            return
        if uri.headers:  # Replaces: attended transfer
            self._respond(tx, 501, "Attended Transfer Not Supported")
            return
        if not uri.user:
            self._respond(tx, 400, "Bad Refer-To")
            return
        tenant = self.tenants.get(call.tenant)
        if tenant is None:
            self._respond(tx, 403, "Forbidden")
            return
        accepted = self._response(request, 202, "Accepted")
        if leg.dialog is not None:
            accepted.add("Contact", leg.dialog.local_contact)
        self.tx.send_response(tx, accepted, self.clock())
        self._notify(leg, "SIP/2.0 100 Trying", final=False)
        if other is call.inbound:
            number, name = call.caller_number, call.caller_name
        else:
            number, name = call.callee, ""
        new = Call(self, new_call_id(), call.tenant, call.domain, number, name, uri.user)
        new.caller = call.caller if other is call.inbound else CallerIdentity(number, name, True)
        new.direction = call.direction
        if call.media is not None:
            new.media = CallMedia()  # the transferee keeps its endpoint
        transfer = _Transfer(call, leg, other, new)
        new.transfer = transfer
        call.transferring = transfer
        other.call = new
        new.inbound = other
        self.calls[new.id] = new
        self._tenant_calls[call.tenant] = self._tenant_calls.get(call.tenant, 0) + 1
        self.mark_busy(new, number, +1)
        self.counters["calls"] += 1
        facts = CallFacts(
            caller=number,
            dialled=uri.user,
            at=new.started_at,
            tenant=call.tenant,
            registered=_Registered(self.location, tenant, tenant.domain),
            busy=self._busy.setdefault(call.tenant, {}).keys(),
        )
        try:
            plan = plan_call(self.routing_for(tenant), facts)
        except ValueError:
            new.fail(500, "Routing Failed")
            return
        new.execute(plan.root)

    def _notify(self, leg: Leg, fragment: str, *, final: bool) -> None:
        """Tell the transferor how the transfer goes (RFC 3515 2.4.5, message/sipfrag)."""
        if leg.dialog is None or leg.state is LegState.ENDED:
            return
        dest = self._dest(leg)
        state = "terminated;reason=noresource" if final else "active;expires=60"
        notify = leg.dialog.build_request(
            "NOTIFY",
            self._via(dest),
            body=f"{fragment}\r\n".encode(),
            content_type="message/sipfrag;version=2.0",
            headers=[("Event", "refer"), ("Subscription-State", state)],
        )
        self.tx.send_request(notify, dest, self.clock())

    def _transfer_answered(self, transfer: _Transfer, target: Leg, response: SipResponse) -> None:
        """The target answered: offer its SDP to the transferee (anchored: bridge the two
        endpoints, no re-INVITE), release the transferor."""
        transferee = transfer.transferee
        if self.anchor is not None and transfer.call.media is not None:
            self.anchor.remote_answer(target, response_sdp(response))
            self.anchor.bridge(transferee, target)
            self._answered_media(transfer.call)
            self._release_transferor(transfer)
            return
        assert transferee.dialog is not None
        dest = self._dest(transferee)
        sdp = response_sdp(response)
        reinvite = transferee.dialog.build_request(
            "INVITE",
            self._via(dest),
            body=leg_sdp(sdp, target.peer.host) if sdp else b"",
            content_type="application/sdp" if sdp else None,
        )
        ctx = self.tx.send_request(reinvite, dest, self.clock())
        ctx.app_data = transferee.pending = _TransferReinvite(transfer, target, reinvite)
        self._release_transferor(transfer)

    def _release_transferor(self, transfer: _Transfer) -> None:
        self._notify(transfer.transferor, "SIP/2.0 200 OK", final=True)
        old = transfer.old
        old.transferring = None
        if transfer.transferor.state is not LegState.ENDED:
            self.send_bye(transfer.transferor)
        old.end("ANSWERED", 200)
        self.counters["transfers"] = self.counters.get("transfers", 0) + 1

    def _transfer_reinvite_response(
        self, reinvite: _TransferReinvite, response: SipResponse
    ) -> None:
        status = response.status
        if status < 200:
            return
        transfer = reinvite.transfer
        transferee = transfer.transferee
        call = transfer.call
        if 200 <= status < 300:
            if reinvite.ack is not None:  # a retransmitted 2xx
                self.tx.send_stateless(reinvite.ack, self._dest(transferee))
                return
            assert transferee.dialog is not None
            transferee.dialog.refresh_target(response)
            dest = self._dest(transferee)
            cseq = reinvite.request.cseq
            reinvite.ack = transferee.dialog.build_ack(cseq[0] if cseq else 1, self._via(dest))
            self.tx.send_stateless(reinvite.ack, dest)
            transferee.pending = None
            # The transferee's answer completes the target's offer: the deferred ACK.
            call.ack_deferred = False
            body = response_sdp(response)
            self.send_ack(
                reinvite.target,
                leg_sdp(body, transferee.peer.host) if body else b"",
                "application/sdp" if body else None,
            )
            return
        transferee.pending = None
        self.send_ack(reinvite.target)
        self._hang_up(call, "FAILED", status)

    def _transfer_failed(self, transfer: _Transfer, status: int, reason: str | None) -> None:
        """The target could not be reached: the transferor hears why; the transferee goes
        back to the transferor, or is hung up if the transferor has left."""
        self._notify(
            transfer.transferor,
            f"SIP/2.0 {status} {reason or REASON_PHRASES.get(status, 'Failed')}",
            final=True,
        )
        old = transfer.old
        old.transferring = None
        transferee = transfer.transferee
        if old.state is CallState.ANSWERED and transferee.state is not LegState.ENDED:
            transferee.call = old
        else:
            if transferee.state is not LegState.ENDED:
                self.send_bye(transferee)
            if old.state is not CallState.ENDED:
                if transfer.transferor.state is not LegState.ENDED:
                    self.send_bye(transfer.transferor)
                old.end("ANSWERED", 200)

    def _session_refreshed(self, call: Call, answer: SipResponse) -> None:
        """A 2xx that starts or refreshes the session timer: say so, and restart the
        watchdog that ends a call whose refresher went silent (RFC 4028 10)."""
        interval = call.session_interval
        if interval is None:
            return
        answer.add("Session-Expires", f"{interval};refresher=uac")
        answer.add("Require", "timer")
        if call.session_timer is not None:
            call.session_timer.cancel()
        call.session_timer = self.schedule(
            interval - min(32, interval / 3), self._session_expired, call
        )

    def _session_expired(self, call: Call) -> None:
        call.session_timer = None
        if call.state is CallState.ANSWERED:
            log.info("session_expired", call=call.id)
            self._hang_up(call, "ANSWERED", 408)

    def _hang_up(self, call: Call, disposition: str, status: int) -> None:
        for leg in (call.inbound, call.winner):
            if leg is not None and leg.state is not LegState.ENDED:
                self.send_bye(leg)
        call.end(disposition, status)

    def _relay_request(self, leg: Leg, request: SipRequest, tx: ServerTransaction) -> None:
        call = leg.call
        if (
            call.state is CallState.ANSWERED
            and leg.media is not None
            and request.method in ("INVITE", "UPDATE")
        ):
            self._answer_offer(leg, request, tx)
            return
        other = call.other(leg)
        if (
            call.state is not CallState.ANSWERED
            or other is None
            or other.dialog is None
            or other.state is LegState.ENDED
        ):
            self._respond(tx, 481, "Call/Transaction Does Not Exist")
            return
        method = request.method
        if method == "INFO" and leg.media is not None:
            self._info_digit(leg, request)
        if method == "INVITE" and (leg.pending is not None or other.pending is not None):
            response = self._response(request, 491, "Request Pending")
            self.tx.send_response(tx, response, self.clock())
            return
        assert leg.dialog is not None
        if method in ("INVITE", "UPDATE"):
            leg.dialog.refresh_target(request)
        body = request.body
        content_type = request.get("Content-Type")
        if body and content_type and "application/sdp" in content_type.lower():
            body = leg_sdp(body, leg.peer.host)
        headers = [
            (name, value) for name in _RELAYED_HEADERS if (value := request.get(name)) is not None
        ]
        dest = self._dest(other)
        out = other.dialog.build_request(
            method,
            self._via(dest),
            body=body,
            content_type=content_type,
            headers=headers,
            max_forwards=max(0, (request.max_forwards or 70) - 1),
        )
        relay = _Relay(leg, other, tx, request, out)
        ctx = self.tx.send_request(out, dest, self.clock())
        ctx.app_data = relay
        if method == "INVITE":
            leg.pending = other.pending = relay

    # ================================================================= anchored media
    def _answered_media(self, call: Call) -> None:
        """Bridged: each party's hold music is chosen by who would hold it, other
        branches are released, configured recording starts."""
        assert self.anchor is not None and call.winner is not None
        tenant = self.tenants.get(call.tenant)
        caller = "" if call.from_trunk else call.caller_number
        self.anchor.set_hold_music(tenant, call.inbound, call.callee)
        self.anchor.set_hold_music(tenant, call.winner, caller)
        self.anchor.call_answered(call, self._records(call))

    def _records(self, call: Call) -> bool:
        """Whether configuration asks for every call of this tenant, caller or callee to be
        recorded."""
        tenant = self.tenants.get(call.tenant)
        if tenant is None:
            return False
        if tenant.record_calls:
            return True
        return any(
            user is not None and user.record_calls
            for user in (
                tenant.user_by_extension(call.caller_number),
                tenant.user_by_extension(call.callee),
            )
        )

    def _answer_offer(self, leg: Leg, request: SipRequest, tx: ServerTransaction) -> None:
        """A re-INVITE or UPDATE on an anchored leg is answered by the switch: hold and
        resume change what the engine sends this leg's peer (music on hold), nothing is
        relayed to the other party."""
        assert leg.dialog is not None and self.anchor is not None and leg.media is not None
        offer = _sdp_body(request)
        method = request.method
        if method == "UPDATE" and not offer:
            sdp = b""  # a session refresh without a new offer
        else:
            was_held = leg.media.remote_hold
            try:
                sdp = self.anchor.reoffer(leg, offer)
            except MediaRefused as refused:
                self._respond(tx, refused.status, refused.reason)
                return
            if offer and leg.media.remote_hold != was_held:
                log.info(
                    "call_held" if leg.media.remote_hold else "call_resumed",
                    call=leg.call.id,
                    by="caller" if leg.inbound else "callee",
                )
        leg.dialog.refresh_target(request)
        answer = self._response(request, 200, "OK", body=sdp, allow=True)
        answer.add("Contact", leg.dialog.local_contact)
        if sdp:
            answer.add("Content-Type", "application/sdp")
        if leg.inbound:
            self._session_refreshed(leg.call, answer)
        self.tx.send_response(tx, answer, self.clock())
        if method == "INVITE":
            cseq = request.cseq
            self._start_2xx_rtx(leg, tx, answer, cseq[0] if cseq else 0, None)

    def _info_digit(self, leg: Leg, request: SipRequest) -> None:
        """SIP INFO application/dtmf-relay: a key press for the call's feature codes."""
        if self.anchor is None or "dtmf-relay" not in (request.get("Content-Type") or "").lower():
            return
        digit = _dtmf_relay(request.body)
        if digit is not None:
            self.anchor.digit(leg, digit)

    def start_application(self, call: Call, app: Application, destination: str) -> None:
        """Answer the caller ourselves and run ``app`` on the call (anchored media only)."""
        inbound = call.inbound
        local = self.anchor.local_media(inbound) if self.anchor is not None else None
        if local is None or call.media is None:
            call.fail(480, "Temporarily Unavailable")
            return
        call.state = CallState.ANSWERED
        call.answered_at = time.time()
        call.destination = destination
        tenant = self.tenants.get(call.tenant)
        user = (
            tenant.user_by_extension(call.caller_number) if tenant and not call.from_trunk else None
        )
        session = AppCall(self, call, *local, user.extension if user is not None else None)
        call.app = session
        self._answer_inbound(call, local[1].local_sdp)
        session.task = asyncio.get_running_loop().create_task(
            run_application(app, session), name=f"app-{call.id}"
        )
        log.info("application_started", call=call.id, destination=destination)

    def run_final(self, call: Call, target: Target) -> None:
        """A routing plan's final destination that answers by itself (conference,
        voicemail...): its application, or 480 while there is none."""
        factory = self.applications.get(target.kind.value)
        try:
            app = factory(call, target) if factory is not None else None
        except CallRefused as refused:
            call.fail(refused.status, refused.reason)
            return
        if app is None:
            call.fail(480, "Temporarily Unavailable")
            return
        self.start_application(call, app, f"{target.kind.value} {target.ref}".strip())

    def originate(
        self,
        tenant_name: str,
        dialled: str,
        app: Application,
        *,
        caller_number: str,
        caller_name: str = "",
    ) -> Call | None:
        """Place a call from the switch to ``dialled`` (routed like a call from
        ``caller_number``) and run ``app`` on it once answered; None when refused (no
        such tenant, media not anchored, over a limit). Call it through ``schedule``."""
        tenant = self.tenants.get(tenant_name)
        if tenant is None or self.anchor is None:
            return None
        if (
            tenant.max_calls is not None
            and self._tenant_calls.get(tenant.name, 0) >= tenant.max_calls
        ):
            return None
        self._tenant_calls[tenant.name] = self._tenant_calls.get(tenant.name, 0) + 1
        call = Call(
            self, new_call_id(), tenant.name, tenant.domain, caller_number, caller_name, dialled
        )
        call.originated = app
        call.media = CallMedia()
        # The switch's side of the call: a leg that never sends or receives anything.
        local = SipRequest(
            "INVITE",
            f"sip:{dialled}@{tenant.domain}",
            [
                ("From", f"<sip:{caller_number}@{tenant.domain}>;tag={new_tag()}"),
                ("To", f"<sip:{dialled}@{tenant.domain}>"),
                ("Call-ID", new_call_id()),
                ("CSeq", "1 INVITE"),
            ],
        )
        leg = Leg(call, True, local, Address("UDP", "127.0.0.1", 0), new_tag(), call.started_at)
        leg.label = caller_number
        call.inbound = leg
        self.calls[call.id] = call
        self.counters["calls"] += 1
        self.counters["originated"] = self.counters.get("originated", 0) + 1
        facts = CallFacts(
            caller=caller_number,
            dialled=dialled,
            at=call.started_at,
            tenant=tenant.name,
            registered=_Registered(self.location, tenant, tenant.domain),
            busy=self._busy.setdefault(tenant.name, {}).keys(),
        )
        try:
            plan = plan_call(self.routing_for(tenant), facts)
        except ValueError:
            log.exception("routing_failed", call=call.id)
            call.fail(500, "Routing Failed")
            return call
        log.info("originate", call=call.id, tenant=tenant.name, dialled=dialled)
        call.execute(plan.root)
        return call

    def _originate_answered(self, call: Call, leg: Leg, response: SipResponse) -> None:
        """A call the switch placed was answered: its application runs on that leg."""
        assert self.anchor is not None and call.originated is not None
        local = self.anchor.local_media(leg)
        if not self.anchor.remote_answer(leg, response_sdp(response)) or local is None:
            self._hang_up(call, "FAILED", 488)
            return
        self.anchor.call_answered(call, False)
        tenant = self.tenants.get(call.tenant)
        user = tenant.user_by_extension(leg.label) if tenant is not None else None
        session = AppCall(self, call, *local, user.extension if user is not None else None)
        call.app = session
        session.task = asyncio.get_running_loop().create_task(
            run_application(call.originated, session), name=f"app-{call.id}"
        )

    def hang_up_application(self, call: Call) -> None:
        if call.state is CallState.ANSWERED:
            self._hang_up(call, "ANSWERED", 200)

    def media_ended(self, call: Call) -> tuple[float | None, dict[str, Any], list[dict[str, Any]]]:
        """Release the call's endpoints: (MOS, quality per side, recordings) for its CDR."""
        if call.app is not None:
            call.app.ended.set()
        media = call.media
        if media is None or self.anchor is None:
            return None, {}, []
        self.anchor.call_ended(call)
        return worst_mos(media.quality), media.quality, media.recordings

    def _relay_response(self, relay: _Relay, response: SipResponse) -> None:
        status = response.status
        if status < 200:
            return
        method = relay.out.method
        target = relay.target
        if relay.response is not None:  # a retransmitted 2xx to a relayed re-INVITE
            if relay.ack is not None:
                self.tx.send_stateless(relay.ack, self._dest(target))
            return
        relay.response = response
        success = 200 <= status < 300
        if success and method in ("INVITE", "UPDATE") and target.dialog is not None:
            target.dialog.refresh_target(response)
        body = response.body
        content_type = response.get("Content-Type")
        if body and content_type and "application/sdp" in content_type.lower():
            body = leg_sdp(body, target.peer.host)
        answer = self._response(relay.request, status, response.reason, body=body)
        if body and content_type:
            answer.add("Content-Type", content_type)
        source = relay.source
        if success and method in ("INVITE", "UPDATE") and source.dialog is not None:
            answer.add("Contact", source.dialog.local_contact)
            if source.inbound:
                self._session_refreshed(source.call, answer)
        self.tx.send_response(relay.server_tx, answer, self.clock())
        if method != "INVITE":
            return
        target.pending = None
        if not success:
            source.pending = None
            return
        if relay.request.body and target.dialog is not None:
            dest = self._dest(target)
            relay.ack = target.dialog.build_ack(
                relay.out.cseq[0] if relay.out.cseq else 0, self._via(dest)
            )
            self.tx.send_stateless(relay.ack, dest)
        else:
            relay.deferred = True
        cseq = relay.request.cseq
        self._start_2xx_rtx(source, relay.server_tx, answer, cseq[0] if cseq else 0, relay)


def _sdp_body(request: SipRequest) -> bytes:
    """The SDP body of a request, or b'' (no body, or another content type)."""
    body = request.body
    if body and "application/sdp" in (request.get("Content-Type") or "").lower():
        return body
    return b""


def _dtmf_relay(body: bytes) -> Digit | None:
    """The key of an application/dtmf-relay body (``Signal=5`` / ``Duration=160``)."""
    fields: dict[str, str] = {}
    for line in body.decode("utf-8", "replace").splitlines():
        name, _, value = line.partition("=")
        fields[name.strip().lower()] = value.strip()
    signal = fields.get("signal", "").upper()
    if len(signal) != 1 or signal not in "0123456789*#ABCD":
        return None
    duration = fields.get("duration", "")
    return Digit(signal, int(duration) if duration.isdigit() and len(duration) < 7 else 0, "info")


def _session_interval(request: SipRequest) -> int | None:
    """The Session-Expires delta-seconds of a request (None if absent or unreadable)."""
    value = request.get("Session-Expires")
    if value is None:
        return None
    number = value.split(";", 1)[0].strip()
    return int(number) if number.isdigit() and len(number) <= 9 else None


def _supports_timer(request: SipRequest) -> bool:
    return any(
        token.strip().lower() == "timer"
        for name in ("Supported", "Require")
        for token in request.get_all(name)
    )
