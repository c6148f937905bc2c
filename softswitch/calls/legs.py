"""Outbound legs: ringing a user's registered devices (sim-ring), an outside number through
the tenant's trunks with failover from gateway to gateway and trunk to trunk, and giving up
on a leg with CANCEL. The INVITEs and CANCELs go through the SIP stack's dialog layer.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import structlog

from config.models import Tenant
from config.security_media import SrtpPolicy
from config.trunks import Gateway, Trunk
from routing.plan import Target, TargetKind
from softswitch.calls.call import Call, Leg
from softswitch.calls.identity import diversion_headers, phone_identity, trunk_identity
from softswitch.calls.loops import LoopGuard
from softswitch.calls.signalling import CallSignalling
from softswitch.location import LocationService
from softswitch.security.emergency import emergency_identity
from softswitch.security.media_policy import phone_policy
from softswitch.security.tollfraud import TollFraudGuard
from softswitch.sip.address import Address
from softswitch.sip.dialog import uri_address
from softswitch.sip.message import SipParseError, make_request, new_call_id, new_tag
from softswitch.sip.uri import format_host
from storage.base import Binding

__all__ = ["LegStarter"]

log = structlog.get_logger(__name__)

_ELSEWHERE = 'SIP;cause=200;text="Call completed elsewhere"'


class LegStarter:
    """Starts, fails over and cancels the outbound legs of calls."""

    def __init__(
        self,
        signalling: CallSignalling,
        *,
        location: LocationService,
        tenants: dict[str, Tenant],
        loops: LoopGuard,
        counters: dict[str, int],
        tollfraud: TollFraudGuard | None = None,
    ) -> None:
        self.sig = signalling
        self.location = location
        self.tenants = tenants
        self.loops = loops
        self.counters = counters
        self.tollfraud = tollfraud  # permissions, caps and the emergency route

    # ---------------------------------------------------------------- users' devices
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
            # Only anchored media acts on a policy: pass-through skips the lookup.
            phone_policy(self.tenants.get(call.tenant), target.ref)
            if call.media is not None
            else "optional",
        )

    # ---------------------------------------------------------------- trunks
    def ring_external(self, call: Call, target: Target) -> list[Leg]:
        """Start the leg to an outside number through the tenant's outbound route: its first
        trunk's first gateway; the others follow on failure, see ``failover``."""
        tenant = self.tenants.get(call.tenant)
        route = tenant.outbound_route() if tenant is not None else ()
        if self.tollfraud is not None and tenant is not None:
            route = self.tollfraud.offnet_route(call, target, tenant, route)
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
        local_host, local_port = self.sig.local(dest)
        if self.loops.is_us(gateway.host, gateway.port, local_port):
            self.counters["loops"] += 1
            log.error(
                "trunk_gateway_is_this_switch",
                trunk=trunk.name,
                host=gateway.host,
                port=gateway.port,
            )
            return None
        emergency = target.kind is TargetKind.EMERGENCY
        # An emergency number goes to the carrier as dialled (no prefixes, no E.164).
        number = target.ref if emergency else trunk.format_number(target.ref)
        host = format_host(gateway.host)
        params = "" if gateway.transport == "udp" else f";transport={gateway.transport}"
        ruri = f"sip:{number}@{host}:{gateway.port}{params}"
        tenant = self.tenants.get(call.tenant)
        user = (
            tenant.user_by_extension(call.caller_number)
            if tenant is not None and not call.from_trunk
            else None
        )
        if emergency and tenant is not None:
            from_value, identity = emergency_identity(
                tenant, user, trunk, local_host, number=call.caller.number, name=call.caller.name
            )
        else:
            from_value, identity = trunk_identity(call.caller, user, trunk, local_host)
        try:
            leg = self._send_leg(
                call,
                target,
                dest,
                ruri,
                f"sip:{number}@{host}",
                from_value,
                [],
                ruri,
                identity,
                trunk.srtp,
            )
        except (SipParseError, ValueError) as error:
            log.warning("trunk_leg_not_started", trunk=trunk.name, error=str(error))
            return None
        call.trunk = trunk.name
        call.direction = "outbound" if not call.from_trunk else call.direction
        return leg

    # ---------------------------------------------------------------- the INVITE
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
        srtp: SrtpPolicy,
    ) -> Leg:
        """Build and send one outbound INVITE: a new dialog with nothing of the caller's
        leg in it but the body and what ``identity`` (softswitch.calls.identity) and the
        forwards (Diversion, History-Info) deliberately say; ``srtp``: the leg's SRTP
        policy (its trunk's, or its user's or tenant's)."""
        inbound = call.inbound.invite
        tag = new_tag()
        call_id = new_call_id()
        headers: list[tuple[str, str]] = [*identity]
        headers.extend(diversion_headers(target, call.domain, to_uri))
        headers.append(("Allow", self.sig.allow))
        if target.auto_answer:  # what desk phones honour: Call-Info (most), Alert-Info
            headers.append(("Call-Info", f"<sip:{call.domain}>;answer-after=0"))
            headers.append(("Alert-Info", "<http://localhost/>;info=alert-autoanswer;delay=0"))
        headers.append(("User-Agent", self.sig.server_header))
        # The call's media path: the caller's SDP passed on, or our own offer from a new
        # endpoint of the media engine that becomes the leg's.
        body, content_type, endpoint = call.media_path.branch_offer(call, srtp)
        request = make_request(
            "INVITE",
            ruri,
            via=self.sig.via(dest),
            from_=f"{from_value};tag={tag}",
            to=f"<{to_uri}>",
            call_id=call_id,
            cseq=1,
            branch=self.loops.branch(inbound),
            max_forwards=max(0, (inbound.max_forwards or 70) - 1),
            contact=self.sig.contact_for(dest),
            routes=route,
            headers=headers,
            body=body,
            content_type=content_type,
        )
        leg = Leg(call, False, request, dest, tag, time.time())
        if endpoint is not None:
            call.media_path.attach(leg, endpoint)
        leg.target = target.describe()
        leg.confirm = (
            "screen" if target.screening else "confirm" if target.answer_confirmation else ""
        )
        leg.contact = contact
        leg.label = target.ref
        call.outbound.append(leg)
        # The dialog layer sends it and keeps its dialogs (one per answering fork); the
        # call ACKs the 2xx itself, with the answer when the 2xx carries the offer.
        outgoing = self.sig.dialogs.send_invite(
            request, dest, self.sig.clock(), app_data=leg, auto_ack=False
        )
        leg.outgoing = outgoing
        leg.invite_tx = outgoing.transaction
        return leg

    # ---------------------------------------------------------------- CANCEL
    def cancel_leg(self, leg: Leg, *, elsewhere: bool = False) -> None:
        """Give up on an outbound leg: the dialog layer CANCELs it now, or once it has sent
        a provisional response (RFC 3261 9.1)."""
        if not leg.active or leg.cancel_pending or leg.answered_at is not None:
            return
        leg.cancel_pending = True
        leg.status = 487
        leg.ended_at = time.time()
        leg.reason = "completed elsewhere" if elsewhere else "cancelled"
        self.send_cancel(leg)

    def send_cancel(self, leg: Leg) -> None:
        outgoing = leg.outgoing
        if outgoing is None or leg.cancel_sent:
            return
        leg.cancel_sent = True
        reason = (("Reason", _ELSEWHERE),) if leg.reason == "completed elsewhere" else ()
        self.sig.dialogs.cancel(outgoing, self.sig.clock(), reason)
