"""asyncio adapters for the SIP transports: UDP, TCP and TLS (RFC 3261 18).

The :class:`TransportManager` owns the sockets. It hands every received message up as raw
bytes with the :class:`~softswitch.sip.address.Address` it came from (parsing is the next
layer's job) and sends raw bytes to an Address. Stream connections are framed by
:class:`~softswitch.sip.framing.StreamFramer`; a message that arrived on a stream carries the
connection's ``conn_id`` so a reply can go back on the same connection (RFC 3261 18.2.2).

Nothing a peer sends can raise into the event loop: framing errors close the connection
(after a stateless 400/413/513 when the request can be answered, and after a short linger
so the answers to messages framed before the bad bytes still leave), socket and TLS errors only
end the connection concerned, and an exception in a callback is logged and swallowed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import ssl
from collections.abc import Callable
from typing import Any, Final, cast

import structlog

from softswitch.sip.address import Address
from softswitch.sip.framing import PING, FramingError, StreamFramer

__all__ = [
    "TLS12_CIPHERS",
    "MessageHandler",
    "TransportErrorHandler",
    "TransportManager",
    "client_ssl_context",
    "reload_certificate",
    "server_ssl_context",
]

MessageHandler = Callable[[bytes, Address], None]
TransportErrorHandler = Callable[[Address], None]

log = structlog.get_logger(__name__)

_STREAM_TRANSPORTS: Final = frozenset({"TCP", "TLS"})
_PONG: Final = b"\r\n"
_PING_BYTES: Final = b"\r\n\r\n"
_NOISE: Final = b" \t\r\n\0"  # what NAT keep-alive datagrams are made of
_MAX_NOISE_DATAGRAM: Final = 64
_UDP_BUFFER_SIZE: Final = 4 * 1024 * 1024
_CLOSE_GRACE: Final = 2.0  # seconds close() lets connections flush before aborting them
# Seconds a connection whose stream could not be framed stays open (reading nothing) so the
# answers to the messages framed before the bad bytes can still leave on it.
_REJECT_LINGER: Final = 1.0

_RemoteKey = tuple[str, str, int]  # (transport, host, port)


# TLS 1.2 suites allowed (TLS 1.3 has only AEAD suites and keeps OpenSSL's list): forward
# secret key exchange and AEAD ciphers only, as Mozilla's "intermediate" profile and
# RFC 9325 recommend; no CBC, RC4, 3DES, export, anonymous or static-RSA suites.
TLS12_CIPHERS: Final = "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL:!eNULL:!DSS"


def _tls_policy(context: ssl.SSLContext) -> ssl.SSLContext:
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    return context


def server_ssl_context(certfile: str, keyfile: str | None = None) -> ssl.SSLContext:
    """A server-side TLS context (TLS 1.2 or later, AEAD suites with forward secrecy) from a
    PEM certificate (chain) and private key."""
    context = _tls_policy(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER))
    context.load_cert_chain(certfile, keyfile)
    return context


def reload_certificate(context: ssl.SSLContext, certfile: str, keyfile: str | None = None) -> None:
    """Load a renewed certificate and key into a live server ``context``: connections
    accepted from now on present it, established ones keep theirs.

    The pair is checked on a scratch context first, so a bad or mismatched file raises
    (``ssl.SSLError``/``OSError``) and leaves ``context`` serving the old certificate.
    """
    ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(certfile, keyfile)
    context.load_cert_chain(certfile, keyfile)


def client_ssl_context(verify: bool = False, cafile: str | None = None) -> ssl.SSLContext:
    """A client-side TLS context for outbound connections.

    With ``verify=False`` (the default, meant for tests and lab set-ups) the peer's
    certificate and host name are NOT checked, so the link is encrypted but not
    authenticated. Production trunks should use ``verify=True`` (system CAs or ``cafile``).
    """
    context = _tls_policy(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))
    if verify and cafile:
        context.load_verify_locations(cafile=cafile)
    elif verify:
        context.load_default_certs()
    else:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _bare_host(host: str) -> str:
    return host[1:-1] if host[:1] == "[" else host


class _UdpProtocol(asyncio.DatagramProtocol):
    """One UDP listening socket; the hot path, so nothing but the hand-up per datagram."""

    def __init__(self, manager: TransportManager) -> None:
        self._manager = manager
        self.transport: asyncio.DatagramTransport | None = None
        self.family = socket.AF_INET

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # not an isinstance check: asyncio's selector datagram transport does not inherit
        # from DatagramTransport
        self.transport = cast(asyncio.DatagramTransport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            self.family = sock.family
            # bursts of thousands of datagrams per second must not overflow the kernel queue
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _UDP_BUFFER_SIZE)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if len(data) <= _MAX_NOISE_DATAGRAM and not data.strip(_NOISE):
            if data == _PING_BYTES and self.transport is not None:
                self.transport.sendto(_PONG, addr)
            return
        self._manager._deliver(data, Address("UDP", addr[0], addr[1]))

    def error_received(self, exc: Exception) -> None:
        # ICMP errors from earlier sendto() calls; they name no destination, so there is
        # nobody to report them to (the transaction timers cover the loss).
        pass


class _StreamConnection(asyncio.Protocol):
    """One TCP or TLS connection, inbound or outbound."""

    def __init__(
        self, manager: TransportManager, transport_name: str, inbound: bool = False
    ) -> None:
        self._manager = manager
        self.transport_name = transport_name
        self.inbound = inbound  # accepted by a listener (else opened by us)
        self.conn_id = next(manager._conn_ids)
        self.transport: asyncio.Transport | None = None
        self.address = Address(transport_name, "", 0, self.conn_id)
        self.keys: list[_RemoteKey] = []
        self.last_activity = 0.0
        self.lost: asyncio.Future[None] | None = None
        self._loop = manager._get_loop()
        self._framer = StreamFramer(manager.max_message_size, manager.max_header_size)
        self._idle_handle: asyncio.TimerHandle | None = None

    @property
    def alive(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        if not peer:  # the peer left before we got here
            transport.abort()
            return
        admit = self._manager.admit_tls
        if (
            admit is not None
            and self.inbound
            and self.transport_name == "TLS"
            and not admit(peer[0], transport.get_extra_info("ssl_object"))
        ):
            transport.abort()  # a trunk's address without the trunk's certificate
            return
        self.address = Address(self.transport_name, peer[0], peer[1], self.conn_id)
        self.lost = self._loop.create_future()
        self.last_activity = self._loop.time()
        self._idle_handle = self._loop.call_later(self._manager.idle_timeout, self._check_idle)
        self._manager._register(self, (self.transport_name, peer[0], peer[1]))

    def data_received(self, data: bytes) -> None:
        self.last_activity = self._loop.time()
        for item in self._framer.feed(data):
            if type(item) is bytes:
                self._manager._deliver(item, self.address)
            elif item is PING:
                self.write(_PONG)
            elif isinstance(item, FramingError):
                self._reject(item)

    def eof_received(self) -> bool:
        return False  # half-closed by the peer: close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        if self._idle_handle is not None:
            self._idle_handle.cancel()
            self._idle_handle = None
        self._manager._unregister(self)
        if self.lost is not None and not self.lost.done():
            self.lost.set_result(None)

    def write(self, data: bytes) -> bool:
        """Queue ``data``; False when the connection is gone or its peer stopped reading."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return False
        transport.write(data)
        self.last_activity = self._loop.time()
        if transport.get_write_buffer_size() > self._manager.max_write_buffer:
            transport.abort()
            return False
        return True

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def _reject(self, error: FramingError) -> None:
        """The stream cannot be framed any further: read no more, answer, then close.

        Messages framed before the bad bytes (often in the same read) were handed up and
        are being answered: their answers leave in a later loop iteration, some after a
        store lookup. So the error answer is queued behind them (``call_soon``) and the
        connection lingers ``_REJECT_LINGER`` seconds before closing; an answer later than
        that reopens a connection as RFC 3261 18.2.2 says.
        """
        log.debug(
            "sip.stream.rejected",
            peer=str(self.address),
            status=error.status,
            reason=error.reason,
        )
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        with contextlib.suppress(RuntimeError):  # uvloop: already paused or closing
            transport.pause_reading()
        self._loop.call_soon(self._answer_reject, error)

    def _answer_reject(self, error: FramingError) -> None:
        response = error.response()
        if response is not None:
            self.write(response)
        if self._idle_handle is not None:
            self._idle_handle.cancel()
        # close() flushes what is queued first
        self._idle_handle = self._loop.call_later(_REJECT_LINGER, self.close)

    def _check_idle(self) -> None:
        idle = self._loop.time() - self.last_activity
        timeout = self._manager.idle_timeout
        if idle >= timeout:
            self._idle_handle = None
            self.close()
        else:
            self._idle_handle = self._loop.call_later(timeout - idle, self._check_idle)


class _PendingConnect:
    """An outbound connection being opened and the messages waiting for it."""

    __slots__ = ("queue", "task")

    def __init__(self) -> None:
        self.queue: list[tuple[bytes, Address]] = []
        self.task: asyncio.Task[None] | None = None


class TransportManager:
    """Owns the SIP listeners and stream connections of one switch.

    ``on_message(data, source)`` receives each message's raw bytes; ``source`` names the
    connection for streams. ``on_error(dest)`` is told, from the event loop, when a message
    to ``dest`` could not be sent (connection refused or timed out, connection lost, no
    listener for the transport). Stream connections idle for ``idle_timeout`` seconds are
    closed (any traffic, keep-alives included, counts as activity). Outbound TLS uses
    ``tls_client_context``; by default a context that does NOT verify the peer's
    certificate (see :func:`client_ssl_context`); pass a verifying one in production.
    UDP destinations must be IP literals (resolution is the caller's job, RFC 3263).
    """

    def __init__(
        self,
        on_message: MessageHandler,
        *,
        on_error: TransportErrorHandler | None = None,
        max_message_size: int = 65535,
        max_header_size: int | None = None,
        idle_timeout: float = 600.0,
        connect_timeout: float = 10.0,
        max_write_buffer: int = 2 * 1024 * 1024,
        tls_client_context: ssl.SSLContext | None = None,
    ) -> None:
        if idle_timeout <= 0 or connect_timeout <= 0:
            raise ValueError("timeouts must be positive")
        self.on_message = on_message
        self.on_error = on_error
        self.max_message_size = max_message_size
        self.max_header_size = max_header_size
        self.idle_timeout = idle_timeout
        self.connect_timeout = connect_timeout
        self.max_write_buffer = max_write_buffer
        self._tls_client_context = tls_client_context
        # Asked about each accepted TLS connection once its handshake is done: (peer host,
        # ssl object) -> keep it? (mutual TLS for trunks, softswitch.sip.tls_trunks)
        self.admit_tls: Callable[[str, Any], bool] | None = None
        # The TLS set-up of an outbound connection to (host, port), when it is not the
        # default: (context, server name, check of the connected peer) (trunks' gateways).
        self.tls_client_for: (
            Callable[[str, int], tuple[ssl.SSLContext, str | None, Callable[[Any], bool]] | None]
            | None
        ) = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._conn_ids = itertools.count(1)
        self._udp: list[_UdpProtocol] = []
        self._servers: list[asyncio.Server] = []
        self._local: dict[str, Address] = {}
        self._conns: dict[int, _StreamConnection] = {}
        self._by_remote: dict[_RemoteKey, _StreamConnection] = {}
        self._pending: dict[_RemoteKey, _PendingConnect] = {}
        self._closed = False

    # -- public API -----------------------------------------------------------------------

    @property
    def connection_count(self) -> int:
        """Open stream connections, inbound and outbound."""
        return len(self._conns)

    async def listen(
        self, transport: str, host: str, port: int, ssl_context: ssl.SSLContext | None = None
    ) -> Address:
        """Start a listener; ``port`` 0 lets the OS pick. Returns the bound address."""
        if self._closed:
            raise RuntimeError("transport manager is closed")
        name = transport.upper()
        loop = self._get_loop()
        host = _bare_host(host)
        if name == "UDP":
            _, protocol = await loop.create_datagram_endpoint(
                lambda: _UdpProtocol(self), local_addr=(host, port)
            )
            assert protocol.transport is not None
            sockname = protocol.transport.get_extra_info("sockname")
            self._udp.append(protocol)
        elif name in _STREAM_TRANSPORTS:
            if name == "TLS" and ssl_context is None:
                raise ValueError("a TLS listener needs an ssl_context (server_ssl_context())")
            if name == "TCP" and ssl_context is not None:
                raise ValueError("ssl_context given for a TCP listener; use TLS")
            server = await loop.create_server(
                lambda: _StreamConnection(self, name, True),
                host,
                port,
                ssl=ssl_context,
                reuse_address=True,
            )
            # uvloop hands back a list where typeshed says tuple, which mypyc would check
            sockname = cast(Any, server).sockets[0].getsockname()
            self._servers.append(server)
        else:
            raise ValueError(f"unsupported transport {transport!r}")
        address = Address(name, sockname[0], sockname[1])
        self._local.setdefault(name, address)
        return address

    def local_address(self, transport: str) -> Address:
        """The (first) listening address for ``transport``, for Via and Contact."""
        try:
            return self._local[transport.upper()]
        except KeyError:
            raise LookupError(f"no {transport} listener") from None

    def send(self, data: bytes, dest: Address) -> None:
        """Send one message (or keep-alive) to ``dest``; failures go to ``on_error``."""
        name = dest.transport
        if name != "UDP":  # Address transports are upper-case; be lenient all the same
            name = name.upper()
        if name == "UDP":
            self._send_udp(data, dest)
        elif name in _STREAM_TRANSPORTS and not self._closed:
            self._send_stream(name, data, dest)
        else:
            self._report_error(dest)

    async def close(self) -> None:
        """Stop listening, close every connection and cancel pending connects."""
        if self._closed:
            return
        self._closed = True
        tasks = [p.task for p in self._pending.values() if p.task is not None]
        for task in tasks:
            task.cancel()
        for server in self._servers:
            server.close()
        for protocol in self._udp:
            if protocol.transport is not None:
                protocol.transport.close()
        conns = list(self._conns.values())
        for conn in conns:
            conn.close()
        waiters = [c.lost for c in conns if c.lost is not None]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if waiters:
            _, stuck = await asyncio.wait(waiters, timeout=_CLOSE_GRACE)
            if stuck:  # peers that do not read: drop what is left unsent
                for conn in conns:
                    conn.abort()
        self._servers.clear()
        self._udp.clear()
        self._local.clear()
        await asyncio.sleep(0)  # let the transports run connection_lost

    # -- internals --------------------------------------------------------------------------

    def _get_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def _deliver(self, data: bytes, source: Address) -> None:
        try:
            self.on_message(data, source)
        except Exception:
            log.exception("sip.transport.handler_failed", source=str(source))

    def _report_error(self, dest: Address) -> None:
        if self.on_error is not None:
            self._get_loop().call_soon(self._call_on_error, dest)

    def _call_on_error(self, dest: Address) -> None:
        if self.on_error is None:
            return
        try:
            self.on_error(dest)
        except Exception:
            log.exception("sip.transport.error_handler_failed", dest=str(dest))

    def _send_udp(self, data: bytes, dest: Address) -> None:
        host = _bare_host(dest.host)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        for protocol in self._udp:
            if protocol.family == family and protocol.transport is not None:
                try:
                    protocol.transport.sendto(data, (host, dest.port))
                except (OSError, ValueError, TypeError, OverflowError):
                    self._report_error(dest)
                return
        self._report_error(dest)

    def _send_stream(self, name: str, data: bytes, dest: Address) -> None:
        conn: _StreamConnection | None = None
        if dest.conn_id is not None:
            conn = self._conns.get(dest.conn_id)
            if conn is not None and (conn.transport_name != name or not conn.alive):
                conn = None
        key = (name, _bare_host(dest.host), dest.port)
        if conn is None:
            conn = self._by_remote.get(key)
            if conn is not None and not conn.alive:
                conn = None
        if conn is not None:
            if not conn.write(data):
                self._report_error(dest)
            return
        pending = self._pending.get(key)
        if pending is None:
            pending = self._pending[key] = _PendingConnect()
            pending.task = self._get_loop().create_task(self._connect(key, pending))
        pending.queue.append((data, dest))

    async def _connect(self, key: _RemoteKey, pending: _PendingConnect) -> None:
        name, host, port = key
        loop = self._get_loop()
        context: ssl.SSLContext | None = None
        server_name: str | None = None
        accept: Callable[[Any], bool] | None = None
        if name == "TLS":
            chosen = self.tls_client_for(host, port) if self.tls_client_for is not None else None
            if chosen is not None:
                context, server_name, accept = chosen
            else:
                if self._tls_client_context is None:
                    self._tls_client_context = client_ssl_context(verify=False)
                context = self._tls_client_context
            server_name = server_name or host
        conn: _StreamConnection | None = None
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, protocol = await loop.create_connection(
                    lambda: _StreamConnection(self, name),
                    host,
                    port,
                    ssl=context,
                    server_hostname=server_name,
                )
            conn = protocol
            tls = conn.transport
            if (
                accept is not None
                and tls is not None
                and not accept(tls.get_extra_info("ssl_object"))
            ):
                conn.abort()  # e.g. not the pinned certificate
                conn = None
        except Exception as exc:  # refused, unreachable, timeout, TLS handshake, bad host
            log.debug(
                "sip.stream.connect_failed", transport=name, host=host, port=port, error=repr(exc)
            )
        finally:
            if self._pending.get(key) is pending:
                del self._pending[key]
        if conn is not None and conn.alive:
            if key not in conn.keys:
                self._by_remote[key] = conn  # also findable under the name it was asked by
                conn.keys.append(key)
            for data, dest in pending.queue:
                if not conn.write(data):
                    self._report_error(dest)
        else:
            for dest in dict.fromkeys(dest for _, dest in pending.queue):
                self._report_error(dest)

    def _register(self, conn: _StreamConnection, key: _RemoteKey) -> None:
        if self._closed:
            conn.abort()
            return
        self._conns[conn.conn_id] = conn
        self._by_remote[key] = conn
        conn.keys.append(key)

    def _unregister(self, conn: _StreamConnection) -> None:
        self._conns.pop(conn.conn_id, None)
        for key in conn.keys:
            if self._by_remote.get(key) is conn:
                del self._by_remote[key]
        conn.keys.clear()
