"""Call admission: whether a new INVITE becomes a call, and as whose.

In order: a dialable Request-URI, the loop guard, trunk recognition (the source address
is one of a trunk's inbound networks), the served domain, the caller's digest credentials
(407 challenge, 403), the toll-fraud permissions and caps of a user's call
(403 naming the rule: softswitch.security.tollfraud), and the tenant's and trunk's limits on
concurrent calls and calls per second (503 with Retry-After). An admitted call counts
against its tenant and trunk until ``call_ended``. A user's emergency call passes the
permissions, caps and limits.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

from config.models import Tenant
from config.trunks import Trunk
from softswitch.calls.identity import (
    CallerIdentity,
    is_withheld,
    subscriber_caller,
    trunk_caller,
)
from softswitch.calls.loops import LoopGuard
from softswitch.calls.signalling import CallSignalling
from softswitch.credentials import authenticate
from softswitch.directory import Directory, Domain, Subscriber
from softswitch.security.guard import SecurityGuard
from softswitch.security.tollfraud import TollFraudGuard
from softswitch.sip.address import Address
from softswitch.sip.auth import DigestAuthenticator
from softswitch.sip.message import SipRequest
from softswitch.sip.transaction import ServerTransaction
from storage.cdr import Cdr

if TYPE_CHECKING:
    from softswitch.calls.call import Call

__all__ = ["RETRY_AFTER", "Admission", "Admitted"]

log = structlog.get_logger(__name__)

#: Seconds a caller refused by call admission control is asked to wait.
RETRY_AFTER = 5


@dataclass(slots=True)
class Admitted:
    """A new call let in: whose it is, who calls, what was dialled."""

    tenant: Tenant
    caller: CallerIdentity
    dialled: str
    trunk: Trunk | None


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


class Admission:
    """Admits or refuses new INVITEs (see the module docstring) and keeps the per-tenant
    and per-trunk call counts the limits are checked against."""

    def __init__(
        self,
        signalling: CallSignalling,
        *,
        directory: Directory,
        authenticator: DigestAuthenticator,
        tenants: dict[str, Tenant],
        local_hosts: frozenset[str],
        counters: dict[str, int],
        guard: SecurityGuard | None = None,
        tollfraud: TollFraudGuard | None = None,
    ) -> None:
        self.sig = signalling
        self.guard = guard  # told every digest outcome (softswitch/security)
        self.tollfraud = tollfraud  # calling permissions and caps (softswitch/security)
        self.directory = directory
        self.auth = authenticator
        self.tenants = tenants
        self.counters = counters
        self.loops = LoopGuard(local_hosts)
        self._trunk_sources: list[
            tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, Tenant, Trunk]
        ] = []
        self._emergency: frozenset[str] = frozenset()
        self.tenants_changed()
        self._tenant_calls: dict[str, int] = {}
        self._trunk_calls: dict[tuple[str, str], int] = {}
        self._rates: dict[tuple[str, str], _RateLimit] = {}

    def tenants_changed(self) -> None:
        """Recognise trunks by the tenants now provisioned (``tenants`` changed in place)."""
        # Inbound trunk sources: (network, tenant, trunk), most specific network first.
        # Every tenant's emergency numbers: a new INVITE to one of them passes the switch's
        # overload shedding (``emergency``); one set lookup for the others.
        self._emergency = frozenset().union(*(t.routing.emergency() for t in self.tenants.values()))
        self._trunk_sources = sorted(
            (
                (net, t, trunk)
                for t in self.tenants.values()
                for trunk in t.trunks
                for net in trunk.networks()
            ),
            key=lambda item: -item[0].prefixlen,
        )

    def admit(self, request: SipRequest, source: Address, tx: ServerTransaction) -> Admitted | None:
        """The new call ``request`` may become, or None when it was answered with a refusal
        (or a challenge) here."""
        ruri = request.ruri
        if not ruri.is_sip or not ruri.user:
            self.sig.respond(tx, 484, "Address Incomplete")
            return None
        if self.loops.looped(request):
            self.counters["loops"] += 1
            log.warning("loop_detected", call_id=request.call_id, dialled=ruri.user)
            self.sig.respond(tx, 482, "Loop Detected")
            return None
        from_ = request.from_
        assert from_ is not None
        trunk_source = self._trunk_for(source.host)
        if trunk_source is not None:
            tenant, trunk = trunk_source
            return self._within_limits(
                request, tx, tenant, trunk_caller(request, trunk), ruri.user, trunk
            )
        domain = self.directory.domain_for(ruri.host)
        if domain is None:
            self.sig.respond(tx, 404, "Domain Not Served")
            return None
        withheld = is_withheld(request)
        if (
            not request.get_all("Proxy-Authorization")
            and not withheld
            and self.directory.domain_for(from_.uri.host or "") is None
        ):
            # Neither one of our subscribers nor a listed trunk address.
            self.counters["rejected"] += 1
            self.sig.respond(tx, 403, "Forbidden")
            return None
        subscriber = self._authenticate(request, tx, domain)
        if subscriber is None:
            return None
        user = subscriber.user
        if from_.uri.user not in (user.extension, user.username) and not withheld:
            self.counters["rejected"] += 1
            self.sig.respond(tx, 403, "Forbidden")
            return None
        tenant = domain.tenant
        emergency = False
        tollfraud = self.tollfraud
        if tollfraud is not None:
            emergency = tollfraud.emergency(tenant, ruri.user)
            refusal = None if emergency else tollfraud.screen_dial(tenant, user, ruri.user)
            if refusal is not None:
                self.counters["rejected"] += 1
                response = self.sig.response(request, refusal.status, refusal.phrase)
                response.add("Reason", refusal.reason_header())
                self.sig.send_response(tx, response)
                return None
        return self._within_limits(
            request,
            tx,
            tenant,
            subscriber_caller(request, user),
            ruri.user,
            None,
            emergency=emergency,
        )

    def emergency(self, request: SipRequest, source: Address) -> bool:
        """Whether a new INVITE is a user's emergency call (never shed for overload)."""
        ruri = request.ruri
        number = ruri.user
        if not number or number not in self._emergency:
            return False
        domain = self.directory.domain_for(ruri.host)
        return (
            domain is not None
            and number in domain.tenant.routing.emergency()
            and self._trunk_for(source.host) is None
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

    def _authenticate(
        self, request: SipRequest, tx: ServerTransaction, domain: Domain
    ) -> Subscriber | None:
        checked = authenticate(
            request,
            "Proxy-Authorization",
            domain,
            self.directory,
            self.auth,
            self.guard,
            tx.source.host,
            "call_denied",
        )
        found = checked.subscriber
        if found is not None:
            if self.guard is not None:  # security: a success
                self.guard.auth_succeeded(tx.source.host, found.aor)
            return found
        if checked.denied:
            self.counters["rejected"] += 1
            self.sig.respond(tx, 403, "Forbidden")
            return None
        self.counters["challenged"] += 1
        response = self.sig.response(tx.request, 407, "Proxy Authentication Required")
        for value in self.auth.challenge(domain.realm, stale=checked.stale):
            response.add("Proxy-Authenticate", value)
        self.sig.send_response(tx, response)
        return None

    def _within_limits(
        self,
        request: SipRequest,
        tx: ServerTransaction,
        tenant: Tenant,
        caller: CallerIdentity,
        dialled: str,
        trunk: Trunk | None,
        *,
        emergency: bool = False,
    ) -> Admitted | None:
        active = self._tenant_calls.get(tenant.name, 0)
        if emergency:  # counted, never refused
            self._tenant_calls[tenant.name] = active + 1
            return Admitted(tenant, caller, dialled, trunk)
        over = tenant.max_calls is not None and active >= tenant.max_calls
        if trunk is not None and trunk.max_calls is not None:
            over = over or self._trunk_calls.get((tenant.name, trunk.name), 0) >= trunk.max_calls
        now = self.sig.clock()
        if not over and tenant.max_calls_per_second is not None:
            over = not self._rate(("", tenant.name), tenant.max_calls_per_second, now)
        if not over and trunk is not None and trunk.max_calls_per_second is not None:
            over = not self._rate((tenant.name, trunk.name), trunk.max_calls_per_second, now)
        if over:
            self.counters["over_limit"] += 1
            response = self.sig.response(request, 503, "Service Unavailable")
            response.add("Retry-After", str(RETRY_AFTER))
            self.sig.send_response(tx, response)
            return None
        self._tenant_calls[tenant.name] = active + 1
        if trunk is not None:
            key = (tenant.name, trunk.name)
            self._trunk_calls[key] = self._trunk_calls.get(key, 0) + 1
        return Admitted(tenant, caller, dialled, trunk)

    def _rate(self, key: tuple[str, str], rate: float, now: float) -> bool:
        bucket = self._rates.get(key)
        if bucket is None or bucket.rate != rate:
            bucket = self._rates[key] = _RateLimit(rate, now)
        return bucket.take(now)

    # ---------------------------------------------------------------- counts
    def has_room(self, tenant: Tenant) -> bool:
        """Whether the tenant may have one more call (calls the switch places itself)."""
        return tenant.max_calls is None or self._tenant_calls.get(tenant.name, 0) < tenant.max_calls

    def count(self, tenant: str) -> None:
        """One more call of ``tenant`` (one the switch places, or a transfer's new call)."""
        self._tenant_calls[tenant] = self._tenant_calls.get(tenant, 0) + 1

    def call_ended(self, call: Call, cdr: Cdr | None = None) -> None:
        """The call no longer counts against its tenant (and its inbound trunk), nor
        against its toll-fraud caps; an emergency call's ``cdr`` is marked."""
        if self.tollfraud is not None:
            self.tollfraud.call_ended(call, self.tenants.get(call.tenant), cdr)
        if call.from_trunk and call.trunk:
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
