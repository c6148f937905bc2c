"""TransportManager over loopback: UDP, TCP and TLS, real sockets, on asyncio and uvloop.

Every scenario runs on a fresh loop whose exception handler records calls: whatever a peer
sends, nothing may reach it.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from softswitch import loop as switch_loop
from softswitch.loop import loop_factory
from softswitch.sip.address import Address
from softswitch.sip.transport import (
    TransportManager,
    client_ssl_context,
    server_ssl_context,
)

HOST = "127.0.0.1"
SCENARIO_TIMEOUT = 20.0
WAIT = 5.0  # bound on any single wait for network traffic

LOOP_FACTORIES: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "preferred": loop_factory(),  # uvloop when installed
}

Runner = Callable[[Coroutine[Any, Any, None]], None]


@pytest.fixture(params=sorted(LOOP_FACTORIES))
def run(request: pytest.FixtureRequest) -> Runner:
    """Run a scenario on the parametrised loop; fail if the loop's exception handler fired."""

    def runner(scenario: Coroutine[Any, Any, None]) -> None:
        reported: list[dict[str, Any]] = []
        with asyncio.Runner(loop_factory=LOOP_FACTORIES[request.param]) as loop_runner:
            loop = loop_runner.get_loop()
            loop.set_exception_handler(lambda _loop, context: reported.append(context))
            loop_runner.run(asyncio.wait_for(scenario, SCENARIO_TIMEOUT))
        assert reported == []

    return runner


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A throw-away self-signed certificate and key made with the openssl command."""
    directory: Path = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-nodes", "-newkey", "ec"),
            *("-pkeyopt", "ec_paramgen_curve:prime256v1"),
            *("-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost"),
            *("-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    yield str(cert), str(key)


def request(method: str = "OPTIONS", body: bytes = b"", call_id: str = "c1") -> bytes:
    return (
        f"{method} sip:bob@example.com SIP/2.0\r\n"
        "Via: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bK-1\r\n"
        "From: <sip:alice@example.com>;tag=a1\r\nTo: <sip:bob@example.com>\r\n"
        f"Call-ID: {call_id}\r\nCSeq: 1 {method}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def response(status: int = 200, call_id: str = "c1") -> bytes:
    return (
        f"SIP/2.0 {status} OK\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bK-1\r\n"
        "From: <sip:alice@example.com>;tag=a1\r\nTo: <sip:bob@example.com>;tag=b1\r\n"
        f"Call-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    ).encode()


class Inbox:
    """What the transport layer handed up (messages) and reported (errors)."""

    def __init__(self) -> None:
        self.messages: asyncio.Queue[tuple[bytes, Address]] = asyncio.Queue()
        self.errors: asyncio.Queue[Address] = asyncio.Queue()

    def on_message(self, data: bytes, source: Address) -> None:
        self.messages.put_nowait((data, source))

    def on_error(self, dest: Address) -> None:
        self.errors.put_nowait(dest)

    async def next(self) -> tuple[bytes, Address]:
        return await asyncio.wait_for(self.messages.get(), WAIT)

    async def next_error(self) -> Address:
        return await asyncio.wait_for(self.errors.get(), WAIT)


def manager(inbox: Inbox, **kwargs: Any) -> TransportManager:
    return TransportManager(inbox.on_message, on_error=inbox.on_error, **kwargs)


class UdpPeer(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received: asyncio.Queue[bytes] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.received.put_nowait(data)

    @classmethod
    async def open(cls, remote: Address) -> tuple[UdpPeer, int]:
        loop = asyncio.get_running_loop()
        transport, peer = await loop.create_datagram_endpoint(
            cls, local_addr=(HOST, 0), remote_addr=(remote.host, remote.port)
        )
        return peer, transport.get_extra_info("sockname")[1]

    def send(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.sendto(data)

    async def next(self) -> bytes:
        return await asyncio.wait_for(self.received.get(), WAIT)


async def read_until_eof(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends before it closes (a reset counts as a close)."""
    data = b""
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), WAIT):
            data += chunk
    except (ConnectionError, ssl.SSLError):
        pass
    return data


async def read_like(reader: asyncio.StreamReader, expected: bytes) -> bytes:
    """As many bytes as ``expected`` has (what came, to compare with it)."""
    return await asyncio.wait_for(reader.readexactly(len(expected)), WAIT)


async def eventually(condition: Callable[[], bool]) -> None:
    for _ in range(int(WAIT / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
    return port


# -- UDP --------------------------------------------------------------------------------------


def test_udp_message_up_and_reply_back(run: Runner) -> None:
    async def scenario() -> None:
        inbox = Inbox()
        switch = manager(inbox)
        local = await switch.listen("udp", HOST, 0)
        assert local.transport == "UDP" and local.port > 0
        assert switch.local_address("UDP") == local
        peer, peer_port = await UdpPeer.open(local)
        peer.send(request())
        data, source = await inbox.next()
        assert data == request()
        assert source == Address("UDP", HOST, peer_port, None)
        switch.send(response(), source)
        assert await peer.next() == response()
        await switch.close()

    run(scenario())


def test_udp_keepalive_pong_and_noise_ignored(run: Runner) -> None:
    async def scenario() -> None:
        inbox = Inbox()
        switch = manager(inbox)
        peer, _ = await UdpPeer.open(await switch.listen("UDP", HOST, 0))
        peer.send(b"\r\n\r\n")
        assert await peer.next() == b"\r\n"
        for noise in (b"\r\n", b" ", b"\0\0\0\0", b"\r\n\r\n\r\n"):
            peer.send(noise)
        peer.send(request(call_id="after-noise"))
        data, _ = await inbox.next()
        assert data == request(call_id="after-noise")
        assert inbox.messages.empty() and peer.received.empty()
        await switch.close()

    run(scenario())


def test_udp_oversized_and_junk_datagrams_are_handed_up(run: Runner) -> None:
    async def scenario() -> None:
        inbox = Inbox()
        switch = manager(inbox, max_message_size=1000)
        peer, _ = await UdpPeer.open(await switch.listen("UDP", HOST, 0))
        big = request(body=b"x" * 60000)
        junk = bytes(range(256)) * 4
        peer.send(big)
        peer.send(junk)
        assert (await inbox.next())[0] == big
        assert (await inbox.next())[0] == junk
        await switch.close()

    run(scenario())


def test_udp_send_errors_are_reported(run: Runner) -> None:
    async def scenario() -> None:
        inbox = Inbox()
        switch = manager(inbox)
        nowhere = Address("UDP", HOST, 9999)
        switch.send(request(), nowhere)  # no UDP listener yet
        assert await inbox.next_error() == nowhere
        await switch.listen("UDP", HOST, 0)
        unknown = Address("SCTP", HOST, 9999)
        switch.send(request(), unknown)
        assert await inbox.next_error() == unknown
        await switch.close()

    run(scenario())


# -- TCP --------------------------------------------------------------------------------------


def test_tcp_messages_framed_and_reply_on_same_connection(run: Runner) -> None:
    async def scenario() -> None:
        inbox = Inbox()
        switch = manager(inbox)
        local = await switch.listen("TCP", HOST, 0)
        reader, writer = await asyncio.open_connection(HOST, local.port)
        first, second = request(call_id="one", body=b"hello"), request(call_id="two")
        third = request(call_id="three", body=b"v=0\r\n")
        writer.write(b"\r\n" + first + second + third[:30])
        await writer.drain()
        writer.write(third[30:])
        received = [await inbox.next() for _ in range(3)]
        assert [data for data, _ in received] == [first, second, third]
        source = received[0][1]
        assert {s for _, s in received} == {source}
        assert source.transport == "TCP" and source.conn_id is not None
        assert (source.host, source.port) == writer.get_extra_info("sockname")[:2]
        switch.send(response(), source)
        assert await asyncio.wait_for(reader.readexactly(len(response())), WAIT) == response()
        assert switch.connection_count == 1
        writer.close()
        await eventually(lambda: switch.connection_count == 0)
        await switch.close()

    run(scenario())


def test_tcp_keepalive_ping_gets_pong(run: Runner) -> None:
    async def scenario() -> None:
        inbox = Inbox()
        switch = manager(inbox)
        local = await switch.listen("TCP", HOST, 0)
        reader, writer = await asyncio.open_connection(HOST, local.port)
        writer.write(b"\r\n\r")
        await writer.drain()
        writer.write(b"\n")
        assert await asyncio.wait_for(reader.readexactly(2), WAIT) == b"\r\n"
        writer.write(b"\r\n\r\n" + request())
        assert await asyncio.wait_for(reader.readexactly(2), WAIT) == b"\r\n"
        assert (await inbox.next())[0] == request()
        writer.close()
        await switch.close()

    run(scenario())


def test_send_picks_the_connection_by_conn_id_then_by_remote(run: Runner) -> None:
    async def scenario() -> None:
        inbox = Inbox()
        switch = manager(inbox)
        local = await switch.listen("TCP", HOST, 0)
        peers = [await asyncio.open_connection(HOST, local.port) for _ in range(2)]
        sources = []
        for index, (_, writer) in enumerate(peers):
            writer.write(request(call_id=f"peer{index}"))
            sources.append((await inbox.next())[1])
        assert sources[0].conn_id != sources[1].conn_id
        for index in (1, 0):
            switch.send(response(call_id=f"to{index}"), sources[index])
        for index, (reader, _) in enumerate(peers):
            expected = response(call_id=f"to{index}")
            assert await read_like(reader, expected) == expected
        # without conn_id, or with a stale one, the live connection to host:port is used
        for conn_id in (None, 987654):
            switch.send(response(call_id="any"), sources[1]._replace(conn_id=conn_id))
            expected = response(call_id="any")
            assert await read_like(peers[1][0], expected) == expected
        assert switch.connection_count == 2
        for _, writer in peers:
            writer.close()
        await switch.close()

    run(scenario())


def test_outbound_connection_opened_on_send_and_reused(run: Runner) -> None:
    async def scenario() -> None:
        accepted: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]]
        accepted = asyncio.Queue()

        async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted.put_nowait((reader, writer))

        peer = await asyncio.start_server(on_client, HOST, 0)
        peer_port = peer.sockets[0].getsockname()[1]
        inbox = Inbox()
        switch = manager(inbox)
        dest = Address("TCP", HOST, peer_port)
        switch.send(request(call_id="q1"), dest)  # both queued while connecting
        switch.send(request(call_id="q2"), dest)
        reader, writer = await asyncio.wait_for(accepted.get(), WAIT)
        expected = request(call_id="q1") + request(call_id="q2")
        assert await asyncio.wait_for(reader.readexactly(len(expected)), WAIT) == expected
        switch.send(request(call_id="q3"), dest)  # reuses the open connection
        assert await read_like(reader, request(call_id="q3")) == request(call_id="q3")
        writer.write(response(call_id="q3"))
        data, source = await inbox.next()
        assert data == response(call_id="q3")
        assert (source.transport, source.host, source.port) == ("TCP", HOST, peer_port)
        assert source.conn_id is not None
        assert accepted.empty() and switch.connection_count == 1
        writer.close()
        peer.close()
        await switch.close()

    run(scenario())


def test_connect_failure_reported_for_each_destination(run: Runner) -> None:
    async def scenario() -> None:
        inbox = Inbox()
        switch = manager(inbox)
        port = closed_port()
        first, second = Address("TCP", HOST, port), Address("TCP", HOST, port, 55)
        switch.send(request(), first)
        switch.send(request(), second)
        switch.send(request(), first)
        assert {await inbox.next_error(), await inbox.next_error()} == {first, second}
        assert inbox.errors.empty() and switch.connection_count == 0
        await switch.close()

    run(scenario())


def with_length(header: bytes) -> bytes:
    """A request whose Content-Length header is replaced by ``header`` (or removed)."""
    return request().replace(b"Content-Length: 0\r\n", header)


GARBAGE = [
    pytest.param(bytes(range(256)) * 400, False, id="binary-junk"),
    pytest.param(request()[:-10], False, id="half-message-then-disconnect"),
    pytest.param(request(body=b"abc")[:-2], False, id="half-body-then-disconnect"),
    pytest.param(b"INVITE sip:x SIP/2.0\r\nX: " + b"a" * 10_000_000, False, id="10MB-header"),
    pytest.param(with_length(b"Content-Length: -1\r\n"), True, id="cl-negative"),
    pytest.param(with_length(b"Content-Length: abc\r\n"), True, id="cl-abc"),
    pytest.param(with_length(b"l: 99999999\r\n"), True, id="cl-huge"),
    pytest.param(with_length(b""), True, id="cl-missing"),
]


@pytest.mark.parametrize(("garbage", "answered"), GARBAGE)
def test_tcp_garbage_closes_only_that_connection(
    run: Runner, garbage: bytes, answered: bool
) -> None:
    async def scenario() -> None:
        inbox = Inbox()
        switch = manager(inbox)
        local = await switch.listen("TCP", HOST, 0)
        bystander_reader, bystander = await asyncio.open_connection(HOST, local.port)
        reader, writer = await asyncio.open_connection(HOST, local.port)
        writer.write(garbage)
        try:
            await asyncio.wait_for(writer.drain(), WAIT)
            if not answered:
                writer.write_eof()  # the half message ends here
        except ConnectionError:
            pass
        answer = await read_until_eof(reader)
        writer.close()
        if answered:
            status = b"413" if b"99999999" in garbage else b"400"
            assert answer.startswith(b"SIP/2.0 " + status + b" ")
            assert b"\r\nCall-ID: c1\r\n" in answer and answer.endswith(b"\r\n\r\n")
        else:
            assert answer == b""
        await eventually(lambda: switch.connection_count == 1)
        assert inbox.messages.empty()
        # the switch still serves the others
        bystander.write(request(call_id="still-here"))
        data, source = await inbox.next()
        assert data == request(call_id="still-here")
        switch.send(response(), source)
        got = await asyncio.wait_for(bystander_reader.readexactly(len(response())), WAIT)
        assert got == response()
        bystander.close()
        await switch.close()

    run(scenario())


def test_tcp_answers_to_messages_before_garbage_still_leave(run: Runner) -> None:
    """A read that carries a message and then bytes that frame as nothing: the message is
    handed up and its answer, sent after the handler returned (as the switch sends), still
    goes out on the connection, as does the error answer; then the connection closes."""

    async def scenario() -> None:
        inbox = Inbox()
        switch = manager(inbox)
        local = await switch.listen("TCP", HOST, 0)
        reader, writer = await asyncio.open_connection(HOST, local.port)
        writer.write(request(call_id="first") + with_length(b""))
        data, source = await inbox.next()
        assert data == request(call_id="first")
        await asyncio.sleep(0)  # a loop iteration later, as the switch's answers leave
        switch.send(response(call_id="first"), source)
        answer = await read_until_eof(reader)
        writer.close()
        assert response(call_id="first") in answer
        assert answer.replace(response(call_id="first"), b"").startswith(b"SIP/2.0 400 ")
        await eventually(lambda: switch.connection_count == 0)
        assert inbox.messages.empty()
        await switch.close()

    run(scenario())


def test_idle_connection_closed(run: Runner) -> None:
    async def scenario() -> None:
        inbox = Inbox()
        switch = manager(inbox, idle_timeout=0.2)
        local = await switch.listen("TCP", HOST, 0)
        reader, writer = await asyncio.open_connection(HOST, local.port)
        writer.write(request())
        await inbox.next()
        assert await read_until_eof(reader) == b""
        await eventually(lambda: switch.connection_count == 0)
        writer.close()
        await switch.close()

    run(scenario())


def test_failing_handler_does_not_break_the_connection(run: Runner) -> None:
    async def scenario() -> None:
        seen: list[bytes] = []

        def on_message(data: bytes, source: Address) -> None:
            seen.append(data)
            raise RuntimeError("bug in the layer above")

        switch = TransportManager(on_message)
        local = await switch.listen("TCP", HOST, 0)
        reader, writer = await asyncio.open_connection(HOST, local.port)
        writer.write(request(call_id="a") + request(call_id="b") + b"\r\n\r\n")
        assert await asyncio.wait_for(reader.readexactly(2), WAIT) == b"\r\n"
        assert seen == [request(call_id="a"), request(call_id="b")]
        writer.close()
        await switch.close()

    run(scenario())


def test_close_ends_connections_and_refuses_sends(run: Runner) -> None:
    async def scenario() -> None:
        inbox = Inbox()
        switch = manager(inbox)
        local = await switch.listen("TCP", HOST, 0)
        reader, writer = await asyncio.open_connection(HOST, local.port)
        writer.write(request())
        _, source = await inbox.next()
        await switch.close()
        assert await read_until_eof(reader) == b""
        assert switch.connection_count == 0
        switch.send(response(), source)
        assert await inbox.next_error() == source
        writer.close()
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection(HOST, local.port)

    run(scenario())


def test_listen_argument_errors(run: Runner) -> None:
    async def scenario() -> None:
        switch = TransportManager(lambda data, source: None)
        with pytest.raises(ValueError):
            await switch.listen("SCTP", HOST, 0)
        with pytest.raises(ValueError):
            await switch.listen("TLS", HOST, 0)
        with pytest.raises(LookupError):
            switch.local_address("TCP")
        await switch.close()

    run(scenario())


# -- TLS --------------------------------------------------------------------------------------


def test_tls_request_and_reply(run: Runner, certificate: tuple[str, str]) -> None:
    async def scenario() -> None:
        inbox = Inbox()
        switch = manager(inbox)
        local = await switch.listen("TLS", HOST, 0, ssl_context=server_ssl_context(*certificate))
        assert local.transport == "TLS"
        verifying = client_ssl_context(verify=True, cafile=certificate[0])
        reader, writer = await asyncio.open_connection(
            HOST, local.port, ssl=verifying, server_hostname="localhost"
        )
        writer.write(request(body=b"secret") + b"\r\n\r\n")
        assert await asyncio.wait_for(reader.readexactly(2), WAIT) == b"\r\n"
        data, source = await inbox.next()
        assert data == request(body=b"secret")
        assert source.transport == "TLS" and source.conn_id is not None
        switch.send(response(), source)
        assert await asyncio.wait_for(reader.readexactly(len(response())), WAIT) == response()
        writer.close()
        await switch.close()

    run(scenario())


def test_tls_outbound_between_two_managers(run: Runner, certificate: tuple[str, str]) -> None:
    async def scenario() -> None:
        server_inbox, client_inbox = Inbox(), Inbox()
        server, client = manager(server_inbox), manager(client_inbox)
        local = await server.listen("TLS", HOST, 0, ssl_context=server_ssl_context(*certificate))
        client.send(request(call_id="tls-out"), Address("TLS", HOST, local.port))
        data, source = await server_inbox.next()
        assert data == request(call_id="tls-out")
        server.send(response(call_id="tls-out"), source)
        data, back = await client_inbox.next()
        assert data == response(call_id="tls-out")
        assert back.transport == "TLS" and (back.host, back.port) == (HOST, local.port)
        assert client.connection_count == 1 and server.connection_count == 1
        await client.close()
        await server.close()

    run(scenario())


def test_tls_port_survives_plaintext_and_failed_handshakes(
    run: Runner, certificate: tuple[str, str]
) -> None:
    async def scenario() -> None:
        inbox = Inbox()
        switch = manager(inbox)
        local = await switch.listen("TLS", HOST, 0, ssl_context=server_ssl_context(*certificate))
        reader, writer = await asyncio.open_connection(HOST, local.port)
        writer.write(request() + bytes(range(256)) * 10)
        await read_until_eof(reader)
        writer.close()
        # a client that insists on verification rejects the self-signed certificate
        strict = client_ssl_context(verify=True)
        with pytest.raises(ssl.SSLError):
            await asyncio.open_connection(HOST, local.port, ssl=strict, server_hostname="x")
        # and a TCP client to a TLS port: the outbound TLS handshake fails, reported
        plain = await switch.listen("TCP", HOST, 0)
        other_inbox = Inbox()
        other = manager(other_inbox)
        dest = Address("TLS", HOST, plain.port)
        other.send(request(), dest)
        assert await other_inbox.next_error() == dest
        await other.close()
        # the TLS listener still works
        reader, writer = await asyncio.open_connection(
            HOST, local.port, ssl=client_ssl_context(), server_hostname="localhost"
        )
        writer.write(request(call_id="fine"))
        assert (await inbox.next())[0] == request(call_id="fine")
        writer.close()
        await switch.close()

    run(scenario())


# -- event loop helpers -----------------------------------------------------------------------


def test_loop_helpers_prefer_uvloop_when_installed() -> None:
    async def loop_module() -> str:
        return type(asyncio.get_running_loop()).__module__

    module = switch_loop.run(loop_module())
    assert module.startswith("uvloop") == switch_loop.uvloop_available()
    loop = switch_loop.new_event_loop()
    try:
        assert type(loop).__module__ == module
    finally:
        loop.close()
