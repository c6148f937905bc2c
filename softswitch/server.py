"""The switch process: builds and wires the parts, starts and stops them.

Transports feed the asyncio driver (softswitch.sip.driver), which runs the sans-I/O
transaction layer and hands its events to request dispatch (softswitch.dispatch): the
registrar, the call manager, the trunk registrar and the qualify pinger. This module owns
their life cycle, the background loops and which local address goes into Via and Contact.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import ssl
import time
from collections.abc import Callable, Sequence

import structlog

from config.models import SwitchConfig, Tenant
from media.control import MediaControl
from media.engine import MediaEngine
from media.pool import MediaWorkerPool
from softswitch.apps.attendant import AttendantService
from softswitch.apps.prompt_recording import PromptRecorder
from softswitch.apps.queue import QueueService
from softswitch.apps.ringgroup import RingGroupService
from softswitch.apps.screening import ScreeningService
from softswitch.apps.voicemail import VoicemailApp
from softswitch.calls import CallManager, CdrWriter
from softswitch.calls.anchor import MediaAnchor, engine_settings
from softswitch.calls.services import CallServices
from softswitch.collector import CycleCollector
from softswitch.directory import Directory
from softswitch.dispatch import (
    ALLOWED_METHODS,
    KNOWN_METHODS,
    SERVER_HEADER,
    SUPPORTED_EXTENSIONS,
    RequestDispatcher,
)
from softswitch.location import LocationService, parse_received
from softswitch.notify.service import Notifications
from softswitch.notify.subscriptions import Notifier
from softswitch.overload import PROBE_PREFIX, OverloadGuard, QueueProbe
from softswitch.park.lot import ParkingLot
from softswitch.park.service import ParkService
from softswitch.prompts import PromptLibrary
from softswitch.prompts.warm import warm_prompts
from softswitch.provisioning.runtime import ProvisioningRuntime
from softswitch.qualify import Qualifier
from softswitch.registrar import Registrar
from softswitch.routing_state import DisasterState
from softswitch.security.guard import ADMIT, REJECT, SecurityGuard, trunk_networks
from softswitch.security.keeper import BanKeeper
from softswitch.security.tollfraud import TollFraudGuard
from softswitch.security.tollfraud_store import CapsKeeper
from softswitch.sip.address import Address
from softswitch.sip.auth import DigestAuthenticator
from softswitch.sip.dialog_layer import DialogLayer
from softswitch.sip.driver import TIMER_TICK, SignallingCounters, SipDriver
from softswitch.sip.message import (
    SipParseError,
    SipRequest,
    make_response,
    new_tag,
    parse_message,
)
from softswitch.sip.timers import TimerSettings
from softswitch.sip.tls_sips import SIPS_REFUSAL, insecure_sips_request, sips_warning
from softswitch.sip.tls_trunks import GatewayTls, TrunkCertificates
from softswitch.sip.transaction import TransactionLayer
from softswitch.sip.transport import TransportManager, reload_certificate, server_ssl_context
from softswitch.trunkreg import TrunkRegistrar
from softswitch.voicemail.mailboxes import Mailboxes
from storage import open_store
from storage.base import Binding, Store
from storage.cdr import Cdr

__all__ = [
    "ALLOWED_METHODS",
    "KNOWN_METHODS",
    "SERVER_HEADER",
    "SUPPORTED_EXTENSIONS",
    "TIMER_TICK",
    "Switch",
    "SwitchCounters",
    "serve",
]

log = structlog.get_logger(__name__)

PURGE_INTERVAL = 30.0
# The driver's counters (received, malformed, answers by status), by their old name.
SwitchCounters = SignallingCounters


class Switch:
    """One softswitch node: listeners, the SIP layers and their driver, registrar,
    location service, calls, trunk registration, qualify."""

    def __init__(
        self, config: SwitchConfig, store: Store | None = None, config_path: str | None = None
    ):
        self.config = config
        self.tls_context: ssl.SSLContext | None = None  # the TLS listeners' (reloadable)
        self.store = store if store is not None else open_store(config.database.url)
        # The provisioning model lives in the store; this keeps the switch on it, live.
        self.provisioning = ProvisioningRuntime(self.store, config, config_path)
        settings = config.sip
        self.transactions = TransactionLayer(
            TimerSettings(t1=settings.timers.t1, t2=settings.timers.t2, t4=settings.timers.t4)
        )
        # [security]: bans, allow lists, scanner and flood filtering (softswitch/security)
        self.guard = SecurityGuard(config.security, time.time, trunk_networks(config.tenants))
        self.bans = BanKeeper(self.guard, self.store)
        # Calling permissions, toll-fraud caps, emergency calls (counted with the guard's).
        self.tollfraud = TollFraudGuard(time.time, self.guard.counters)
        self.caps = CapsKeeper(self.tollfraud, self.store, self._tenants)
        self.server_header = config.security.server_header
        # The dialog (UA) layer over the transactions: the calls' dialogs live there.
        self.dialogs = DialogLayer(
            self.transactions,
            local=self._local,
            allow=", ".join(ALLOWED_METHODS),
            server_header=self.server_header,
            answer_no_dialog=False,  # the dispatcher answers those (501, 405, 481, 200)
        )
        self.counters = SwitchCounters()
        self.overload = OverloadGuard(config.overload)
        self.dispatcher = RequestDispatcher(
            self.transactions,
            self.overload,
            self.counters,
            retry_after=config.overload.retry_after,
            server_header=self.server_header,
        )
        self.driver = SipDriver(
            self.dialogs,
            handle_event=self.dispatcher.handle_event,
            send=self._send,
            counters=self.counters,
            intercept_prefix=PROBE_PREFIX,
            intercept=self._probe_received,
            screen=self._screen,
            answer_stateless=self.dispatcher.answer_without_transaction,
        )
        self.dispatcher.driver = self.driver
        self.transports = TransportManager(
            self.driver.on_message,
            on_error=self.driver.on_transport_error,
            max_message_size=settings.max_message_size,
        )
        # Where every message the switch sends goes (tests swap it to capture them).
        self.send_message: Callable[[bytes, Address], None] = self.transports.send
        self.location = LocationService(self.store)
        self.disaster_state = DisasterState(self.store)
        self._probe: QueueProbe | None = None
        self.listening: list[Address] = []
        self.registrar: Registrar | None = None
        self.directory: Directory | None = None
        self.calls: CallManager | None = None
        # when calls are anchored ([media] anchor): in-process, or worker processes
        self.media: MediaControl | None = None
        self.services: CallServices | None = None  # conferences, monitoring (anchored only)
        self.park: ParkService | None = None  # call park (anchored only)
        # Mailboxes: the notifier's MailboxDirectory (switch.voicemail.add_listener(...)).
        self.voicemail = Mailboxes(config.voicemail, self.store, config.tenants)
        self.queues: QueueService | None = None  # call queues (anchored only)
        self.trunk_registrar: TrunkRegistrar | None = None
        # SUBSCRIBE/NOTIFY (busy lamps, message waiting) and voicemail mail
        self.notifications: Notifications | None = None
        self.qualifier = Qualifier(
            self.transactions,
            self.location,
            local=self._local,
            clock=self.driver.now,
            user_agent=self.server_header,
        )
        self.cdrs = CdrWriter(self.store)
        # called with every finished call's CDR (the admin API's metrics)
        self.cdr_listeners: list[Callable[[Cdr], None]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._via_hosts: dict[str, str] = {}
        self._stopped = asyncio.Event()

    # -- life cycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the store, restore bindings and start listening."""
        self.driver.start()
        await self.store.open()
        self.config = await self.provisioning.boot()
        self.guard.trust(trunk_networks(self.config.tenants))  # the stored tenants' trunks
        secret = self.config.auth.secret_bytes() or await self._persistent_secret()
        authenticator = DigestAuthenticator(
            secret,
            nonce_lifetime=self.config.auth.nonce_lifetime,
            algorithms=tuple(self.config.auth.algorithms),
        )
        restored = await self.location.start()
        await self.bans.start()
        for binding in self.location.all_bindings():
            received = parse_received(binding.received)
            if received is not None:  # an account's own phones are never banned for it
                self.guard.remember(binding.aor, received.host)
        # Disaster plans switched on or off with `softswitch disaster ...` (on any node) take
        # effect for new calls within a second, without a restart: the provisioning runtime
        # refreshes their state together with the rest of the model.
        await self.disaster_state.refresh()
        self.voicemail.update_tenants(self.config.tenants)
        await self.voicemail.start()  # files messages a stop left half-recorded
        settings = self.config.sip
        ssl_context = None
        if settings.tls_certificate is not None:
            ssl_context = server_ssl_context(
                str(settings.tls_certificate),
                str(settings.tls_private_key) if settings.tls_private_key else None,
            )
        self.tls_context = ssl_context
        self.apply_trunk_tls(self.config.tenants)
        # Media first (worker processes take a moment to start): a phone that can register
        # must also be able to call.
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
            response_headers=(("Server", self.server_header),),
            guard=self.guard,
        )
        self.dispatcher.registrar = self.registrar
        self.calls = CallManager(
            self.dialogs,
            directory=self.directory,
            location=self.location,
            authenticator=authenticator,
            clock=self.driver.now,
            schedule=self.driver.schedule,
            local=self._local,
            on_cdr=self._on_cdr,
            allow=", ".join(ALLOWED_METHODS),
            server_header=self.server_header,
            tenants=self.config.tenants,
            local_hosts=frozenset(local_hosts),
            routing_for=self.disaster_state.routing_for,
            anchor=anchor,
            guard=self.guard,
            tollfraud=self.tollfraud,
        )
        self.dispatcher.calls = self.calls
        notifier = Notifier(
            self.transactions,
            directory=self.directory,
            authenticator=authenticator,
            tenants=self.calls.tenants,
            settings=self.config.subscriptions,
            clock=self.driver.now,
            schedule=self.driver.schedule,
            local=self._local,
            server_header=self.server_header,
            guard=self.guard,
        )
        self.notifications = Notifications(
            notifier, self.location, self.config.subscriptions, self.config.smtp
        )
        self.notifications.lamps.follow(self.calls.observers)
        self.dispatcher.notifier = notifier
        self.dispatcher.on_contact_added = self.notifications.contact_added
        # Message-waiting lamps and voicemail mail follow every change of the mailboxes;
        # reminders of messages left before a restart resume.
        self.voicemail.add_listener(self.notifications.attach_mailboxes(self.voicemail))
        for tenant in self.config.tenants:
            for box in self.voicemail.boxes(tenant.name):
                self.notifications.remind(box.address)
        await self.caps.start()
        if anchor is not None:
            self.services = CallServices(self.calls)
            # Auto attendants and voicemail speak from the tenants' prompt library (text to
            # speech, uploads).
            prompts = PromptLibrary.from_config(self.config)
            if self.provisioning.config_path is not None and self.config.prompts.warm_at_start:
                # synthesised ahead, so that a fresh install's first caller need not wait
                warming = warm_prompts(self.provisioning.config_path)
                self._tasks.append(asyncio.create_task(warming, name="prompt-warming"))
            AttendantService(self.calls.applications, self.calls.tenants, prompts)
            VoicemailApp(self.voicemail, prompts).attach(self.calls.applications)
            PromptRecorder(self.calls.applications, self.calls.tenants, prompts)
            # Call queues: one owner per tenant, the queue log in the store.
            self.queues = QueueService(
                self.calls.applications, self.calls.tenants, self.store, prompts, calls=self.calls
            )
            self.cdr_listeners.append(self.queues.on_cdr)
            await self.queues.start()
            ScreeningService(self.calls.confirmations, prompts)
            # Call park: orbits are lamps of the dialog package.
            self.park = ParkService(
                self.calls.applications,
                self.calls.tenants,
                ParkingLot(self.notifications.lamps),
                prompts,
            )
            # Ring groups with an announcement or music are answered first.
            RingGroupService(
                self.calls.applications, self.calls.tenants, self.calls.planner, prompts
            )
        self.cdrs.start()
        self.trunk_registrar = TrunkRegistrar(
            self.transactions,
            tenants=self.config.tenants,
            clock=self.driver.now,
            schedule=self.driver.schedule,
            local=self._local,
            server_header=self.server_header,
        )
        self.trunk_registrar.start()
        await self.provisioning.start(self)
        self.driver.drain(self.driver.now())
        self._tasks.append(asyncio.create_task(self._purge_loop(), name="binding-purge"))
        udp = next((a for a in self.listening if a.transport == "UDP"), None)
        if self.config.overload.max_queue_delay and udp is not None:
            self._probe = QueueProbe(self.overload, udp, self.driver.now)
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
        if self.queues is not None:
            await self.queues.stop()
        if self.trunk_registrar is not None:
            self.trunk_registrar.stop()
        if self.notifications is not None:
            await self.notifications.stop()
        if self.calls is not None:
            # Calls in progress end cleanly (BYE / CANCEL go out) and leave their CDRs.
            self.calls.shutdown()
            self.driver.drain(self.driver.now())
        self.driver.stop()  # queued answers, BYEs and CANCELs leave before the transports close
        if self.media is not None:
            await self.media.close()
        await self.transports.close()
        await self.disaster_state.stop()
        await self.bans.stop()
        await self.caps.stop()
        await self.cdrs.stop()
        await self.location.stop()
        await self.store.close()
        self._stopped.set()
        log.info(
            "switch_stopped",
            bindings=len(self.location),
            overload=self.overload.counters,
            security=self.guard.counters,
            calls=self.calls.counters if self.calls is not None else {},
        )

    async def _persistent_secret(self) -> bytes:
        """The nonce secret, generated once and kept in the store so nonces survive restarts."""
        stored = await self.store.get_setting("auth_secret")
        if stored is None:
            stored = secrets.token_hex(32)
            await self.store.set_setting("auth_secret", stored)
        return stored.encode()

    def _tenants(self) -> list[Tenant]:
        """The tenants provisioned now (the call layer's, changed live)."""
        if self.calls is not None:
            return list(self.calls.tenants.values())
        return list(self.config.tenants)

    # -- the driver's hooks -------------------------------------------------------------------

    def _on_message(self, data: bytes, source: Address) -> None:
        """Feed one message as if a transport delivered it (the transports call the
        driver directly)."""
        self.driver.on_message(data, source)

    def _send(self, data: bytes, dest: Address) -> None:
        self.send_message(data, dest)

    def _on_cdr(self, cdr: Cdr) -> None:
        self.cdrs.add(cdr)
        for listener in self.cdr_listeners:
            try:
                listener(cdr)
            except Exception:
                log.exception("cdr_listener_failed")

    def _screen(self, data: bytes, source: Address) -> bool:
        """The security guard's verdict on one message, before it is parsed
        (softswitch/security/guard.py): False drops it, after a 403 without a challenge
        when banned sources are to be answered ([security] banned_answer = "reject")."""
        verdict = self.guard.screen(data, source.host)
        if verdict == ADMIT:
            if insecure_sips_request(data, source):  # softswitch/sip/tls_sips.py
                self._refuse_sips(data, source)
                return False
            return True
        if verdict == REJECT:
            try:
                message = parse_message(data)
            except SipParseError:
                return False
            if isinstance(message, SipRequest) and message.method != "ACK":
                self.driver.reject(message, source, 403, "Forbidden")
        return False

    def apply_trunk_tls(self, tenants: Sequence[Tenant]) -> None:
        """Mutual TLS for the trunks of ``tenants`` (at start, and when provisioning
        changes them): the listeners ask for client certificates and a trunk's address
        keeps a connection only with the trunk's own; connections to the trunks' TLS
        gateways present our certificate and check theirs (softswitch/sip/tls_trunks.py).
        A trunk CA that cannot be read keeps the previous set-up (logged)."""
        settings = self.config.sip
        ca = self.config.security.trunk_ca_file
        try:
            certificates = TrunkCertificates(tenants, ca)
            gateways = GatewayTls(tenants, settings.tls_certificate, settings.tls_private_key, ca)
        except ValueError as error:
            log.error("trunk_tls_not_applied", error=str(error))
            return
        context = self.tls_context
        if context is not None and certificates.active:
            certificates.configure(context)  # CAs are only ever added to a live context
            self.transports.admit_tls = certificates.admit
        else:
            self.transports.admit_tls = None
        self.transports.tls_client_for = gateways.client_for

    def _refuse_sips(self, data: bytes, source: Address) -> None:
        """480 with Warning 381 "SIPS Required" to a sips: request that came in clear."""
        try:
            message = parse_message(data)
        except SipParseError:
            return
        if isinstance(message, SipRequest) and message.method != "ACK":
            status, reason = SIPS_REFUSAL
            response = make_response(message, status, reason, to_tag=new_tag())
            response.add("Warning", sips_warning(self._local(source)[0]))
            self.driver.send_stateless_response(response, source)

    def _probe_received(self, data: bytes, source: Address) -> bool:
        probe = self._probe
        return probe is not None and probe.received(data, source)

    def _local(self, dest: Address) -> tuple[str, int]:
        """Host and port for our Via/Contact towards ``dest``."""
        return self._via_host(dest), self.transports.local_address(dest.transport).port

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
        if self.qualifier.qualify(binding) is not None:
            self.driver.drain(self.driver.now())

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

    def reload_tls_certificate(self) -> bool:
        """SIGHUP: serve the (renewed) certificate and key files to new TLS connections;
        a bad pair is logged and the old one kept. True when reloaded."""
        settings = self.config.sip
        if self.tls_context is None or settings.tls_certificate is None:
            return False
        try:
            reload_certificate(
                self.tls_context,
                str(settings.tls_certificate),
                str(settings.tls_private_key) if settings.tls_private_key else None,
            )
        except (OSError, ssl.SSLError) as exc:
            log.error(
                "tls.reload_refused", certificate=str(settings.tls_certificate), error=str(exc)
            )
            return False
        log.info("tls.reloaded", certificate=str(settings.tls_certificate))
        return True

    async def run_until_stopped(self) -> None:
        await self._stopped.wait()


async def serve(config: SwitchConfig, config_path: str | None = None) -> None:
    """Run a switch until SIGTERM/SIGINT, then stop it gracefully; SIGHUP reloads the
    provisioning of a `provisioning = "file"` configuration."""
    import signal

    from softswitch.api import start_api

    switch = Switch(config, config_path=config_path)
    await switch.start()
    try:
        api = await start_api(switch)  # the admin API, when [api] enabled
    except OSError:
        await switch.stop()
        raise
    collector = CycleCollector(config.collector)
    collector.start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def hangup() -> None:
        switch.reload_tls_certificate()
        switch.provisioning.reload_soon()

    loop.add_signal_handler(signal.SIGHUP, hangup)
    started = time.monotonic()
    await stop.wait()
    log.info("switch_stopping", uptime_s=round(time.monotonic() - started, 1))
    collector.stop()
    if api is not None:
        await api.stop()
    await switch.stop()
