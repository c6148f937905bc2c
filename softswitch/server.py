"""The switch: transports -> parser -> transaction layer -> registrar and core handlers.

The transaction layer is sans-I/O; this module is its asyncio adapter. Every inbound
message is parsed, checked, fed to the layer, and then the layer is drained: its events are
handled, its datagrams handed to the transports and its next deadline armed on the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from config.models import SwitchConfig
from media.control import MediaControl
from media.engine import MediaEngine
from media.pool import MediaWorkerPool
from softswitch import __version__
from softswitch.calls import CallManager, CdrWriter
from softswitch.calls.anchor import MediaAnchor, engine_settings
from softswitch.calls.services import CallServices
from softswitch.collector import CycleCollector
from softswitch.directory import Directory
from softswitch.location import LocationService
from softswitch.overload import PROBE_PREFIX, OverloadGuard, QueueProbe
from softswitch.provisioning.runtime import ProvisioningRuntime
from softswitch.registrar import Registrar
from softswitch.routing_state import DisasterState
from softswitch.sip.address import Address
from softswitch.sip.auth import DigestAuthenticator
from softswitch.sip.message import (
    SipParseError,
    SipRequest,
    SipResponse,
    check_request,
    make_response,
    new_branch,
    new_call_id,
    new_tag,
    parse_message,
)
from softswitch.sip.timers import TimerSettings
from softswitch.sip.transaction import (
    CancelReceived,
    ClientTransaction,
    RequestReceived,
    ResponseReceived,
    TransactionLayer,
    TransactionTimeout,
    TransportFailed,
    stamp_via,
)
from softswitch.sip.transport import TransportManager, server_ssl_context
from softswitch.trunkreg import TrunkRegistrar
from storage import open_store
from storage.base import Binding, Store

log = structlog.get_logger(__name__)

SERVER_HEADER = f"softswitch/{__version__}"
# Methods the switch handles: registration, OPTIONS, and calls (the B2BUA relays UPDATE and
# INFO within a dialog, and carries out blind transfers asked by REFER). PRACK, SUBSCRIBE and
# MESSAGE are not handled (yet).
ALLOWED_METHODS = (
    "INVITE",
    "ACK",
    "BYE",
    "CANCEL",
    "OPTIONS",
    "REGISTER",
    "UPDATE",
    "INFO",
    "REFER",
)
KNOWN_METHODS = frozenset(
    {
        "INVITE",
        "ACK",
        "BYE",
        "CANCEL",
        "REGISTER",
        "OPTIONS",
        "INFO",
        "PRACK",
        "UPDATE",
        "SUBSCRIBE",
        "NOTIFY",
        "REFER",
        "MESSAGE",
        "PUBLISH",
    }
)
SUPPORTED_EXTENSIONS = ("path", "timer")  # timer: RFC 4028, by the call layer
PURGE_INTERVAL = 30.0
TIMER_TICK = 0.005  # transaction timers are served on this grid (seconds), see _arm_timer


@dataclass
class SwitchCounters:
    """Counters an operator (and the tests) read to see what the switch did."""

    received: int = 0
    malformed: int = 0
    rejected: int = 0
    responses_by_status: dict[int, int] = field(default_factory=dict)


class Switch:
    """One softswitch node: listeners, transaction layer, registrar, location service."""

    def __init__(
        self, config: SwitchConfig, store: Store | None = None, config_path: str | None = None
    ):
        self.config = config
        self.store = store if store is not None else open_store(config.database.url)
        # The provisioning model lives in the store; this keeps the switch on it, live.
        self.provisioning = ProvisioningRuntime(self.store, config, config_path)
        settings = config.sip
        self.transactions = TransactionLayer(
            TimerSettings(t1=settings.timers.t1, t2=settings.timers.t2, t4=settings.timers.t4)
        )
        self.transports = TransportManager(
            self._on_message,
            on_error=self._on_transport_error,
            max_message_size=settings.max_message_size,
        )
        # Where every message the switch sends goes (tests swap it to capture them).
        self.send_message: Callable[[bytes, Address], None] = self.transports.send
        self.location = LocationService(self.store)
        self.disaster_state = DisasterState(self.store)
        self.counters = SwitchCounters()
        self.overload = OverloadGuard(config.overload)
        self._probe: QueueProbe | None = None
        self.listening: list[Address] = []
        self.registrar: Registrar | None = None
        self.directory: Directory | None = None
        self.calls: CallManager | None = None
        # when calls are anchored ([media] anchor): in-process, or worker processes
        self.media: MediaControl | None = None
        self.services: CallServices | None = None  # conferences, monitoring (anchored only)
        self.trunk_registrar: TrunkRegistrar | None = None
        self.cdrs = CdrWriter(self.store)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_deadline: float | None = None
        self._outbox: list[tuple[bytes, Address]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._qualifying: dict[int, Binding] = {}
        self._via_hosts: dict[str, str] = {}
        self._stopped = asyncio.Event()

    # -- life cycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the store, restore bindings and start listening."""
        self._loop = asyncio.get_running_loop()
        await self.store.open()
        self.config = await self.provisioning.boot()
        secret = self.config.auth.secret_bytes() or await self._persistent_secret()
        authenticator = DigestAuthenticator(
            secret,
            nonce_lifetime=self.config.auth.nonce_lifetime,
            algorithms=tuple(self.config.auth.algorithms),
        )
        restored = await self.location.start()
        # Disaster plans switched on or off with `softswitch disaster ...` (on any node) take
        # effect for new calls within a second, without a restart: the provisioning runtime
        # refreshes their state together with the rest of the model.
        await self.disaster_state.refresh()
        settings = self.config.sip
        ssl_context = None
        if settings.tls_certificate is not None:
            ssl_context = server_ssl_context(
                str(settings.tls_certificate),
                str(settings.tls_private_key) if settings.tls_private_key else None,
            )
        for listener in settings.listen:
            address = await self.transports.listen(
                listener.transport,
                listener.host,
                listener.port,
                ssl_context if listener.transport == "tls" else None,
            )
            self.listening.append(address)
        local_hosts = {a.host for a in self.listening}
        if settings.public_host:
            local_hosts.add(settings.public_host)
        local_hosts.update({socket.gethostname(), "localhost"})
        self.directory = Directory(self.config, frozenset(local_hosts))
        self.registrar = Registrar(
            self.config.registrar,
            self.directory,
            authenticator,
            self.location,
            response_headers=(("Server", SERVER_HEADER),),
        )
        anchor = None
        if self.config.media.anchor == "always":
            media_settings = engine_settings(self.config.media, settings.public_host)
            workers = self.config.media.workers
            self.media = (
                MediaWorkerPool(media_settings, workers) if workers else MediaEngine(media_settings)
            )
            await self.media.start()
            anchor = MediaAnchor(self.media, self.config.media)
            await asyncio.to_thread(anchor.load_playlists, self.config.tenants)
        self.calls = CallManager(
            self.transactions,
            directory=self.directory,
            location=self.location,
            authenticator=authenticator,
            timers=self.transactions.timers,
            clock=self._now,
            schedule=self._schedule,
            local=self._local,
            on_cdr=self.cdrs.add,
            allow=", ".join(ALLOWED_METHODS),
            server_header=SERVER_HEADER,
            tenants=self.config.tenants,
            local_hosts=frozenset(local_hosts),
            routing_for=self.disaster_state.routing_for,
            anchor=anchor,
        )
        if anchor is not None and anchor.in_process:
            self.services = CallServices(self.calls)
        self.cdrs.start()
        self.trunk_registrar = TrunkRegistrar(
            self.transactions,
            tenants=self.config.tenants,
            clock=self._now,
            schedule=self._schedule,
            local=self._local,
            server_header=SERVER_HEADER,
        )
        self.trunk_registrar.start()
        await self.provisioning.start(self)
        self._drain(self._now())
        self._tasks.append(asyncio.create_task(self._purge_loop(), name="binding-purge"))
        udp = next((a for a in self.listening if a.transport == "UDP"), None)
        if self.config.overload.max_queue_delay and udp is not None:
            self._probe = QueueProbe(self.overload, udp, self._now)
            self._tasks.append(asyncio.create_task(self._probe.run(), name="queue-probe"))
        if self.config.registrar.qualify_interval > 0:
            self._tasks.append(asyncio.create_task(self._qualify_loop(), name="qualify"))
        log.info(
            "switch_started",
            listening=[str(a) for a in self.listening],
            database=self.store.backend,
            bindings_restored=restored,
            tenants=len(self.config.tenants),
            media="anchored" if self.media is not None else "pass-through",
        )

    async def stop(self) -> None:
        """Stop listening and flush every binding to the store before closing it."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.provisioning.stop()
        if self.trunk_registrar is not None:
            self.trunk_registrar.stop()
        if self.calls is not None:
            # Calls in progress end cleanly (BYE / CANCEL go out) and leave their CDRs.
            self.calls.shutdown()
            self._drain(self._now())
        self._send_outbox()  # queued answers, BYEs and CANCELs leave before the transports close
        if self._timer is not None:
            self._timer.cancel()
        if self.media is not None:
            await self.media.close()
        await self.transports.close()
        await self.disaster_state.stop()
        await self.cdrs.stop()
        await self.location.stop()
        await self.store.close()
        self._stopped.set()
        log.info(
            "switch_stopped",
            bindings=len(self.location),
            overload=self.overload.counters,
            calls=self.calls.counters if self.calls is not None else {},
        )

    async def _persistent_secret(self) -> bytes:
        """The nonce secret, generated once and kept in the store so nonces survive restarts."""
        stored = await self.store.get_setting("auth_secret")
        if stored is None:
            stored = secrets.token_hex(32)
            await self.store.set_setting("auth_secret", stored)
        return stored.encode()

    # -- inbound path ----------------------------------------------------------------------

    def _on_message(self, data: bytes, source: Address) -> None:
        """One message from a transport: parse, check, feed the transaction layer, drain."""
        if (
            data.startswith(PROBE_PREFIX)
            and self._probe is not None
            and self._probe.received(data, source)
        ):
            return
        self.counters.received += 1
        try:
            message = parse_message(data)
        except SipParseError as error:
            self.counters.malformed += 1
            partial = error.message
            if isinstance(partial, SipRequest) and partial.method != "ACK":
                self._answer_stateless(partial, source, error.status, error.reason)
            return
        if isinstance(message, SipRequest):
            problem = check_request(message)
            if problem is not None:
                self.counters.malformed += 1
                if message.method != "ACK":
                    self._answer_stateless(message, source, *problem)
                return
            if message.method == "REGISTER" and not message.get("Authorization"):
                self._answer_without_transaction(message, source)
                return
        now = self._now()
        try:
            self.transactions.receive_message(message, source, now)
        except SipParseError as error:
            # A header the transaction layer needed turned out to be unparseable.
            self.counters.malformed += 1
            if isinstance(message, SipRequest) and message.method != "ACK":
                self._answer_stateless(message, source, error.status, error.reason)
            return
        self._drain(now)

    def _answer_without_transaction(self, request: SipRequest, source: Address) -> None:
        """Answer a REGISTER that carries no credentials statelessly, as Kamailio's
        registrar does: the answer is a challenge (or an error) that changes nothing, so a
        retransmission may simply be answered again (with a fresh nonce). This keeps half
        of all REGISTER traffic out of the transaction table (Timer J holds a UDP
        transaction for 64*T1 = 32 s)."""
        via = request.top_via
        if via is None:
            return
        try:
            stamp_via(request, via, source)
            response = self._answer(request, source)
        except SipParseError as error:
            response = make_response(request, error.status, error.reason, to_tag=new_tag())
        self._count(response.status)
        # The stamped request Via is what the response's top Via was copied from.
        self.transactions.send_stateless_response(response, source, via)
        self._flush()

    def _answer_stateless(
        self, request: SipRequest, source: Address, status: int, reason: str
    ) -> None:
        try:
            response = make_response(request, status, reason, to_tag=new_tag())
            self.transactions.send_stateless_response(response, source)
        except (SipParseError, ValueError):
            return  # not even enough to address an answer: silence
        self._flush()

    def _now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    def _drain(self, now: float) -> None:
        """Handle the layer's events, send what it queued and arm its next timer."""
        layer = self.transactions
        event = layer.next_event()
        while event is not None:
            try:
                self._handle_event(event, now)
            except Exception:
                log.exception("event_failed", event=type(event).__name__)
            event = layer.next_event()
        self._flush()
        self._arm_timer()

    def _flush(self) -> None:
        """Queue what the transaction layer wants sent; it leaves in _send_outbox, once the
        loop has handed up every message that arrived together."""
        out = self.transactions.datagrams_to_send(0.0)
        if out:
            if not self._outbox:
                assert self._loop is not None
                self._loop.call_soon(self._send_outbox)
            self._outbox += out

    def _send_outbox(self) -> None:
        """Send the answers of one loop iteration back to back. A peer asleep between
        datagrams is then woken once per burst instead of once per message: on loopback or
        a LAN the wake-up is most of what a sendto costs (measured ~10 of ~13 us)."""
        outbox, self._outbox = self._outbox, []
        send = self.send_message
        for data, dest in outbox:
            send(data, dest)

    def _arm_timer(self) -> None:
        deadline = self.transactions.get_timer()
        if deadline is not None:
            # Up to the next tick: at line rate some transaction's Timer J or K falls due
            # every few hundred microseconds, and one wake-up per tick fires them together.
            # A few milliseconds late is nothing to timers of T1 (500 ms) and longer.
            deadline = math.ceil(deadline / TIMER_TICK) * TIMER_TICK
        if deadline == self._timer_deadline:
            return
        if self._timer is not None:
            if (
                deadline is not None
                and self._timer_deadline is not None
                and self._timer_deadline <= deadline
            ):
                return  # the armed timer fires first and re-arms
            self._timer.cancel()
            self._timer = None
        self._timer_deadline = deadline
        if deadline is not None:
            assert self._loop is not None
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_deadline = None
        now = self._now()
        self.transactions.handle_timer(now)
        self._drain(now)

    def _schedule(
        self, delay: float, callback: Callable[..., None], *args: object
    ) -> asyncio.TimerHandle:
        """A timer for the call layer: runs ``callback`` then drains the transaction layer."""
        assert self._loop is not None
        return self._loop.call_later(delay, self._run_timer, callback, args)

    def _run_timer(self, callback: Callable[..., None], args: tuple[object, ...]) -> None:
        try:
            callback(*args)
        except Exception:
            log.exception("call_timer_failed")
        self._drain(self._now())

    def _local(self, dest: Address) -> tuple[str, int]:
        """Host and port for our Via/Contact towards ``dest``."""
        return self._via_host(dest), self.transports.local_address(dest.transport).port

    def _on_transport_error(self, dest: Address) -> None:
        now = self._now()
        self.transactions.transport_error(dest, now)
        self._drain(now)

    # -- the core: what the switch does with requests and responses --------------------------

    def _handle_event(self, event: object, now: float) -> None:
        calls = self.calls
        if isinstance(event, RequestReceived):
            request = event.request
            tx = event.transaction
            if tx is None:
                if calls is not None:
                    calls.on_ack(request)
                return
            method = request.method
            to = request.to
            to_tag = to.tag if to is not None else None
            if (
                calls is not None
                and method != "REGISTER"
                and (method == "INVITE" or to_tag)
                and self._precheck(request) is None
            ):
                if not to_tag:
                    if self.overload.admit(calls.calls_in_setup, len(self.transactions), now):
                        calls.on_invite(request, event.source, tx)
                        return
                    response = self._response(request, 503, "Service Unavailable")
                    response.add("Retry-After", str(self.config.overload.retry_after))
                    self._count(503)
                    self.transactions.send_response(tx, response, now)
                    return
                if calls.on_in_dialog(request, event.source, tx):
                    return
            response = self._answer(request, event.source)
            self._count(response.status)
            self.transactions.send_response(tx, response, now)
        elif isinstance(event, ResponseReceived):
            if calls is not None and calls.on_response(event.response, event.transaction):
                return
            registrar = self.trunk_registrar
            if registrar is not None and registrar.on_response(event.response, event.transaction):
                return
            self._on_response(event.response, event.transaction)
        elif isinstance(event, CancelReceived):
            invite = event.invite_transaction
            if calls is None or not calls.on_cancel(invite):
                self.transactions.send_response(
                    invite,
                    make_response(invite.request, 487, "Request Terminated", to_tag=new_tag()),
                    now,
                )
        elif isinstance(event, TransactionTimeout | TransportFailed):
            if calls is not None and calls.on_transaction_failed(
                event.transaction, isinstance(event, TransactionTimeout)
            ):
                return
            if self.trunk_registrar is not None and self.trunk_registrar.on_transaction_failed(
                event.transaction
            ):
                return
            binding = self._qualifying.pop(id(event.transaction), None)
            if binding is not None:
                self.location.set_reachable(binding, False)

    def _count(self, status: int) -> None:
        by_status = self.counters.responses_by_status
        by_status[status] = by_status.get(status, 0) + 1

    def _precheck(self, request: SipRequest) -> SipResponse | None:
        """The answer to a request the core must not process (unknown method, unsupported
        Require such as 100rel -> 420, Max-Forwards exhausted), or None."""
        method = request.method
        if method not in KNOWN_METHODS:
            return self._response(request, 501, "Not Implemented", allow=True)
        # get_all splits the comma list already (Require is a list header); most requests
        # have none, which the cheaper get tells.
        unsupported = (
            [t for t in request.get_all("Require") if t.lower() not in SUPPORTED_EXTENSIONS]
            if request.get("Require") is not None
            else None
        )
        if unsupported and method != "CANCEL":
            response = self._response(request, 420, "Bad Extension")
            response.add("Unsupported", ", ".join(unsupported))
            return response
        if request.max_forwards == 0 and method != "OPTIONS":
            return self._response(request, 483, "Too Many Hops")
        return None

    def _answer(self, request: SipRequest, source: Address) -> SipResponse:
        """The final response to a new request the call layer did not take."""
        method = request.method
        rejection = self._precheck(request)
        if rejection is not None:
            return rejection
        if method == "REGISTER":
            assert self.registrar is not None
            return self.registrar.handle(request, source)
        if method == "OPTIONS":
            response = self._response(request, 200, "OK", allow=True)
            response.add("Accept", "application/sdp")
            response.add("Accept-Encoding", "identity")
            response.add("Accept-Language", "en")
            return response
        if (
            method in ("INVITE", "BYE", "INFO", "PRACK", "UPDATE", "NOTIFY")
            and request.to is not None
            and request.to.tag
        ):
            return self._response(request, 481, "Call/Transaction Does Not Exist")
        return self._response(request, 405, "Method Not Allowed", allow=True)

    def _response(
        self, request: SipRequest, status: int, reason: str, *, allow: bool = False
    ) -> SipResponse:
        response = make_response(request, status, reason, to_tag=new_tag())
        if allow:
            response.add("Allow", ", ".join(ALLOWED_METHODS))
            response.add("Supported", ", ".join(SUPPORTED_EXTENSIONS))
        response.add("Server", SERVER_HEADER)
        return response

    def _on_response(self, response: SipResponse, transaction: ClientTransaction) -> None:
        if response.status < 200:
            return
        binding = self._qualifying.pop(id(transaction), None)
        if binding is not None:
            # Any final answer means the device is alive, whatever it thinks of OPTIONS.
            self.location.set_reachable(binding, True)

    # -- background work -------------------------------------------------------------------

    async def _purge_loop(self) -> None:
        while True:
            await asyncio.sleep(PURGE_INTERVAL)
            self.location.purge_expired()

    async def _qualify_loop(self) -> None:
        interval = self.config.registrar.qualify_interval
        while True:
            await asyncio.sleep(interval)
            for binding in self.location.all_bindings():
                try:
                    self.qualify(binding)
                except (ValueError, LookupError, SipParseError) as error:
                    log.warning("qualify_failed", contact=binding.contact, error=str(error))

    def qualify(self, binding: Binding) -> None:
        """Send an OPTIONS ping to a registered contact (over the connection it used)."""
        dest = self.location.source(binding)
        if dest is None:
            return
        via_host = self._via_host(dest)
        local = self.transports.local_address(dest.transport)
        branch = new_branch()
        host = f"[{via_host}]" if ":" in via_host else via_host
        text = (
            f"OPTIONS {binding.contact} SIP/2.0\r\n"
            f"Via: SIP/2.0/{dest.transport} {host}:{local.port};branch={branch};rport\r\n"
            f"Max-Forwards: 70\r\n"
            f"From: <sip:qualify@{host}>;tag={new_tag()}\r\n"
            f"To: <{binding.contact}>\r\n"
            f"Call-ID: {new_call_id()}\r\n"
            f"CSeq: 1 OPTIONS\r\n"
            f"User-Agent: {SERVER_HEADER}\r\n"
            f"Content-Length: 0\r\n\r\n"
        )
        request = parse_message(text.encode())
        assert isinstance(request, SipRequest)
        now = self._now()
        transaction = self.transactions.send_request(request, dest, now)
        self._qualifying[id(transaction)] = binding
        self._drain(now)

    def _via_host(self, dest: Address) -> str:
        """The address to put in our Via/Contact for a destination: public_host, else the
        local address the kernel routes to that destination from."""
        if self.config.sip.public_host:
            return self.config.sip.public_host
        host = self._via_hosts.get(dest.host)
        if host is None:
            family = socket.AF_INET6 if ":" in dest.host else socket.AF_INET
            with socket.socket(family, socket.SOCK_DGRAM) as probe:
                probe.connect((dest.host, dest.port or 5060))
                host = probe.getsockname()[0]
            self._via_hosts[dest.host] = host
        return host

    async def run_until_stopped(self) -> None:
        await self._stopped.wait()


async def serve(config: SwitchConfig, config_path: str | None = None) -> None:
    """Run a switch until SIGTERM/SIGINT, then stop it gracefully; SIGHUP reloads the
    provisioning of a `provisioning = "file"` configuration."""
    import signal

    switch = Switch(config, config_path=config_path)
    await switch.start()
    collector = CycleCollector(config.collector)
    collector.start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, switch.provisioning.reload_soon)
    started = time.monotonic()
    await stop.wait()
    log.info("switch_stopping", uptime_s=round(time.monotonic() - started, 1))
    collector.stop()
    await switch.stop()
