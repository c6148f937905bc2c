"""Qualify: OPTIONS pings to registered contacts, to know which devices are reachable.

A ping goes out over the connection (or to the address) the registration came from; any
final answer, whatever the device thinks of OPTIONS, marks the binding reachable, and a
timeout or a transport failure marks it unreachable. The pinger owns its transactions
(``TransactionOwner``): their outcome comes straight here.
"""

from __future__ import annotations

from collections.abc import Callable

from softswitch.location import LocationService
from softswitch.sip.address import Address
from softswitch.sip.message import (
    SipResponse,
    make_request,
    new_call_id,
    new_tag,
    via_value,
)
from softswitch.sip.transaction import ClientTransaction, Transaction, TransactionLayer
from softswitch.sip.uri import format_host, parse_uri
from storage.base import Binding

__all__ = ["Qualifier"]


class Qualifier:
    """Sends OPTIONS pings and records their outcome on the location service.

    ``local`` gives our host and port towards a destination (Via, From).
    """

    def __init__(
        self,
        transactions: TransactionLayer,
        location: LocationService,
        *,
        local: Callable[[Address], tuple[str, int]],
        clock: Callable[[], float],
        user_agent: str,
    ) -> None:
        self.transactions = transactions
        self.location = location
        self.local = local
        self.clock = clock
        self.user_agent = user_agent

    def qualify(self, binding: Binding) -> ClientTransaction | None:
        """Ping one registered contact; None when its source address is unknown. Raises
        SipParseError for a contact that is no URI, OSError when no route leads there."""
        dest = self.location.source(binding)
        if dest is None:
            return None
        uri = parse_uri(binding.contact)
        host, port = self.local(dest)
        request = make_request(
            "OPTIONS",
            uri,
            via=via_value(dest.transport, host, port),
            from_=f"<sip:qualify@{format_host(host)}>;tag={new_tag()}",
            to=f"<{binding.contact}>",
            call_id=new_call_id(),
            cseq=1,
            headers=(("User-Agent", self.user_agent),),
        )
        transaction = self.transactions.send_request(request, dest, self.clock(), owner=self)
        transaction.app_data = binding
        return transaction

    def on_response(self, response: SipResponse, transaction: ClientTransaction) -> None:
        """Any final answer means the device is alive."""
        binding = transaction.app_data
        if response.status >= 200 and isinstance(binding, Binding):
            self.location.set_reachable(binding, True)

    def on_transaction_failed(self, transaction: Transaction, timeout: bool) -> None:
        """No answer in time, or the transport could not reach it."""
        binding = transaction.app_data
        if isinstance(binding, Binding):
            self.location.set_reachable(binding, False)
