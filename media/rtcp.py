"""RTCP (RFC 3550 section 6): SR/RR/SDES/BYE packets and per-stream statistics.

``parse_rtcp`` takes a compound datagram and raises only :class:`RtcpError` (a
``ValueError``).  :class:`ReceiverStats` implements the sequence bookkeeping of RFC 3550
A.1, loss of A.3, interarrival jitter of A.8 and the LSR/DLSR echo used for the
round-trip time (6.4.1).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

RTCP_SR = 200
RTCP_RR = 201
RTCP_SDES = 202
RTCP_BYE = 203
SDES_CNAME = 1

NTP_UNIX_OFFSET = 2_208_988_800  # seconds from 1900-01-01 to 1970-01-01
_SEQ_MOD = 1 << 16
_BLOCK = struct.Struct("!IIIIII")


class RtcpError(ValueError):
    """A datagram that is not valid RTCP."""


@dataclass(frozen=True, slots=True)
class ReportBlock:
    """One reception report block (RFC 3550 6.4.1)."""

    ssrc: int
    fraction_lost: int  # 0..255, fraction of packets lost since the last report * 256
    cumulative_lost: int  # signed 24-bit
    highest_sequence: int  # extended highest sequence number received
    jitter: int  # interarrival jitter in timestamp units
    lsr: int = 0  # middle 32 bits of the NTP time of the last SR received, 0 if none
    dlsr: int = 0  # delay since that SR, in 1/65536 s

    def pack(self) -> bytes:
        """Serialise to 24 bytes."""
        lost = max(-0x800000, min(0x7FFFFF, self.cumulative_lost)) & 0xFFFFFF
        return _BLOCK.pack(
            self.ssrc,
            (self.fraction_lost & 0xFF) << 24 | lost,
            self.highest_sequence & 0xFFFFFFFF,
            self.jitter & 0xFFFFFFFF,
            self.lsr & 0xFFFFFFFF,
            self.dlsr & 0xFFFFFFFF,
        )

    @classmethod
    def unpack(cls, data: bytes, offset: int) -> ReportBlock:
        """Parse 24 bytes at ``offset``."""
        ssrc, word, highest, jitter, lsr, dlsr = _BLOCK.unpack_from(data, offset)
        lost = word & 0xFFFFFF
        if lost & 0x800000:
            lost -= 0x1000000
        return cls(ssrc, word >> 24, lost, highest, jitter, lsr, dlsr)


@dataclass(frozen=True, slots=True)
class SenderReport:
    """SR: sender info plus reception report blocks."""

    ssrc: int
    ntp_timestamp: int  # 64-bit NTP time
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: tuple[ReportBlock, ...] = ()


@dataclass(frozen=True, slots=True)
class ReceiverReport:
    """RR: reception report blocks from a receiver that does not send."""

    ssrc: int
    reports: tuple[ReportBlock, ...] = ()


@dataclass(frozen=True, slots=True)
class SourceDescription:
    """SDES: per source a tuple of (item type, text)."""

    chunks: tuple[tuple[int, tuple[tuple[int, str], ...]], ...]


@dataclass(frozen=True, slots=True)
class Bye:
    """BYE: the sources leaving and an optional reason."""

    ssrcs: tuple[int, ...]
    reason: str = ""


@dataclass(frozen=True, slots=True)
class UnknownRtcp:
    """Any other packet type (APP, XR, feedback...), kept as its body."""

    packet_type: int
    count: int
    body: bytes


RtcpPacket = SenderReport | ReceiverReport | SourceDescription | Bye | UnknownRtcp


def _header(count: int, packet_type: int, body: bytes) -> bytes:
    if len(body) % 4:
        raise RtcpError("RTCP body must be a multiple of 4 bytes")
    if not 0 <= count <= 31:
        raise RtcpError(f"RTCP count {count} out of range")
    return struct.pack("!BBH", 0x80 | count, packet_type, len(body) // 4) + body


def build_sr(sr: SenderReport) -> bytes:
    """Serialise a sender report."""
    body = struct.pack(
        "!IQIII",
        sr.ssrc,
        sr.ntp_timestamp & 0xFFFFFFFFFFFFFFFF,
        sr.rtp_timestamp & 0xFFFFFFFF,
        sr.packet_count & 0xFFFFFFFF,
        sr.octet_count & 0xFFFFFFFF,
    )
    return _header(len(sr.reports), RTCP_SR, body + b"".join(b.pack() for b in sr.reports))


def build_rr(rr: ReceiverReport) -> bytes:
    """Serialise a receiver report."""
    body = struct.pack("!I", rr.ssrc) + b"".join(b.pack() for b in rr.reports)
    return _header(len(rr.reports), RTCP_RR, body)


def build_sdes(sdes: SourceDescription) -> bytes:
    """Serialise a source description."""
    chunks = []
    for ssrc, items in sdes.chunks:
        chunk = bytearray(struct.pack("!I", ssrc))
        for item_type, text in items:
            raw = text.encode("utf-8")[:255]
            chunk += bytes((item_type, len(raw))) + raw
        chunk += b"\x00" * (4 - len(chunk) % 4)  # at least one null terminates the item list
        chunks.append(bytes(chunk))
    return _header(len(sdes.chunks), RTCP_SDES, b"".join(chunks))


def build_bye(bye: Bye) -> bytes:
    """Serialise a BYE."""
    body = struct.pack(f"!{len(bye.ssrcs)}I", *bye.ssrcs)
    if bye.reason:
        raw = bye.reason.encode("utf-8")[:255]
        reason = bytes((len(raw),)) + raw
        body += reason + bytes(-len(reason) % 4)
    return _header(len(bye.ssrcs), RTCP_BYE, body)


def build_compound(packets: list[RtcpPacket]) -> bytes:
    """Serialise a compound RTCP packet (the first should be an SR or RR, RFC 3550 6.1)."""
    out = []
    for p in packets:
        if isinstance(p, SenderReport):
            out.append(build_sr(p))
        elif isinstance(p, ReceiverReport):
            out.append(build_rr(p))
        elif isinstance(p, SourceDescription):
            out.append(build_sdes(p))
        elif isinstance(p, Bye):
            out.append(build_bye(p))
        else:
            out.append(_header(p.count, p.packet_type, p.body))
    return b"".join(out)


def _parse_blocks(data: bytes, offset: int, count: int, end: int) -> tuple[ReportBlock, ...]:
    if offset + 24 * count > end:
        raise RtcpError(f"RTCP report claims {count} blocks but is too short")
    return tuple(ReportBlock.unpack(data, offset + 24 * i) for i in range(count))


def _parse_sdes(data: bytes, offset: int, count: int, end: int) -> SourceDescription:
    chunks = []
    for _ in range(count):
        if offset + 4 > end:
            raise RtcpError("SDES chunk truncated")
        (ssrc,) = struct.unpack_from("!I", data, offset)
        offset += 4
        items = []
        while True:
            if offset >= end:
                raise RtcpError("SDES item list not terminated")
            item_type = data[offset]
            if item_type == 0:
                offset = (offset + 4) & ~3  # skip the terminator and pad to 32 bits
                break
            if offset + 2 > end or offset + 2 + data[offset + 1] > end:
                raise RtcpError("SDES item truncated")
            length = data[offset + 1]
            text = bytes(data[offset + 2 : offset + 2 + length]).decode("utf-8", "replace")
            items.append((item_type, text))
            offset += 2 + length
        chunks.append((ssrc, tuple(items)))
    return SourceDescription(tuple(chunks))


def parse_rtcp(data: bytes) -> list[RtcpPacket]:
    """Parse a compound RTCP datagram; raises RtcpError with the reason if malformed."""
    packets: list[RtcpPacket] = []
    offset, n = 0, len(data)
    if n < 4:
        raise RtcpError(f"RTCP packet too short ({n} bytes)")
    while offset < n:
        if offset + 4 > n:
            raise RtcpError("trailing bytes after the last RTCP packet")
        b0, pt, words = struct.unpack_from("!BBH", data, offset)
        if b0 >> 6 != 2:
            raise RtcpError(f"RTCP version {b0 >> 6}, expected 2")
        count = b0 & 0x1F
        end = offset + 4 + 4 * words
        if end > n:
            raise RtcpError(f"RTCP length {words} exceeds the datagram")
        if b0 & 0x20:
            pad = data[end - 1] if end > offset + 4 else 0
            if pad == 0 or pad > end - offset - 4:
                raise RtcpError(f"bad RTCP padding count {pad}")
            body_end = end - pad
        else:
            body_end = end
        body = offset + 4
        if pt == RTCP_SR:
            if body + 24 > body_end:
                raise RtcpError("SR too short for sender info")
            ssrc, ntp, rtp_ts, pcount, ocount = struct.unpack_from("!IQIII", data, body)
            blocks = _parse_blocks(data, body + 24, count, body_end)
            packets.append(SenderReport(ssrc, ntp, rtp_ts, pcount, ocount, blocks))
        elif pt == RTCP_RR:
            if body + 4 > body_end:
                raise RtcpError("RR too short")
            (ssrc,) = struct.unpack_from("!I", data, body)
            packets.append(ReceiverReport(ssrc, _parse_blocks(data, body + 4, count, body_end)))
        elif pt == RTCP_SDES:
            packets.append(_parse_sdes(data, body, count, body_end))
        elif pt == RTCP_BYE:
            if body + 4 * count > body_end:
                raise RtcpError("BYE truncated")
            ssrcs = struct.unpack_from(f"!{count}I", data, body)
            reason = ""
            at = body + 4 * count
            if at < body_end:
                length = data[at]
                if at + 1 + length > body_end:
                    raise RtcpError("BYE reason truncated")
                reason = bytes(data[at + 1 : at + 1 + length]).decode("utf-8", "replace")
            packets.append(Bye(tuple(ssrcs), reason))
        else:
            packets.append(UnknownRtcp(pt, count, bytes(data[body:body_end])))
        offset = end
    return packets


def ntp_timestamp(unix_time: float) -> int:
    """64-bit NTP timestamp of a Unix time in seconds."""
    seconds = int(unix_time) + NTP_UNIX_OFFSET
    fraction = int((unix_time - int(unix_time)) * (1 << 32)) & 0xFFFFFFFF
    return ((seconds & 0xFFFFFFFF) << 32) | fraction


def compact_ntp(ntp: int) -> int:
    """Middle 32 bits of a 64-bit NTP timestamp (the LSR format, units of 1/65536 s)."""
    return (ntp >> 16) & 0xFFFFFFFF


def round_trip_time(block: ReportBlock, arrival_unix: float) -> float | None:
    """RTT in seconds from a report block about our stream (RFC 3550 6.4.1), or None.

    ``arrival_unix`` must come from the same clock that stamped our SRs.
    """
    if block.lsr == 0:
        return None
    rtt = (compact_ntp(ntp_timestamp(arrival_unix)) - block.lsr - block.dlsr) & 0xFFFFFFFF
    if rtt >= 0x80000000:  # negative: clock stepped or a bogus echo
        return None
    return rtt / 65536.0


@dataclass
class SenderStats:
    """Counters a sender puts in its SRs."""

    ssrc: int
    packet_count: int = 0
    octet_count: int = 0

    def on_sent(self, payload_length: int) -> None:
        """Count one RTP packet sent with this payload length."""
        self.packet_count = (self.packet_count + 1) & 0xFFFFFFFF
        self.octet_count = (self.octet_count + payload_length) & 0xFFFFFFFF

    def sender_report(
        self, unix_time: float, rtp_timestamp: int, reports: tuple[ReportBlock, ...] = ()
    ) -> SenderReport:
        """An SR stamped with ``unix_time`` and the matching RTP timestamp."""
        return SenderReport(
            self.ssrc,
            ntp_timestamp(unix_time),
            rtp_timestamp & 0xFFFFFFFF,
            self.packet_count,
            self.octet_count,
            reports,
        )


@dataclass
class ReceiverStats:
    """Reception statistics of one inbound source (RFC 3550 A.1, A.3, A.8).

    ``arrival`` times are seconds on any monotonic clock; ``on_sender_report`` takes the
    arrival time on the same clock as ``report_block`` so DLSR is consistent.
    """

    ssrc: int
    clock_rate: int = 8000
    probation: int = 2  # MIN_SEQUENTIAL; 0 accepts the first packet at once
    max_dropout: int = 3000
    max_misorder: int = 100
    base_seq: int = field(init=False)
    max_seq: int = field(init=False)
    cycles: int = field(init=False)
    received: int = field(init=False)
    jitter: float = field(init=False)  # timestamp units
    _bad_seq: int = field(init=False)
    _expected_prior: int = field(init=False)
    _received_prior: int = field(init=False)
    _transit: int | None = field(init=False)
    _started: bool = field(init=False)
    _probation: int = field(init=False)
    _lsr: int = field(init=False)
    _sr_arrival: float = field(init=False)

    def __post_init__(self) -> None:
        # Set here, not as field defaults: compiled with mypyc the dataclass leaves an
        # init=False field with a plain default unset (there is no class attribute to read).
        self.base_seq = 0
        self.max_seq = 0
        self.cycles = 0
        self.received = 0
        self.jitter = 0.0
        self._bad_seq = _SEQ_MOD + 1
        self._expected_prior = 0
        self._received_prior = 0
        self._transit = None
        self._started = False
        self._probation = 0
        self._lsr = 0
        self._sr_arrival = 0.0

    def _init_seq(self, seq: int) -> None:
        self.base_seq = seq
        self.max_seq = seq
        self._bad_seq = _SEQ_MOD + 1
        self.cycles = 0
        self.received = 0
        self._received_prior = 0
        self._expected_prior = 0

    def on_packet(self, sequence: int, rtp_timestamp: int, arrival: float) -> bool:
        """Account one RTP packet; False if it was not counted (probation, restart)."""
        seq = sequence & 0xFFFF
        if self._started and not self._probation:  # every packet but a source's first few
            udelta = (seq - self.max_seq) & 0xFFFF
            if udelta < self.max_dropout:
                if seq < self.max_seq:
                    self.cycles += _SEQ_MOD
                self.max_seq = seq
            elif udelta <= _SEQ_MOD - self.max_misorder:
                if seq == self._bad_seq:
                    self._init_seq(seq)  # two sequential packets after a jump: source restarted
                    self._transit = None
                else:
                    self._bad_seq = (seq + 1) % _SEQ_MOD
                    return False
            self.received += 1
        elif not self._on_probation(seq):
            return False
        # interarrival jitter (A.8), inline: this runs for every packet received
        transit = (round(arrival * self.clock_rate) - rtp_timestamp) & 0xFFFFFFFF
        last = self._transit
        if last is not None:
            d = (transit - last) & 0xFFFFFFFF
            if d >= 0x80000000:
                d = 0x100000000 - d
            self.jitter += (d - self.jitter) / 16.0
        self._transit = transit
        return True

    def _on_probation(self, seq: int) -> bool:
        """The first packet of a source and those of its probation; True if counted."""
        if not self._started:
            self._started = True
            self._init_seq(seq)
            self._probation = self.probation
            if not self._probation:
                self.received = 1
                return True
            self.max_seq = (seq - 1) % _SEQ_MOD
        if (seq - self.max_seq) % _SEQ_MOD == 1:
            self._probation -= 1
            self.max_seq = seq
            if self._probation == 0:
                self._init_seq(seq)
                self.received += 1
                return True
        else:
            self._probation = self.probation - 1
            self.max_seq = seq
        return False

    @property
    def extended_max(self) -> int:
        """Extended highest sequence number received."""
        return self.cycles + self.max_seq

    @property
    def expected(self) -> int:
        """Packets expected since the first counted one."""
        return self.extended_max - self.base_seq + 1 if self.received else 0

    @property
    def cumulative_lost(self) -> int:
        """Packets lost (may be negative with duplicates), clamped to 24-bit signed."""
        return max(-0x800000, min(0x7FFFFF, self.expected - self.received))

    @property
    def loss_ratio(self) -> float:
        """Cumulative loss as a fraction 0..1 of the packets expected."""
        expected = self.expected
        return max(0, self.expected - self.received) / expected if expected else 0.0

    @property
    def jitter_seconds(self) -> float:
        """Interarrival jitter in seconds."""
        return self.jitter / self.clock_rate

    def on_sender_report(self, sr: SenderReport, arrival: float) -> None:
        """Remember an SR from this source for the LSR/DLSR echo."""
        self._lsr = compact_ntp(sr.ntp_timestamp)
        self._sr_arrival = arrival

    def report_block(self, now: float) -> ReportBlock:
        """A reception report for this source; starts a new loss interval (A.3)."""
        expected = self.expected
        expected_interval = expected - self._expected_prior
        self._expected_prior = expected
        received_interval = self.received - self._received_prior
        self._received_prior = self.received
        lost_interval = expected_interval - received_interval
        fraction = 0
        if expected_interval > 0 and lost_interval > 0:
            fraction = min(255, (lost_interval << 8) // expected_interval)
        dlsr = 0
        if self._lsr:
            dlsr = max(0, round((now - self._sr_arrival) * 65536)) & 0xFFFFFFFF
        return ReportBlock(
            self.ssrc,
            fraction,
            self.cumulative_lost,
            self.extended_max & 0xFFFFFFFF,
            int(self.jitter),
            self._lsr,
            dlsr,
        )
