"""What the dialog layer keeps per INVITE dialog, and the events it hands up.

An :class:`InviteSession` is one dialog created by an INVITE (pjsip's ``pjsip_inv_session``):
the :class:`~softswitch.sip.dialog.Dialog` (tags, CSeq, route set, remote target), where
its requests go, the 2xx retransmission waiting for an ACK (RFC 3261 13.3.1.4), our ACK to
the peer's 2xx, and its RFC 4028 session timer. An :class:`OutgoingInvite` is an initial
INVITE the TU sent, with the early and confirmed sessions it produced (forking gives one per
To tag). Both are plain records: :class:`~softswitch.sip.dialog_layer.DialogLayer` changes
them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from softswitch.sip.address import Address
from softswitch.sip.dialog import Dialog, DialogState
from softswitch.sip.message import SipRequest, SipResponse
from softswitch.sip.timers import TimerEntry
from softswitch.sip.transaction import ClientTransaction, ServerTransaction

__all__ = [
    "AckReceived",
    "DialogEnded",
    "DialogEvent",
    "InDialogRequest",
    "InDialogResponse",
    "InviteReceived",
    "InviteSession",
    "LegAnswered",
    "LegFailed",
    "LegProgress",
    "OutgoingInvite",
]


class InviteSession:
    """One INVITE dialog as the dialog layer keeps it; ``app_data`` is the TU's (a leg).

    ``uas`` tells which side created it. ``peer`` is where requests go when the dialog has
    no route set: the address the INVITE came from (UAS) or was sent to (UAC), which keeps
    a phone behind NAT reachable whatever its Contact says.
    """

    __slots__ = (
        "_ack",
        "_ack_cseq",
        "_ack_deadline",
        "_ack_interval",
        "_ack_wait",
        "_bye_headers",
        "_refresh_entry",
        "_rtx_entry",
        "_session_entry",
        "_uac_invite",
        "_uas_invite",
        "app_data",
        "dialog",
        "invite",
        "peer",
        "refresher",
        "session_interval",
        "uas",
    )

    def __init__(self, dialog: Dialog, peer: Address, uas: bool, app_data: Any = None) -> None:
        self.dialog = dialog
        self.peer = peer
        self.uas = uas
        self.app_data = app_data
        self.invite: OutgoingInvite | None = None  # UAC: the INVITE that created it
        # RFC 4028: the negotiated interval, and whether we are the refresher.
        self.session_interval: int | None = None
        self.refresher = False
        # UAS: a 2xx sent and retransmitted until its ACK (CSeq, the server transaction and
        # the response), with its back-off and the 64*T1 deadline.
        self._ack_wait: tuple[int, ServerTransaction, SipResponse] | None = None
        self._ack_interval = 0.0
        self._ack_deadline = 0.0
        # UAC: our ACK to the peer's 2xx (CSeq), resent when the 2xx is retransmitted.
        self._ack: SipRequest | None = None
        self._ack_cseq = 0
        # A BYE the TU asked for while our 2xx waits for its ACK (RFC 3261 15), its headers.
        self._bye_headers: tuple[tuple[str, str], ...] | None = None
        # Glare (RFC 3261 14): an INVITE of each direction still without a final answer.
        self._uas_invite: ServerTransaction | None = None
        self._uac_invite: ClientTransaction | None = None
        self._rtx_entry: TimerEntry | None = None
        self._refresh_entry: TimerEntry | None = None
        self._session_entry: TimerEntry | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        """(Call-ID, local tag, remote tag): how requests received in it are found."""
        dialog = self.dialog
        return dialog.call_id, dialog.local_tag, dialog.remote_tag or ""

    @property
    def state(self) -> DialogState:
        return self.dialog.state

    @property
    def awaiting_ack(self) -> bool:
        """True while a 2xx of ours is retransmitted for want of its ACK."""
        return self._ack_wait is not None

    def __repr__(self) -> str:
        side = "uas" if self.uas else "uac"
        return f"<InviteSession {side} {self.dialog.call_id} {self.dialog.state.value}>"


class OutgoingInvite:
    """An initial INVITE the TU sent and the sessions its responses created (one per To
    tag when the request forked); ``app_data`` is the TU's."""

    __slots__ = (
        "app_data",
        "auto_ack",
        "cancel_headers",
        "cancel_sent",
        "dest",
        "done",
        "ended",
        "request",
        "sessions",
        "transaction",
    )

    def __init__(
        self,
        request: SipRequest,
        dest: Address,
        transaction: ClientTransaction,
        app_data: Any,
        auto_ack: bool,
    ) -> None:
        self.request = request
        self.dest = dest
        # Until the final outcome: the transaction keeps the invite (its app_data) for the
        # 2xx retransmissions; the invite lets go of it then, leaving no reference cycle.
        self.transaction: ClientTransaction | None = transaction
        self.app_data = app_data
        self.auto_ack = auto_ack
        self.sessions: dict[str, InviteSession] = {}
        # To tags of confirmed sessions that ended, with our ACK of their 2xx: a 2xx
        # retransmitted after the BYE is ACKed again, never taken for a new answer.
        self.ended: dict[str, tuple[SipRequest, Address] | None] = {}
        self.done = False  # a final response (or a failure) was handed up
        # The TU gave up on it: the CANCEL's extra headers (e.g. Reason), until it is sent
        # (RFC 3261 9.1: not before a provisional response).
        self.cancel_headers: tuple[tuple[str, str], ...] | None = None
        self.cancel_sent = False


@dataclass(frozen=True, slots=True)
class InviteReceived:
    """A new INVITE (no To tag): the TU answers it with ``DialogLayer.answer``."""

    request: SipRequest
    source: Address
    transaction: ServerTransaction


@dataclass(frozen=True, slots=True)
class InDialogRequest:
    """A request in a session that passed the CSeq check and is not BYE, OPTIONS or ACK
    (re-INVITE, UPDATE, INFO, REFER, ...): the TU answers it through ``transaction`` (for
    INVITE with ``DialogLayer.answer``, which retransmits a 2xx until the ACK)."""

    session: InviteSession
    request: SipRequest
    transaction: ServerTransaction


@dataclass(frozen=True, slots=True)
class AckReceived:
    """The ACK for a 2xx of ours (it may carry the answer to an offer in that 2xx)."""

    session: InviteSession
    request: SipRequest


@dataclass(frozen=True, slots=True)
class InDialogResponse:
    """The final outcome of a request the TU sent in a session: ``response`` (None when
    the transaction timed out, ``status`` 408, or the transport failed, 503);
    ``app_data`` is what the TU gave ``DialogLayer.request``."""

    session: InviteSession
    transaction: ClientTransaction
    response: SipResponse | None
    status: int
    app_data: Any = None


@dataclass(frozen=True, slots=True)
class LegProgress:
    """A provisional response to an outgoing INVITE (``session``: the early dialog when
    the response carried a To tag)."""

    invite: OutgoingInvite
    response: SipResponse
    session: InviteSession | None


@dataclass(frozen=True, slots=True)
class LegAnswered:
    """A 2xx to an outgoing INVITE confirmed ``session`` (once per session: a second fork
    answering gives a second event, which the TU ACKs and ends with BYE if unwanted)."""

    invite: OutgoingInvite
    session: InviteSession
    response: SipResponse


@dataclass(frozen=True, slots=True)
class LegFailed:
    """An outgoing INVITE ended without a session: a final response >= 300, or Timer B
    (408), or a transport failure (503)."""

    invite: OutgoingInvite
    status: int
    reason: str
    response: SipResponse | None


@dataclass(frozen=True, slots=True)
class DialogEnded:
    """A session ended by the peer or by the layer: ``reason`` is ``bye`` (the peer's BYE,
    ``request``; the layer answered 200), ``ack_timeout`` (no ACK for our 2xx in 64*T1),
    ``session_expired`` (RFC 4028: no refresh in time), or ``terminated`` (a 481/408 to a
    request in it, 12.2.1.2). In every case but ``bye`` the layer sent a BYE itself."""

    session: InviteSession
    reason: str
    status: int
    request: SipRequest | None = None


DialogEvent = (
    InviteReceived
    | InDialogRequest
    | AckReceived
    | InDialogResponse
    | LegProgress
    | LegAnswered
    | LegFailed
    | DialogEnded
)
