"""Transport addresses: where a SIP message came from or must go."""

from __future__ import annotations

from typing import NamedTuple

from softswitch.sip.uri import format_host

RELIABLE_TRANSPORTS = frozenset({"TCP", "TLS", "WS", "WSS"})


class Address(NamedTuple):
    """A transport endpoint.

    ``transport`` is upper-case ("UDP", "TCP", "TLS", "WS", "WSS"). ``conn_id`` names the
    stream connection a message arrived on (None for UDP, or for "open/find any connection
    to host:port"): replies to a request that came over TCP/TLS go back on that connection.
    """

    transport: str
    host: str
    port: int
    conn_id: int | None = None

    @property
    def reliable(self) -> bool:
        return self.transport in RELIABLE_TRANSPORTS

    def __str__(self) -> str:
        return f"{self.transport.lower()}:{format_host(self.host)}:{self.port}"
