"""The verbs a sans-I/O SIP layer offers its driver (``softswitch.sip.driver``).

``TransactionLayer`` and ``DialogLayer`` (stacked on it) both derive from ``SipLayer``, so
the driver runs either. A base class rather than a Protocol: compiled with mypyc, a call
through a Protocol is a generic Python method call, through a native base class a direct
one, and the driver makes several per message.
"""

from __future__ import annotations

from softswitch.sip.address import Address
from softswitch.sip.message import SipRequest, SipResponse

__all__ = ["SipLayer"]


class SipLayer:
    """Bytes in as parsed messages, events up, datagrams out, one timer deadline."""

    def receive_message(
        self, message: SipRequest | SipResponse, source: Address, now: float
    ) -> None:
        """Feed a parsed message."""
        raise NotImplementedError

    def transport_error(self, dest: Address, now: float) -> None:
        """The transport could not reach ``dest``."""
        raise NotImplementedError

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Address]]:
        """Drain what the layer wants sent, as ``(bytes, destination)``."""
        raise NotImplementedError

    def get_timer(self) -> float | None:
        """The earliest deadline of the layer, or None."""
        raise NotImplementedError

    def handle_timer(self, now: float) -> None:
        """Fire every timer due at ``now``."""
        raise NotImplementedError

    def next_event(self) -> object | None:
        """Pop the next event for the layer above, or None."""
        raise NotImplementedError
