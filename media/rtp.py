"""RTP packets (RFC 3550 section 5) and per-leg stream rewriting.

``parse_rtp`` raises only :class:`RtpError` (a ``ValueError``) on garbage.  The
:class:`StreamRewriter` makes the packets sent to one leg look like a single continuous
stream (one SSRC, consecutive sequence numbers, timestamps that follow the wall clock)
whatever happens upstream: re-INVITEs, a new source, sequence or timestamp jumps.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass, field

RTP_VERSION = 2
_HEADER = struct.Struct("!BBHII")
_SEQ_MOD = 1 << 16
_TS_MOD = 1 << 32


class RtpError(ValueError):
    """A datagram that is not a valid RTP packet."""


@dataclass(frozen=True, slots=True)
class RtpExtension:
    """RFC 3550 5.3.1 header extension: a profile-defined id and its data (multiple of 4)."""

    profile: int
    data: bytes


@dataclass(frozen=True, slots=True)
class RtpPacket:
    """A parsed RTP packet; ``payload`` excludes any padding."""

    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrcs: tuple[int, ...] = ()
    extension: RtpExtension | None = None
    padding: int = 0  # number of padding octets (including the count octet), 0 = none

    def to_bytes(self) -> bytes:
        """Serialise; raises RtpError if a field is out of range."""
        return build_rtp(
            self.payload_type,
            self.sequence,
            self.timestamp,
            self.ssrc,
            self.payload,
            marker=self.marker,
            csrcs=self.csrcs,
            extension=self.extension,
            padding=self.padding,
        )


def is_rtcp(data: bytes) -> bool:
    """RFC 5761 4: tell RTCP from RTP on a multiplexed port (packet types 192..223)."""
    return len(data) >= 2 and data[0] >> 6 == RTP_VERSION and 192 <= data[1] <= 223


def parse_rtp(data: bytes) -> RtpPacket:
    """Parse one RTP packet; raises RtpError with the reason if it is malformed."""
    n = len(data)
    if n < 12:
        raise RtpError(f"RTP packet too short ({n} bytes)")
    b0, b1, seq, ts, ssrc = _HEADER.unpack_from(data)
    if b0 >> 6 != RTP_VERSION:
        raise RtpError(f"RTP version {b0 >> 6}, expected 2")
    if 72 <= (b1 & 0x7F) <= 76:
        # RFC 5761 4: these would collide with RTCP SR/RR/SDES/BYE/APP
        raise RtpError(f"payload type {b1 & 0x7F} is reserved (RTCP conflict)")
    cc = b0 & 0x0F
    offset = 12 + 4 * cc
    if offset > n:
        raise RtpError(f"RTP packet truncated in CSRC list ({cc} CSRCs, {n} bytes)")
    csrcs = struct.unpack_from(f"!{cc}I", data, 12) if cc else ()
    extension = None
    if b0 & 0x10:
        if offset + 4 > n:
            raise RtpError("RTP packet truncated in header extension")
        profile, words = struct.unpack_from("!HH", data, offset)
        end = offset + 4 + 4 * words
        if end > n:
            raise RtpError("RTP header extension longer than the packet")
        extension = RtpExtension(profile, bytes(data[offset + 4 : end]))
        offset = end
    end = n
    padding = 0
    if b0 & 0x20:
        padding = data[-1]
        if padding == 0 or offset + padding > n:
            raise RtpError(f"bad RTP padding count {padding}")
        end = n - padding
    return RtpPacket(
        payload_type=b1 & 0x7F,
        sequence=seq,
        timestamp=ts,
        ssrc=ssrc,
        payload=bytes(data[offset:end]),
        marker=bool(b1 & 0x80),
        csrcs=tuple(csrcs),
        extension=extension,
        padding=padding,
    )


def build_rtp(
    payload_type: int,
    sequence: int,
    timestamp: int,
    ssrc: int,
    payload: bytes = b"",
    *,
    marker: bool = False,
    csrcs: tuple[int, ...] = (),
    extension: RtpExtension | None = None,
    padding: int = 0,
) -> bytes:
    """Build an RTP packet; raises RtpError if a field does not fit its width."""
    if not 0 <= payload_type <= 127:
        raise RtpError(f"payload type {payload_type} out of range")
    if not 0 <= sequence < _SEQ_MOD or not 0 <= timestamp < _TS_MOD or not 0 <= ssrc < _TS_MOD:
        raise RtpError("sequence, timestamp or SSRC out of range")
    if len(csrcs) > 15 or any(not 0 <= c < _TS_MOD for c in csrcs):
        raise RtpError("at most 15 CSRCs of 32 bits")
    if not 0 <= padding <= 255:
        raise RtpError(f"padding {padding} out of range")
    b0 = (RTP_VERSION << 6) | (0x20 if padding else 0) | (0x10 if extension else 0) | len(csrcs)
    b1 = (0x80 if marker else 0) | payload_type
    parts = [_HEADER.pack(b0, b1, sequence, timestamp, ssrc)]
    if csrcs:
        parts.append(struct.pack(f"!{len(csrcs)}I", *csrcs))
    if extension is not None:
        if len(extension.data) % 4 or len(extension.data) > 4 * 0xFFFF:
            raise RtpError("RTP extension data must be a multiple of 4 bytes")
        if not 0 <= extension.profile <= 0xFFFF:
            raise RtpError("RTP extension profile out of range")
        parts.append(struct.pack("!HH", extension.profile, len(extension.data) // 4))
        parts.append(extension.data)
    parts.append(payload)
    if padding:
        parts.append(bytes(padding - 1) + bytes([padding]))
    return b"".join(parts)


def rewrite_header(
    data: bytes, ssrc: int, sequence: int, timestamp: int, marker: bool | None = None
) -> bytes:
    """Relay fast path: patch SSRC/seq/timestamp (and optionally M) of a raw RTP packet.

    Everything after the fixed header is copied untouched.  Raises RtpError on a packet
    shorter than the fixed header.
    """
    if len(data) < 12:
        raise RtpError(f"RTP packet too short ({len(data)} bytes)")
    b1 = data[1]
    if marker is not None:
        b1 = (b1 & 0x7F) | (0x80 if marker else 0)
    return bytes((data[0], b1)) + struct.pack("!HII", sequence, timestamp, ssrc) + data[12:]


@dataclass(frozen=True, slots=True)
class Rewritten:
    """Outbound header values chosen by :class:`StreamRewriter`."""

    ssrc: int
    sequence: int
    timestamp: int
    marker: bool
    discontinuity: bool


@dataclass
class StreamRewriter:
    """Map inbound (SSRC, seq, timestamp) to one continuous outbound stream for a leg.

    Packets of the current source keep their relative spacing (reordering passes through).
    On a discontinuity -- a new SSRC, a sequence jump beyond ``max_dropout``/``max_misorder``
    (RFC 3550 A.1 limits), a timestamp going backwards, or a timestamp running ahead of the
    wall clock by more than ``max_ts_skew`` seconds -- the mapping is re-anchored so the
    outbound sequence continues at last+1 and the timestamp advances by the elapsed time,
    and the marker bit is set.  Packets from the source replaced less than ``stale_after``
    seconds ago are dropped (``rewrite`` returns None) so a straggler cannot flip back.
    """

    clock_rate: int = 8000
    ssrc: int = field(default_factory=lambda: random.getrandbits(32))
    first_sequence: int = field(default_factory=lambda: random.getrandbits(16))
    first_timestamp: int = field(default_factory=lambda: random.getrandbits(32))
    samples_per_packet: int = 160
    max_dropout: int = 3000
    max_misorder: int = 100
    max_ts_skew: float = 0.5
    stale_after: float = 2.0
    _src: int | None = field(init=False)
    _seq_off: int = field(init=False)
    _ts_off: int = field(init=False)
    _last_in_seq: int = field(init=False)
    _last_in_ts: int = field(init=False)
    _sent: bool = field(init=False)
    _ref_ts: int = field(init=False)
    _ref_now: float = field(init=False)
    _out_seq: int = field(init=False)  # highest sequence sent
    _out_ts: int = field(init=False)  # timestamp of the highest sequence sent
    _out_now: float = field(init=False)
    _old_src: int | None = field(init=False)
    _switched_at: float = field(init=False)

    def __post_init__(self) -> None:
        # Set here, not as field defaults: compiled with mypyc the dataclass leaves an
        # init=False field with a plain default unset (there is no class attribute to read).
        self._src = None
        self._seq_off = 0
        self._ts_off = 0
        self._last_in_seq = 0
        self._last_in_ts = 0
        self._sent = False
        self._ref_ts = 0
        self._ref_now = 0.0
        self._out_seq = 0
        self._out_ts = 0
        self._out_now = 0.0
        self._old_src = None
        self._switched_at = 0.0

    def rewrite(
        self, ssrc: int, sequence: int, timestamp: int, marker: bool, now: float
    ) -> Rewritten | None:
        """Outbound header values for an inbound packet arriving at ``now`` (seconds)."""
        out = self.advance(ssrc, sequence, timestamp, now)
        if out is None:
            return None
        out_seq, out_ts, discontinuity = out
        return Rewritten(self.ssrc, out_seq, out_ts, marker or discontinuity, discontinuity)

    def advance(
        self, ssrc: int, sequence: int, timestamp: int, now: float
    ) -> tuple[int, int, bool] | None:
        """:meth:`rewrite` as (sequence, timestamp, discontinuity), None for a stale packet.

        The relay calls this once per packet: a tuple instead of a :class:`Rewritten`
        saves an object, and the outbound marker is ``marker or discontinuity``.
        """
        if ssrc == self._src:  # the common case first: the current source
            # signed 16-bit delta as (d + half) & mask - half: no call, no division
            dseq = ((sequence - self._last_in_seq + 0x8000) & 0xFFFF) - 0x8000
            if dseq > self.max_dropout or dseq < -self.max_misorder:
                return self._reanchor(ssrc, sequence, timestamp, now)
            if dseq > 0:
                if (timestamp - self._last_in_ts) & 0xFFFFFFFF >= 0x80000000:
                    return self._reanchor(ssrc, sequence, timestamp, now)  # went backwards
                predicted = self._ref_ts + round((now - self._ref_now) * self.clock_rate)
                ahead = ((timestamp - predicted + 0x80000000) & 0xFFFFFFFF) - 0x80000000
                if ahead > self.max_ts_skew * self.clock_rate:
                    return self._reanchor(ssrc, sequence, timestamp, now)
            return self._emit(sequence, timestamp, now, dseq >= 0)
        if self._src is None:
            self._anchor(ssrc, sequence, timestamp, now, self.first_sequence, self.first_timestamp)
            return self._emit(sequence, timestamp, now, True)
        if ssrc == self._old_src and now - self._switched_at < self.stale_after:
            return None
        self._old_src, self._switched_at = self._src, now
        return self._reanchor(ssrc, sequence, timestamp, now)

    def _anchor(self, ssrc: int, seq: int, ts: int, now: float, out_seq: int, out_ts: int) -> None:
        self._src = ssrc
        self._seq_off = (out_seq - seq) % _SEQ_MOD
        self._ts_off = (out_ts - ts) % _TS_MOD
        self._last_in_seq, self._last_in_ts = seq, ts
        self._ref_ts, self._ref_now = ts, now

    def _reanchor(self, ssrc: int, seq: int, ts: int, now: float) -> tuple[int, int, bool]:
        elapsed = round((now - self._out_now) * self.clock_rate)
        step = max(self.samples_per_packet, elapsed)
        self._anchor(
            ssrc, seq, ts, now, (self._out_seq + 1) % _SEQ_MOD, (self._out_ts + step) % _TS_MOD
        )
        out_seq, out_ts, _ = self._emit(seq, ts, now, True)
        return out_seq, out_ts, True

    def _emit(self, seq: int, ts: int, now: float, forward: bool) -> tuple[int, int, bool]:
        """Outbound (sequence, timestamp, False); ``forward``: seq is not behind the last."""
        out_seq = (seq + self._seq_off) & 0xFFFF
        out_ts = (ts + self._ts_off) & 0xFFFFFFFF
        if forward:
            if ts != self._last_in_ts:
                self._ref_ts, self._ref_now = ts, now
            self._last_in_seq, self._last_in_ts = seq, ts
        if not self._sent or 0 < (out_seq - self._out_seq) & 0xFFFF < 0x8000:
            self._out_seq, self._out_ts, self._out_now = out_seq, out_ts, now
            self._sent = True
        return out_seq, out_ts, False
