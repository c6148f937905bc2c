"""The SDP side of one anchored leg, shared by in-process endpoints and worker proxies.

Offer/answer is pure (:mod:`media.sdp`): given our advertised address and the port pair the
leg owns, answering an offer, making an offer and applying the peer's answer need no
sockets.  :class:`NegotiatedLeg` keeps that state (our o= line, the pending offer, the
stream in force) and hands each newly negotiated stream to :meth:`NegotiatedLeg.apply_stream`,
which the in-process endpoint implements by updating its packet state and a worker proxy by
forwarding the stream to its media worker.

SRTP (SDES, RFC 4568) rides on the same offer/answer under the leg's ``srtp_policy``
(:mod:`media.sdpcrypto`): the leg's keys go to :meth:`NegotiatedLeg.apply_keys` with the
stream. RTP/SAVP streams are negotiated like RTP/AVP ones for their codecs.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable
from typing import Any

import structlog
from mypy_extensions import mypyc_attr

from media.dtmf import Digit
from media.sdp import (
    LocalOrigin,
    MediaDescription,
    NegotiatedStream,
    SessionDescription,
    answer_offer,
    create_offer,
    parse_sdp,
    process_answer,
)
from media.sdpcrypto import (
    PLAIN_PROTO,
    SECURE_PROTO,
    SrtpOffer,
    SrtpPolicy,
    accept_answer,
    answer_crypto,
    offer_crypto,
)
from media.srtp import SrtpKeys

log = structlog.get_logger(__name__)

SRTP_POLICIES: tuple[SrtpPolicy, ...] = ("off", "optional", "required")


def _as_plain(sdp: SessionDescription) -> list[MediaDescription]:
    """Present RTP/SAVP streams as RTP/AVP for codec negotiation; the ones changed."""
    changed = [m for m in sdp.media if m.proto.upper() == SECURE_PROTO]
    for m in changed:
        m.proto = PLAIN_PROTO
    return changed


def _restore(changed: list[MediaDescription]) -> None:
    for m in changed:
        m.proto = SECURE_PROTO


_DIGIT_QUEUE = 256


# mypyc cannot compile a subclass of RuntimeError as a native class: an ordinary Python
# class it stays, so existing ``except MediaError`` and imports work unchanged.
@mypyc_attr(native_class=False)
class MediaError(RuntimeError):
    """A media-engine request that cannot be carried out (no ports, released endpoint...)."""


# media.pool.WorkerEndpoint, which is not compiled, subclasses it.
@mypyc_attr(allow_interpreted_subclasses=True)
class NegotiatedLeg:
    """SDP offer/answer state of a leg on ``advertised``:``port`` and its DTMF hand-up."""

    id: int
    released: bool

    def __init__(
        self,
        endpoint_id: int,
        advertised: str,
        port: int,
        on_dtmf: Callable[[Any, Digit], None] | None,
    ) -> None:
        self.id = endpoint_id
        self.advertised = advertised
        self.port = port
        self.released = False
        self.on_dtmf = on_dtmf
        self.digits: asyncio.Queue[Digit] = asyncio.Queue(_DIGIT_QUEUE)
        self._origin = LocalOrigin(advertised, str(random.getrandbits(31)))
        self._pending_offer: SessionDescription | None = None
        self.local_sdp: bytes = b""
        self.stream: NegotiatedStream | None = None
        self.srtp_policy: SrtpPolicy = "off"
        self._sent_crypto: SrtpOffer | None = None

    def set_srtp_policy(self, policy: str) -> None:
        """SRTP for this leg from its next offer/answer on: off, optional or required."""
        for known in SRTP_POLICIES:
            if policy == known:
                self.srtp_policy = known
                return
        raise ValueError(f"SRTP policy must be one of {', '.join(SRTP_POLICIES)}, not {policy!r}")

    def _check(self) -> None:
        """Raise MediaError when the leg can no longer be used."""
        if self.released:
            raise MediaError(f"endpoint {self.id} was released")

    def apply_stream(self, stream: NegotiatedStream) -> None:
        """Put a newly negotiated stream in force (the media side of offer/answer)."""
        self.stream = stream

    def apply_keys(self, keys: SrtpKeys | None) -> None:
        """Put the newly negotiated SRTP keys in force (None: plain RTP)."""

    def answer(self, offer_sdp: bytes | str, *, direction: str = "sendrecv") -> bytes:
        """Answer an offer (initial or re-INVITE) with our anchored address; our SDP.

        ``direction`` is what we want (e.g. ``sendonly`` to hold the peer).  Raises
        SdpError (400) on an unparsable body, NegotiationError (488) when nothing fits.
        """
        self._check()
        offer = parse_sdp(offer_sdp)
        secure = _as_plain(offer)
        answer, streams = answer_offer(
            offer, address=self.advertised, port=self.port, direction=direction
        )
        _restore(secure)
        stream = next(s for s in streams if s.accepted)
        # 488 here, before anything changed, when the SRTP policy and the offer cannot meet
        keys = answer_crypto(
            offer.media[stream.index], answer.media[stream.index], self.srtp_policy
        )
        self._pending_offer = None
        self._sent_crypto = None
        self.local_sdp = self._origin.stamp(answer).to_bytes()
        self.apply_stream(stream)
        self.apply_keys(keys)
        return self.local_sdp

    def offer(
        self, *, direction: str = "sendrecv", codecs: tuple[str, ...] = ("PCMU", "PCMA")
    ) -> bytes:
        """Our anchored offer (initial INVITE towards the callee, or hold/resume)."""
        self._check()
        sdp = create_offer(
            address=self.advertised, port=self.port, direction=direction, codecs=codecs
        )
        self._sent_crypto = offer_crypto(sdp.media[0], self.srtp_policy)
        self._pending_offer = sdp
        self.local_sdp = self._origin.stamp(sdp).to_bytes()
        return self.local_sdp

    def set_remote(self, answer_sdp: bytes | str) -> None:
        """Apply the peer's answer to our last :meth:`offer`.

        Raises MediaError when no offer is outstanding, SdpError/NegotiationError on a bad
        answer (the previous stream stays in force).
        """
        self._check()
        if self._pending_offer is None:
            raise MediaError(f"endpoint {self.id}: an answer arrived but no offer is pending")
        offer, answer = self._pending_offer, parse_sdp(answer_sdp)
        secure = _as_plain(offer) + _as_plain(answer)
        try:
            streams = process_answer(offer, answer, local_port=self.port)
        finally:
            _restore(secure)
        stream = next(s for s in streams if s.accepted)
        keys = accept_answer(self._sent_crypto, answer.media[stream.index], self.srtp_policy)
        self._pending_offer = None
        self.apply_stream(stream)
        self.apply_keys(keys)

    @property
    def sends(self) -> bool:
        """Whether we may send media to the peer (negotiated and not held by it)."""
        return self.stream is not None and self.stream.sends

    @property
    def receives(self) -> bool:
        """Whether the peer sends media to us."""
        return self.stream is not None and self.stream.receives

    @property
    def remote_hold(self) -> bool:
        """The peer put the call on hold (sendonly/inactive/0.0.0.0 in its SDP)."""
        return self.stream is not None and self.stream.remote_hold

    def hand_up(self, digit: Digit) -> None:
        """Give a detected key press to signalling: the ``digits`` queue and the callback."""
        # nobody may read the queue: the callback still sees every digit
        with contextlib.suppress(asyncio.QueueFull):
            self.digits.put_nowait(digit)
        if self.on_dtmf is not None:
            try:
                self.on_dtmf(self, digit)
            except Exception:
                # a failing handler must not cost the leg its media
                log.exception("dtmf_callback_failed", endpoint=self.id, digit=digit.digit)
