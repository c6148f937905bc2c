"""SIP dialogs (RFC 3261 section 12): the state two UAs share and the requests built in it.

Sans-I/O and pure: a ``Dialog`` is created from the request/response that established it,
checks the CSeq of requests it receives, refreshes its remote target, and builds in-dialog
requests (BYE, re-INVITE, UPDATE, INFO, ACK for 2xx) with the right Request-URI, Route set,
From/To tags and CSeq. Where to send them is the caller's business (``next_hop_uri``).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from softswitch.sip.address import Address
from softswitch.sip.message import SipParseError, SipRequest, SipResponse, make_request
from softswitch.sip.uri import SipUri, parse_uri

__all__ = ["Dialog", "DialogState", "uri_address"]


# Requests that carry our Contact (they may refresh, or create, a remote target).
_TARGET_METHODS = frozenset({"INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY", "REFER"})


class DialogState(StrEnum):
    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


def _strip_tag(value: str) -> str:
    """A From/To value without its tag parameter (text level: the rest is kept as is)."""
    head, sep, params = value.partition(">")
    if not sep:
        return value
    kept = [p for p in params.split(";") if p and not p.strip().lower().startswith("tag=")]
    return head + ">" + "".join(";" + p for p in kept)


class Dialog:
    """One side's view of a dialog.

    ``local_header``/``remote_header`` are the full From/To values (tags included) this side
    puts in From and To of the requests it sends. ``route_set`` holds Route values in the
    order they are sent.
    """

    __slots__ = (
        "call_id",
        "early_contact",
        "local_contact",
        "local_header",
        "local_seq",
        "local_tag",
        "remote_header",
        "remote_seq",
        "remote_tag",
        "remote_target",
        "route_set",
        "state",
    )

    def __init__(
        self,
        call_id: str,
        local_tag: str,
        remote_tag: str | None,
        local_header: str,
        remote_header: str,
        remote_target: str,
        route_set: list[str],
        local_seq: int,
        remote_seq: int | None,
        local_contact: str,
        state: DialogState = DialogState.CONFIRMED,
    ) -> None:
        self.call_id = call_id
        self.local_tag = local_tag
        self.remote_tag = remote_tag
        self.local_header = local_header
        self.remote_header = remote_header
        self.remote_target = remote_target
        self.route_set = route_set
        self.local_seq = local_seq
        self.remote_seq = remote_seq
        self.local_contact = local_contact
        self.state = state
        # The Contact value of the 1xx that made an early UAC dialog: a 2xx with the same
        # value leaves the remote target as it is (no second parse).
        self.early_contact = ""

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_uas(
        cls,
        request: SipRequest,
        local_tag: str,
        local_contact: str,
        state: DialogState = DialogState.CONFIRMED,
    ) -> Dialog:
        """The UAS dialog created by answering ``request`` with To tag ``local_tag`` (12.1.1)."""
        from_ = request.from_
        cseq = request.cseq
        if from_ is None or cseq is None or request.call_id is None:
            raise SipParseError(400, "Missing dialog headers")
        contacts = request.contacts
        target = str(contacts[0].uri) if contacts and not contacts[0].is_star else str(from_.uri)
        to_value = request.get("To") or ""
        return cls(
            call_id=request.call_id,
            local_tag=local_tag,
            remote_tag=from_.tag,
            local_header=f"{_strip_tag(to_value)};tag={local_tag}",
            remote_header=request.get("From") or "",
            remote_target=target,
            route_set=request.get_all("Record-Route"),
            local_seq=0,
            remote_seq=cseq[0],
            local_contact=local_contact,
            state=state,
        )

    @classmethod
    def from_uac(cls, request: SipRequest, response: SipResponse, local_contact: str) -> Dialog:
        """The UAC dialog created by a 1xx-with-tag or 2xx ``response`` to ``request`` (12.1.2)."""
        to_value = response.get("To")
        from_ = request.from_
        cseq = request.cseq
        if to_value is None or from_ is None or cseq is None or request.call_id is None:
            raise SipParseError(400, "Missing dialog headers")
        contacts = response.contacts
        target = str(contacts[0].uri) if contacts and not contacts[0].is_star else request.uri
        state = DialogState.CONFIRMED if 200 <= response.status < 300 else DialogState.EARLY
        dialog = cls(
            call_id=request.call_id,
            local_tag=from_.tag or "",
            remote_tag=response.to_tag,
            local_header=request.get("From") or "",
            remote_header=to_value,
            remote_target=target,
            route_set=list(reversed(response.get_all("Record-Route"))),
            local_seq=cseq[0],
            remote_seq=None,
            local_contact=local_contact,
            state=state,
        )
        if state is DialogState.EARLY:
            dialog.early_contact = response.get("Contact") or ""
        return dialog

    def confirm(self, response: SipResponse) -> None:
        """The 2xx that confirms this early UAC dialog: its Contact and Record-Route now rule
        the remote target and the route set (12.1.2); the rest stays as the 1xx made it."""
        contact = response.get("Contact")
        if contact is not None and contact != self.early_contact:  # the 1xx's: same target
            contacts = response.contacts
            if contacts and not contacts[0].is_star:
                self.remote_target = str(contacts[0].uri)
        self.route_set = list(reversed(response.get_all("Record-Route")))
        self.remote_header = response.get("To") or self.remote_header
        self.state = DialogState.CONFIRMED

    # ----------------------------------------------------------------- receiving
    def accept_cseq(self, request: SipRequest) -> bool:
        """Check and record the CSeq of a request received in the dialog (12.2.2).

        False means the request is out of order (answer 500). ACK and CANCEL reuse the
        number of the request they belong to and are not checked.
        """
        cseq = request.cseq
        if cseq is None:
            return False
        if request.method in ("ACK", "CANCEL"):
            return True
        if self.remote_seq is not None and cseq[0] <= self.remote_seq:
            return False
        self.remote_seq = cseq[0]
        return True

    def refresh_target(self, message: SipRequest | SipResponse) -> None:
        """Take a new remote target from the Contact of a target refresh (re-INVITE, UPDATE)."""
        try:
            contacts = message.contacts
        except SipParseError:
            return
        if contacts and not contacts[0].is_star:
            self.remote_target = str(contacts[0].uri)

    # ----------------------------------------------------------------- sending
    def next_hop_uri(self) -> str:
        """The URI the next request goes to: the first route, else the remote target."""
        if self.route_set:
            value = self.route_set[0]
            start, end = value.find("<"), value.find(">")
            return value[start + 1 : end] if 0 <= start < end else value
        return self.remote_target

    def _uri_and_routes(self) -> tuple[str, list[str]]:
        routes = self.route_set
        if not routes or ";lr" in routes[0]:
            return self.remote_target, list(routes)
        # Strict routing (RFC 3261 12.2.1.1): the first route becomes the Request-URI.
        return self.next_hop_uri(), [*routes[1:], f"<{self.remote_target}>"]

    def build_request(
        self,
        method: str,
        via: str,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        cseq: int | None = None,
        headers: Iterable[tuple[str, str]] = (),
        max_forwards: int = 70,
    ) -> SipRequest:
        """A request within the dialog. ``via`` is the Via value without the branch (a new
        branch is added). ``cseq`` defaults to the next local number (given for ACK)."""
        if cseq is None:
            self.local_seq += 1
            cseq = self.local_seq
        uri, routes = self._uri_and_routes()
        return make_request(
            method,
            uri,
            via=via,
            from_=self.local_header,
            to=self.remote_header,
            call_id=self.call_id,
            cseq=cseq,
            max_forwards=max_forwards,
            routes=routes,
            contact=self.local_contact if method in _TARGET_METHODS else None,
            headers=headers,
            body=body,
            content_type=content_type,
        )

    def build_ack(
        self, invite_cseq: int, via: str, body: bytes = b"", content_type: str | None = None
    ) -> SipRequest:
        """The ACK for a 2xx to the INVITE with CSeq ``invite_cseq`` (13.2.2.4)."""
        return self.build_request(
            "ACK", via, body=body, content_type=content_type, cseq=invite_cseq
        )


_DEFAULT_PORTS = {"UDP": 5060, "TCP": 5060, "TLS": 5061, "WS": 80, "WSS": 443}


def uri_address(uri: str | SipUri) -> Address:
    """Where to send a request for ``uri`` (RFC 3263 without DNS: host, port, transport).

    Raises SipParseError for a URI that names no host.
    """
    parsed = parse_uri(uri) if isinstance(uri, str) else uri
    if not parsed.is_sip or not parsed.host:
        raise SipParseError(416, "Unsupported URI Scheme")
    transport = (parsed.transport or "udp").upper()
    if parsed.scheme == "sips" and transport not in ("TLS", "WSS"):
        transport = "WSS" if transport == "WS" else "TLS"  # never downgraded (RFC 5630)
    maddr = parsed.params.get("maddr")
    host = maddr or parsed.host
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    port = parsed.port or _DEFAULT_PORTS.get(transport, 5060)
    return Address(transport, host, port)
