"""Registration of the switch to carrier trunks (RFC 3261 10.2, as a UAC).

Each trunk with ``registration = true`` keeps one registration at its first gateway: REGISTER,
answer the 401/407 digest challenge, refresh before the granted expiry, and on failure retry
with exponential back-off. Timers are loop timer handles; the host drains the transaction
layer after each callback.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import structlog

from config.models import Tenant
from config.trunks import Trunk
from softswitch.sip.address import Address
from softswitch.sip.auth import build_authorization
from softswitch.sip.message import (
    SipParseError,
    SipResponse,
    contact_uri,
    make_request,
    new_call_id,
    new_tag,
    via_value,
)
from softswitch.sip.transaction import ClientTransaction, Transaction, TransactionLayer
from softswitch.sip.uri import format_host

__all__ = ["BACKOFF_MAX", "TrunkRegistrar", "TrunkRegistration"]

log = structlog.get_logger(__name__)

BACKOFF_MIN = 2.0
BACKOFF_MAX = 300.0


class TrunkRegistration:
    """The state of one trunk's registration."""

    __slots__ = (
        "auth_tries",
        "backoff",
        "call_id",
        "cseq",
        "dest",
        "expires",
        "failures",
        "registered",
        "tag",
        "tenant",
        "timer",
        "trunk",
    )

    def __init__(self, tenant: str, trunk: Trunk) -> None:
        self.tenant = tenant
        self.trunk = trunk
        gateway = min(trunk.gateways, key=lambda g: g.priority)
        self.dest = Address(gateway.transport.upper(), gateway.host, gateway.port)
        self.call_id = new_call_id()  # kept across refreshes (RFC 3261 10.2.4)
        self.tag = new_tag()
        self.cseq = 0
        self.registered = False
        self.expires = 0  # seconds granted by the last 200
        self.failures = 0
        self.backoff = 0.0
        self.auth_tries = 0
        self.timer: Any = None

    @property
    def domain(self) -> str:
        trunk = self.trunk
        if trunk.register_domain:
            return trunk.register_domain
        return format_host(self.dest.host)


class TrunkRegistrar:
    """Every trunk registration of the switch; it owns its REGISTER transactions (their
    responses and failures come straight here, see ``TransactionOwner``)."""

    def __init__(
        self,
        transactions: TransactionLayer,
        *,
        tenants: Sequence[Tenant],
        clock: Callable[[], float],
        schedule: Callable[..., Any],
        local: Callable[[Address], tuple[str, int]],
        server_header: str,
    ) -> None:
        self.tx = transactions
        self.clock = clock
        self.schedule = schedule
        self.local = local
        self.server_header = server_header
        self.registrations = [
            TrunkRegistration(t.name, trunk)
            for t in tenants
            for trunk in t.trunks
            if trunk.registration
        ]

    def start(self) -> None:
        for registration in self.registrations:
            self._send(registration)

    def replace_tenants(self, tenants: Sequence[Tenant]) -> None:
        """Provisioning changed: trunks whose registration settings are unchanged keep their
        registration; removed or changed ones stop (their answers are then ignored), new
        ones register now."""
        kept = {(r.tenant, r.trunk): r for r in self.registrations}
        wanted = [(t.name, trunk) for t in tenants for trunk in t.trunks if trunk.registration]
        self.registrations = [
            kept.pop(key) if key in kept else TrunkRegistration(*key) for key in wanted
        ]
        for gone in kept.values():
            if gone.timer is not None:
                gone.timer.cancel()
                gone.timer = None
        for registration in self.registrations:
            if registration.cseq == 0:
                self._send(registration)

    def stop(self) -> None:
        for registration in self.registrations:
            if registration.timer is not None:
                registration.timer.cancel()
                registration.timer = None

    # ------------------------------------------------------------------ events
    def on_response(self, response: SipResponse, ctx: ClientTransaction) -> bool:
        registration = ctx.app_data
        if not isinstance(registration, TrunkRegistration):
            return False
        if registration not in self.registrations:
            return True  # a trunk provisioning has removed since
        status = response.status
        if status < 200:
            return True
        if status in (401, 407) and registration.auth_tries < 2:
            header = "WWW-Authenticate" if status == 401 else "Proxy-Authenticate"
            challenge = response.get(header)
            if challenge is not None:
                registration.auth_tries += 1
                self._send(registration, (status, challenge))
                return True
        if 200 <= status < 300:
            self._registered(registration, response)
        elif status == 423:
            # Interval Too Brief: ask again with the carrier's minimum.
            try:
                minimum = int(response.get("Min-Expires") or "0")
            except ValueError:
                minimum = 0
            if minimum > registration.trunk.register_expires and registration.auth_tries < 3:
                registration.trunk = registration.trunk.model_copy(
                    update={"register_expires": minimum}
                )
                self._send(registration)
                return True
            self._failed(registration, f"{status} {response.reason}")
        else:
            self._failed(registration, f"{status} {response.reason}")
        return True

    def on_transaction_failed(self, tx: Transaction, timeout: bool = True) -> bool:
        registration = tx.app_data
        if not isinstance(registration, TrunkRegistration):
            return False
        if registration not in self.registrations:
            return True  # a trunk provisioning has removed since
        self._failed(registration, "no response")
        return True

    # ------------------------------------------------------------------ internals
    def _registered(self, registration: TrunkRegistration, response: SipResponse) -> None:
        requested = registration.trunk.register_expires
        granted = requested
        with contextlib.suppress(SipParseError, ValueError):
            ours = self._contact_uri(registration)
            for contact in response.contacts:
                value = contact.params.get("expires")
                if value is not None and str(contact.uri) == ours:
                    granted = int(value)
                    break
            else:
                if response.expires is not None:
                    granted = response.expires
        if not registration.registered:
            log.info(
                "trunk_registered",
                tenant=registration.tenant,
                trunk=registration.trunk.name,
                expires=granted,
            )
        registration.registered = True
        registration.expires = granted
        registration.failures = 0
        registration.backoff = 0.0
        registration.auth_tries = 0
        # Refresh well before expiry: half-way for short grants, 30 s early for long ones.
        refresh = max(1.0, granted - min(granted / 2, 30.0))
        self._arm(registration, refresh)

    def _failed(self, registration: TrunkRegistration, why: str) -> None:
        registration.registered = False
        registration.failures += 1
        registration.auth_tries = 0
        registration.backoff = min(BACKOFF_MAX, max(BACKOFF_MIN, registration.backoff * 2))
        log.warning(
            "trunk_registration_failed",
            tenant=registration.tenant,
            trunk=registration.trunk.name,
            reason=why,
            retry_in=registration.backoff,
        )
        self._arm(registration, registration.backoff)

    def _arm(self, registration: TrunkRegistration, delay: float) -> None:
        if registration.timer is not None:
            registration.timer.cancel()
        registration.timer = self.schedule(delay, self._refresh, registration)

    def _refresh(self, registration: TrunkRegistration) -> None:
        registration.timer = None
        self._send(registration)

    def _contact_uri(self, registration: TrunkRegistration) -> str:
        host, port = self.local(registration.dest)
        user = registration.trunk.username or "switch"
        return contact_uri(host, port, registration.dest.transport, user)

    def _send(
        self, registration: TrunkRegistration, challenge: tuple[int, str] | None = None
    ) -> None:
        trunk = registration.trunk
        dest = registration.dest
        host, port = self.local(dest)
        registration.cseq += 1
        user = trunk.username or ""
        domain = registration.domain
        uri = f"sip:{domain}"
        headers = [("Expires", str(trunk.register_expires)), ("User-Agent", self.server_header)]
        if challenge is not None and trunk.password is not None:
            status, value = challenge
            try:
                answer = build_authorization(
                    value, "REGISTER", uri, user, trunk.password.get_secret_value()
                )
            except ValueError as error:
                self._failed(registration, f"unusable challenge: {error}")
                return
            headers.append(("Authorization" if status == 401 else "Proxy-Authorization", answer))
        request = make_request(
            "REGISTER",
            uri,
            via=via_value(dest.transport, host, port),
            from_=f"<sip:{user}@{domain}>;tag={registration.tag}",
            to=f"<sip:{user}@{domain}>",
            call_id=registration.call_id,
            cseq=registration.cseq,
            contact=f"<{self._contact_uri(registration)}>",
            headers=headers,
        )
        ctx = self.tx.send_request(request, dest, self.clock(), owner=self)
        ctx.app_data = registration
