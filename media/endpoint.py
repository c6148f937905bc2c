"""One anchored media leg: an RTP/RTCP port pair, its negotiated stream and per-leg state.

An :class:`Endpoint` is created by :meth:`media.engine.MediaEngine.allocate`.  Its SDP side
(our anchored offer/answer, the peer's answer, re-INVITEs for hold) is the
:class:`media.negotiation.NegotiatedLeg` it shares with media-worker proxies; the rest is
everything the frame clock needs per leg: the symmetric-RTP latch, the inbound jitter buffer
and reception statistics, the outbound sequence/timestamp state, DTMF detection and delivery.
The engine drives all packet work; the methods here are for signalling.
"""

from __future__ import annotations

import ipaddress
import random
import socket
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from media.dtmf import Digit, EventDeduplicator
from media.jitter import JitterBuffer
from media.moh import HoldMusic, HoldMusicProgram
from media.negotiation import MediaError, NegotiatedLeg
from media.players import Player
from media.quality import mos
from media.rtcp import ReceiverStats, SenderStats
from media.rtp import StreamRewriter
from media.sdp import NegotiatedStream
from media.srtp import SrtpKeys, SrtpLeg

__all__ = ["Address", "DtmfCallback", "Endpoint", "EndpointStats", "MediaError"]

Address = tuple[str, int]
DtmfCallback = Callable[["Endpoint", Digit], None]


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


class Endpoint(NegotiatedLeg):
    """An RTP/RTCP port pair on the engine with its negotiated stream."""

    def __init__(
        self,
        changed: Callable[[], None],
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
        super().__init__(endpoint_id, advertised, rtp.getsockname()[1], on_dtmf)
        # tells the engine its tick plan is stale (a new stream, a playback ended by a key);
        # a callback, not the engine itself, so this module does not depend on the engine
        self._changed = changed
        self.rtp_socket = rtp
        self.rtcp_socket = rtcp
        self.address = address
        self.inband_setting = inband_dtmf
        # negotiated stream (set by apply_stream)
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
        self.player: Player | HoldMusicProgram | None = None  # a prompt, or a playlist
        self.hold_player: Player | HoldMusicProgram | None = None
        self.hold_music: npt.NDArray[np.int16] | HoldMusic | None = None  # overrides the engine's
        self.recorded = 0  # recordings this endpoint is a channel of (the engine counts)
        self.inband_slot: int | None = None
        # the mixing session (media.rooms: a conference room or a monitor) it is mixed in
        self.mix: object | None = None
        # tick plan (recomputed by the engine when something changes)
        self.relay_to: Endpoint | None = None
        self.decode = False
        self.row = -1  # row in this tick's decoded matrix, -1 if not decoded
        self.frame_ok = False  # the decoded row holds audio this tick
        # SRTP (RFC 3711) when the leg negotiated SDES keys: every RTP/RTCP datagram is
        # unprotected on arrival (unauthentic ones dropped before they can latch) and
        # protected on departure; None for a plain RTP leg
        self.srtp: SrtpLeg | None = None

    # ---- SDP (offer/answer in NegotiatedLeg) -----------------------------------------

    def apply_stream(self, stream: NegotiatedStream) -> None:
        """Put a negotiated stream in force: codec, events and where the peer listens."""
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
        self._changed()

    def apply_keys(self, keys: SrtpKeys | None) -> None:
        """Protect this leg's media with ``keys`` (from :mod:`media.sdpcrypto`), or stop
        (None). Keys unchanged keep the SRTP state (replay window, rollover counter); new
        ones restart both directions' state (a re-INVITE rekeyed)."""
        if keys is None:
            self.srtp = None
        elif self.srtp is None or self.srtp.keys != keys:
            self.srtp = SrtpLeg(keys)

    # ---- state for the engine ---------------------------------------------------------

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
        if self.player is not None and self.player.barge_in:
            self.player.finish("barge-in")
            self.player = None
            self._changed()
        self.hand_up(digit)

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
