"""One anchored media leg: an RTP/RTCP port pair, its negotiated stream and per-leg state.

An :class:`Endpoint` is created by :meth:`media.engine.MediaEngine.allocate`.  It owns the
SDP side of the leg (our anchored offer/answer, the peer's answer, re-INVITEs for hold)
and everything the frame clock needs per leg: the symmetric-RTP latch, the inbound jitter
buffer and reception statistics, the outbound sequence/timestamp state, DTMF detection
and delivery.  The engine drives all packet work; the methods here are for signalling.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import random
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import structlog

from media.dtmf import Digit, EventDeduplicator
from media.jitter import JitterBuffer
from media.moh import HoldMusic, HoldMusicProgram
from media.players import Player
from media.quality import mos
from media.rtcp import ReceiverStats, SenderStats
from media.rtp import StreamRewriter
from media.sdp import (
    LocalOrigin,
    NegotiatedStream,
    SessionDescription,
    answer_offer,
    create_offer,
    parse_sdp,
    process_answer,
)

if TYPE_CHECKING:
    from media.engine import MediaEngine
    from media.recorder import Recording
    from media.rooms import MixSession

log = structlog.get_logger(__name__)

Address = tuple[str, int]
DtmfCallback = Callable[["Endpoint", Digit], None]

_DIGIT_QUEUE = 256


class MediaError(RuntimeError):
    """A media-engine request that cannot be carried out (no ports, released endpoint...)."""


@dataclass(frozen=True, slots=True)
class EndpointStats:
    """Per-leg figures for the CDR (inbound = what the peer sent us)."""

    packets_received: int
    octets_received: int
    packets_lost: int
    loss_ratio: float
    jitter_ms: float
    packets_sent: int
    octets_sent: int
    rtt_ms: float | None
    mos: float
    late_packets: int  # arrived after their playout turn (decoded legs only)
    concealed_frames: int
    invalid_packets: int  # not RTP, unexpected payload type, or from a foreign source
    remote: Address | None  # where media is sent: the latched source or the SDP address
    codec: str | None


def _ip_literal(host: str | None) -> str | None:
    """The host if it is an IP literal; names are not resolved on the media path."""
    if host is None:
        return None
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


class Endpoint:
    """An RTP/RTCP port pair on the engine with its negotiated stream."""

    def __init__(
        self,
        engine: MediaEngine,
        endpoint_id: int,
        rtp: socket.socket,
        rtcp: socket.socket,
        address: str,
        advertised: str,
        *,
        on_dtmf: DtmfCallback | None,
        inband_dtmf: bool | None,
        jitter_depth: int,
    ) -> None:
        self.id = endpoint_id
        self._engine = engine
        self.rtp_socket = rtp
        self.rtcp_socket = rtcp
        self.address = address
        self.port: int = rtp.getsockname()[1]
        self.advertised = advertised
        self.on_dtmf = on_dtmf
        self.inband_setting = inband_dtmf
        self.digits: asyncio.Queue[Digit] = asyncio.Queue(_DIGIT_QUEUE)
        self.released = False
        # negotiation
        self._origin = LocalOrigin(advertised, str(random.getrandbits(31)))
        self._pending_offer: SessionDescription | None = None
        self.local_sdp: bytes = b""
        self.stream: NegotiatedStream | None = None
        self.codec_pt: int | None = None
        self.event_pt: int | None = None
        # addressing (symmetric RTP)
        self.sdp_remote: Address | None = None
        self.latched: Address | None = None
        self.rtcp_remote: Address | None = None
        self.last_rx = 0.0
        self.relatches = 0
        # inbound
        self.rx: ReceiverStats | None = None
        self._rx_done_received = 0  # totals of previous sources (SSRC changes)
        self._rx_done_lost = 0
        self.octets_received = 0
        self.invalid = 0
        self.jitter = JitterBuffer(depth=jitter_depth, adaptive=True, max_depth=10)
        self.dedup = EventDeduplicator()
        # outbound: one continuous stream whatever feeds it (relay or generated audio)
        self.out_ssrc = random.getrandbits(32)
        self.out_seq = random.getrandbits(16)
        self.out_ts = random.getrandbits(32)
        self.out_time = 0.0
        self.tx = SenderStats(self.out_ssrc)
        self.tx_errors = 0
        self.rewriter: StreamRewriter | None = None  # set while relaying into this leg
        self.generated_tick = -2  # tick of the last generated frame (continuity)
        self.rtt: float | None = None
        self.next_rtcp = 0.0
        # features (engine-managed)
        self.peer: Endpoint | None = None
        self.player: Player | None = None
        self.hold_player: Player | HoldMusicProgram | None = None
        self.hold_music: npt.NDArray[np.int16] | HoldMusic | None = None  # overrides the engine's
        self.recordings: list[Recording] = []
        self.inband_slot: int | None = None
        self.mix: MixSession | None = None  # the conference room or monitor it is mixed in
        # tick plan (recomputed by the engine when something changes)
        self.relay_to: Endpoint | None = None
        self.decode = False
        self.row = -1  # row in this tick's decoded matrix, -1 if not decoded
        self.frame_ok = False  # the decoded row holds audio this tick

    # ---- SDP ------------------------------------------------------------------------

    def _check(self) -> None:
        if self.released:
            raise MediaError(f"endpoint {self.id} was released")

    def answer(self, offer_sdp: bytes | str, *, direction: str = "sendrecv") -> bytes:
        """Answer an offer (initial or re-INVITE) with our anchored address; our SDP.

        ``direction`` is what we want (e.g. ``sendonly`` to hold the peer).  Raises
        SdpError (400) on an unparsable body, NegotiationError (488) when nothing fits.
        """
        self._check()
        offer = parse_sdp(offer_sdp)
        answer, streams = answer_offer(
            offer, address=self.advertised, port=self.port, direction=direction
        )
        self._pending_offer = None
        self.local_sdp = self._origin.stamp(answer).to_bytes()
        self._apply(next(s for s in streams if s.accepted))
        return self.local_sdp

    def offer(
        self, *, direction: str = "sendrecv", codecs: tuple[str, ...] = ("PCMU", "PCMA")
    ) -> bytes:
        """Our anchored offer (initial INVITE towards the callee, or hold/resume)."""
        self._check()
        sdp = create_offer(
            address=self.advertised, port=self.port, direction=direction, codecs=codecs
        )
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
        streams = process_answer(self._pending_offer, parse_sdp(answer_sdp), local_port=self.port)
        self._pending_offer = None
        self._apply(next(s for s in streams if s.accepted))

    def _apply(self, stream: NegotiatedStream) -> None:
        assert stream.codec is not None
        self.stream = stream
        self.codec_pt = stream.codec.payload_type
        self.event_pt = stream.telephone_event.payload_type if stream.telephone_event else None
        host = _ip_literal(stream.remote_host)
        remote = (host, stream.remote_port) if host and stream.remote_port else None
        if remote != self.sdp_remote:
            if self.sdp_remote is not None:
                self.latched = None  # the peer moved: listen again before trusting a source
                self.rtcp_remote = None
            self.sdp_remote = remote
        self._engine._changed()

    # ---- state for the engine ---------------------------------------------------------

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

    @property
    def destination(self) -> Address | None:
        """Where RTP goes: the latched source, else the SDP address."""
        return self.latched or self.sdp_remote

    @property
    def inband(self) -> bool:
        """Whether in-band DTMF is detected: by setting, else when RFC 4733 is absent."""
        if self.stream is None:
            return False
        if self.inband_setting is None:
            return self.event_pt is None
        return self.inband_setting

    def deliver(self, digit: Digit) -> None:
        """Hand a detected key press to signalling (queue and callback); barge-in."""
        # nobody may read the queue: the callback still sees every digit
        with contextlib.suppress(asyncio.QueueFull):
            self.digits.put_nowait(digit)
        if self.player is not None and self.player.barge_in:
            self._engine._end_player(self, "barge-in")
        if self.on_dtmf is not None:
            try:
                self.on_dtmf(self, digit)
            except Exception:
                # a failing handler must not cost the leg its media
                log.exception("dtmf_callback_failed", endpoint=self.id, digit=digit.digit)

    def receiver(self, ssrc: int) -> ReceiverStats:
        """Reception statistics of the current source, restarted on an SSRC change."""
        rx = self.rx
        if rx is None or rx.ssrc != ssrc:
            if rx is not None:
                self._rx_done_received += rx.received
                self._rx_done_lost += max(0, rx.cumulative_lost)
            rx = self.rx = ReceiverStats(ssrc, probation=0)
        return rx

    def stats(self) -> EndpointStats:
        """Current statistics of this leg."""
        rx = self.rx
        received = self._rx_done_received + (rx.received if rx else 0)
        lost = self._rx_done_lost + (max(0, rx.cumulative_lost) if rx else 0)
        expected = received + lost
        loss = lost / expected if expected else 0.0
        jitter_ms = rx.jitter_seconds * 1000 if rx else 0.0
        delay_ms = (self.rtt or 0.0) * 500 + (self.jitter.depth * 20 if self.decode else 0)
        js = self.jitter.stats
        return EndpointStats(
            packets_received=received,
            octets_received=self.octets_received,
            packets_lost=lost,
            loss_ratio=loss,
            jitter_ms=jitter_ms,
            packets_sent=self.tx.packet_count,
            octets_sent=self.tx.octet_count,
            rtt_ms=None if self.rtt is None else self.rtt * 1000,
            mos=round(mos(delay_ms, loss, jitter_ms), 2),
            late_packets=js.late,
            concealed_frames=js.concealed,
            invalid_packets=self.invalid,
            remote=self.destination,
            codec=self.stream.codec.name if self.stream and self.stream.codec else None,
        )

    def __repr__(self) -> str:
        return f"<Endpoint {self.id} {self.address}:{self.port} -> {self.destination}>"
