"""The notifier: SUBSCRIBE requests answered and NOTIFYs sent for the switch's users.

It drives the sans-I/O subscription table (softswitch.sip.subscription) from the
dispatcher's SUBSCRIBE requests: the Event is checked first (489 for a package not served),
then the subscriber's digest credentials, challenged with 407 as call admission challenges
an INVITE (a user that does not exist is challenged like one that does, and a wrong
password and an unknown user both get 403, so extensions cannot be enumerated); then the
package (a :class:`StateSource`) says which resource the Request-URI names and whether the
subscriber may watch it. NOTIFYs go out as client transactions of the transaction layer
(the notifier owns them), in the subscription's dialog; a subscription has at most one
NOTIFY in flight, and a change meanwhile is sent (as full state) when it is answered.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

import structlog

from config.models import Tenant
from config.smtp import SubscriptionSettings
from softswitch.credentials import authenticate
from softswitch.directory import Directory, Domain, Subscriber
from softswitch.security.guard import SecurityGuard
from softswitch.sip.address import Address
from softswitch.sip.auth import DigestAuthenticator
from softswitch.sip.message import (
    SipParseError,
    SipRequest,
    SipResponse,
    contact_uri,
    make_response,
    new_tag,
    via_value,
)
from softswitch.sip.subscription import (
    EventPackage,
    Subscription,
    SubscriptionLimits,
    SubscriptionTable,
)
from softswitch.sip.transaction import (
    ClientTransaction,
    ServerTransaction,
    Transaction,
    TransactionLayer,
)

__all__ = ["Notifier", "StateSource", "SubscriptionRefused"]

log = structlog.get_logger(__name__)

Scheduler = Callable[..., Any]


class SubscriptionRefused(Exception):
    """A SUBSCRIBE the package refuses (404: no such resource, 403: not theirs to watch)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason


class StateSource(Protocol):
    """An event package's state: what a SUBSCRIBE's Request-URI names, and NOTIFY bodies."""

    package: EventPackage

    def resource(self, domain: Domain, subscriber: Subscriber, name: str) -> str:
        """The resource key ``name`` (the Request-URI user) stands for; raises
        :class:`SubscriptionRefused`."""

    def body(self, sub: Subscription) -> bytes:
        """The state of ``sub.resource`` now, as the NOTIFY body (``sub.version`` is this
        NOTIFY's number, from 0)."""


class _InFlight:
    """``app_data`` of a subscription: its NOTIFY awaiting an answer, and whether the state
    changed meanwhile."""

    __slots__ = ("changed", "tx")

    def __init__(self) -> None:
        self.tx: ClientTransaction | None = None
        self.changed = False


class Notifier:
    """SUBSCRIBE in, NOTIFY out (see the module docstring).

    ``flush`` asks the host to send what the transaction layer queued (the switch drains
    its SIP driver on the next loop turn); ``schedule(delay, callback)`` is a loop timer.
    """

    def __init__(
        self,
        transactions: TransactionLayer,
        *,
        directory: Directory,
        authenticator: DigestAuthenticator,
        tenants: Mapping[str, Tenant],
        settings: SubscriptionSettings,
        clock: Callable[[], float],
        schedule: Scheduler,
        local: Callable[[Address], tuple[str, int]],
        server_header: str,
        guard: SecurityGuard | None = None,
    ) -> None:
        self.transactions = transactions
        self.directory = directory
        self.auth = authenticator
        self.tenants = tenants
        self.settings = settings
        self.clock = clock
        self.schedule = schedule
        self.local = local
        self.server_header = server_header
        self.guard = guard
        self.sources: dict[str, StateSource] = {}
        self.table = SubscriptionTable(
            (),
            SubscriptionLimits(
                min_expires=settings.min_expires,
                max_expires=settings.max_expires,
                per_subscriber=settings.per_subscriber,
                total=settings.total,
            ),
        )
        self.counters: dict[str, int] = {
            "subscribed": 0,
            "challenged": 0,
            "refused": 0,
            "notifies": 0,
            "notify_failed": 0,
            "expired": 0,
        }
        self._timer: Any = None
        self._timer_at: float | None = None
        self._flush_due = False

    def serve(self, source: StateSource) -> None:
        """Serve ``source``'s event package from now on."""
        self.sources[source.package.name] = source
        self.table.packages[source.package.name] = source.package

    # ----------------------------------------------------------------- SUBSCRIBE
    def on_subscribe(self, request: SipRequest, source: Address, tx: ServerTransaction) -> None:
        """Answer one SUBSCRIBE (new, refresh or unsubscribe) and send its NOTIFY."""
        now = self.clock()
        try:
            response, sub = self._subscribe(request, source, tx, now)
        except SipParseError as error:
            response, sub = self._response(request, error.status, error.reason), None
        except Exception:
            # Never a transaction left unanswered (a phone would retransmit for 32 s).
            log.exception("subscribe_failed", call_id=request.call_id)
            response, sub = self._response(request, 500, "Server Internal Error"), None
        self.transactions.send_response(tx, response, now)
        if sub is not None:
            self._notify(sub, now)
        self._arm()
        self._flush()

    def _subscribe(
        self, request: SipRequest, source: Address, tx: ServerTransaction, now: float
    ) -> tuple[SipResponse, Subscription | None]:
        table = self.table
        package = table.package_of(request)
        if package is None:
            self.counters["refused"] += 1
            response = self._response(request, 489, "Bad Event")
            response.add("Allow-Events", table.allow_events)
            return response, None
        ruri = request.ruri
        if not ruri.is_sip or not ruri.user:
            return self._response(request, 404, "Not Found"), None
        domain = self.directory.domain_for(ruri.host)
        if domain is None:
            return self._response(request, 404, "Domain Not Served"), None
        subscriber = self._authenticate(request, tx, domain)
        if isinstance(subscriber, SipResponse):
            return subscriber, None
        from_ = request.from_
        user = subscriber.user
        if from_ is None or from_.uri.user not in (user.extension, user.username):
            self.counters["refused"] += 1
            return self._response(request, 403, "Forbidden"), None
        try:
            resource = self.sources[package.name].resource(domain, subscriber, ruri.user)
        except SubscriptionRefused as refused:
            self.counters["refused"] += 1
            return self._response(request, refused.status, refused.reason), None
        host, port = self.local(source)
        contact = f"<{contact_uri(host, port, source.transport)}>"
        outcome = table.subscribe(
            request,
            subscriber=subscriber.aor,
            resource=resource,
            peer=source,
            contact=contact,
            now=now,
        )
        response = make_response(
            request,
            outcome.status,
            outcome.reason,
            to_tag=outcome.to_tag or new_tag(),
            headers=(*outcome.headers, ("Server", self.server_header)),
        )
        if outcome.status >= 300:
            self.counters["refused"] += 1
            return response, None
        sub = outcome.subscription
        if sub is not None and outcome.created:
            sub.app_data = _InFlight()
            self.counters["subscribed"] += 1
            log.info(
                "subscribed",
                package=package.name,
                resource=resource,
                subscriber=subscriber.aor,
                expires=int(sub.expires_at - now),
            )
        return response, sub

    def _authenticate(
        self, request: SipRequest, tx: ServerTransaction, domain: Domain
    ) -> Subscriber | SipResponse:
        checked = authenticate(
            request,
            "Proxy-Authorization",
            domain,
            self.directory,
            self.auth,
            self.guard,
            tx.source.host,
            "subscribe_denied",
        )
        found = checked.subscriber
        if found is not None:
            if self.guard is not None:
                self.guard.auth_succeeded(tx.source.host, found.aor)
            return found
        if checked.denied:
            self.counters["refused"] += 1
            return self._response(request, 403, "Forbidden")
        self.counters["challenged"] += 1
        response = self._response(request, 407, "Proxy Authentication Required")
        for value in self.auth.challenge(domain.realm, stale=checked.stale):
            response.add("Proxy-Authenticate", value)
        return response

    def _response(self, request: SipRequest, status: int, reason: str) -> SipResponse:
        return make_response(
            request, status, reason, to_tag=new_tag(), headers=(("Server", self.server_header),)
        )

    # ----------------------------------------------------------------- NOTIFY
    def publish(self, package: str, resource: str) -> int:
        """The state of ``resource`` changed: NOTIFY its subscribers; returns how many."""
        watchers = self.table.watching(package, resource)
        if not watchers:
            return 0
        now = self.clock()
        for sub in watchers:
            self._notify(sub, now)
        self._flush()
        return len(watchers)

    def subscribed(self, package: str, subscriber: str) -> list[Subscription]:
        """The active subscriptions of ``subscriber`` (an AOR) to ``package``."""
        return [
            sub
            for sub in self.table
            if sub.package.name == package and sub.subscriber == subscriber
        ]

    def send_request(self, request: SipRequest, dest: Address) -> None:
        """Send a request outside any subscription (an unsolicited NOTIFY); its answer
        is not waited for."""
        self.transactions.send_request(request, dest, self.clock(), owner=self)
        self.counters["notifies"] += 1
        self._flush()

    def via(self, dest: Address) -> str:
        host, port = self.local(dest)
        return via_value(dest.transport, host, port)

    def _notify(self, sub: Subscription, now: float) -> None:
        flight = sub.app_data
        if not isinstance(flight, _InFlight):
            flight = sub.app_data = _InFlight()
        if flight.tx is not None:
            flight.changed = True  # sent (as full state) once the NOTIFY in flight is answered
            return
        source = self.sources.get(sub.package.name)
        if source is None:
            return
        dest = sub.destination()
        try:
            request = self.table.notify(sub, self.via(dest), source.body(sub), now)
            tx = self.transactions.send_request(request, dest, now, owner=self)
        except (OSError, ValueError, LookupError, SipParseError) as error:
            log.warning("notify_not_sent", resource=sub.resource, error=str(error))
            self.table.terminate(sub, "deactivated")
            return
        tx.app_data = sub
        flight.tx = tx
        flight.changed = False
        self.counters["notifies"] += 1

    def on_response(self, response: SipResponse, transaction: ClientTransaction) -> None:
        """The answer to a NOTIFY of ours (see ``TransactionOwner``)."""
        if response.status >= 200:
            self._answered(transaction, response.status)

    def on_transaction_failed(self, transaction: Transaction, timeout: bool) -> None:
        """A NOTIFY timed out or could not be sent: the subscription is over."""
        if isinstance(transaction, ClientTransaction):
            self._answered(transaction, 408 if timeout else 503)

    def _answered(self, transaction: ClientTransaction, status: int) -> None:
        sub = transaction.app_data
        if not isinstance(sub, Subscription):
            return
        flight = sub.app_data
        if isinstance(flight, _InFlight) and flight.tx is transaction:
            flight.tx = None
        if self.table.notify_ended(sub, status):
            self.counters["notify_failed"] += 1
            log.info("subscription_ended", resource=sub.resource, status=status)
            return
        if isinstance(flight, _InFlight) and flight.changed:
            self._notify(sub, self.clock())
            self._flush()

    # ----------------------------------------------------------------- expiry, shutdown
    def _arm(self) -> None:
        deadline = self.table.get_timer()
        if deadline == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = deadline
        if deadline is not None:
            self._timer = self.schedule(max(0.0, deadline - self.clock()), self._expire)

    def _expire(self) -> None:
        self._timer = None
        self._timer_at = None
        now = self.clock()
        for sub in self.table.handle_timer(now):
            self.counters["expired"] += 1
            self._final(sub, now)
        self._arm()

    def _final(self, sub: Subscription, now: float) -> None:
        """The terminating NOTIFY of a subscription already out of the table."""
        flight = sub.app_data
        if isinstance(flight, _InFlight):
            flight.tx = None  # the last word goes out whatever is in flight
        self._notify(sub, now)

    def terminate(self, subs: Iterable[Subscription], reason: str) -> None:
        """End ``subs`` with a terminating NOTIFY saying ``reason``."""
        now = self.clock()
        for sub in list(subs):
            if sub.active:
                self.table.terminate(sub, reason)
                self._final(sub, now)
        self._arm()
        self._flush()

    def stop(self) -> None:
        """The switch stops: every subscriber is told (``deactivated``: subscribe again)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.terminate(self.table, "deactivated")

    def _flush(self) -> None:
        """Have the host send what the layer queued, once per loop turn."""
        if self._flush_due:
            return
        self._flush_due = True
        self.schedule(0.0, self._flushed)

    def _flushed(self) -> None:
        self._flush_due = False
