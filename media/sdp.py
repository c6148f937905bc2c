"""SDP (RFC 4566) and the offer/answer model (RFC 3264) for an anchoring media engine.

The parser keeps every line it does not interpret, in order, so a description
round-trips.  Negotiation supports what the engine can process: PCMU (0), PCMA (8) and
telephone-event (RFC 4733) at 8 kHz, ptime 20, over RTP/AVP audio.  Anything else is
negotiated away: unsupported codecs are left out of the answer, other streams are rejected
with port 0 (kept in order), and no usable audio stream at all raises
:class:`NegotiationError` (status 488).

Over 600 lines because it is one parser and writer of SDP (RFC 4566) with the offer/answer
rules of RFC 3264 that need its internals.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field, replace
from typing import Final

DIRECTIONS: Final = ("sendrecv", "sendonly", "recvonly", "inactive")
SUPPORTED_PROTOS: Final = ("RTP/AVP",)
DEFAULT_PTIME: Final = 20
TELEPHONE_EVENT_MAX: Final = 16  # events 0-15 (DTMF) and 16 (flash)

_STATIC_AUDIO: Final = {0: ("PCMU", 8000), 8: ("PCMA", 8000)}
_HOSTNAME = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")


class SdpError(ValueError):
    """Malformed SDP; ``line`` is the offending line number (1-based) or 0."""

    def __init__(self, reason: str, line: int = 0) -> None:
        super().__init__(f"{reason} (line {line})" if line else reason)
        self.reason = reason
        self.line = line


class NegotiationError(ValueError):
    """The offer cannot be answered; ``status`` is the SIP response to send (488)."""

    status = 488

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(slots=True)
class Origin:
    """o= line."""

    username: str = "-"
    session_id: str = "0"
    session_version: int = 0
    nettype: str = "IN"
    addrtype: str = "IP4"
    address: str = "127.0.0.1"

    def __str__(self) -> str:
        return (
            f"{self.username} {self.session_id} {self.session_version} "
            f"{self.nettype} {self.addrtype} {self.address}"
        )


@dataclass(slots=True)
class Connection:
    """c= line; ``address`` may carry /ttl[/count] for multicast."""

    address: str
    addrtype: str = "IP4"
    nettype: str = "IN"

    @property
    def host(self) -> str:
        """The address without any multicast suffix."""
        return self.address.split("/", 1)[0]

    @property
    def is_hold(self) -> bool:
        """RFC 2543 style hold: c=IN IP4 0.0.0.0 (RFC 3264 8.4)."""
        return self.host in ("0.0.0.0", "::")

    def __str__(self) -> str:
        return f"{self.nettype} {self.addrtype} {self.address}"


@dataclass(slots=True)
class Attribute:
    """a= line: ``name`` alone (property) or ``name:value``."""

    name: str
    value: str | None = None

    def __str__(self) -> str:
        return self.name if self.value is None else f"{self.name}:{self.value}"


@dataclass(slots=True)
class MediaDescription:
    """One m= section with its c=, b=, a= and other lines."""

    media: str
    port: int
    proto: str
    formats: list[str]
    port_count: int | None = None
    connection: Connection | None = None
    attributes: list[Attribute] = field(default_factory=list)
    other: list[tuple[str, str]] = field(default_factory=list)  # i=, b=, k= lines in order

    def attribute(self, name: str) -> str | None:
        """Value of the first attribute ``name`` ('' for a property attribute), or None."""
        for a in self.attributes:
            if a.name == name:
                return "" if a.value is None else a.value
        return None

    def attribute_values(self, name: str) -> list[str]:
        """Values of every attribute ``name``."""
        return [a.value or "" for a in self.attributes if a.name == name]

    @property
    def direction(self) -> str | None:
        """sendrecv/sendonly/recvonly/inactive if given at media level."""
        for a in self.attributes:
            if a.value is None and a.name in DIRECTIONS:
                return a.name
        return None

    def rtpmaps(self) -> dict[str, tuple[str, int, int]]:
        """Format -> (encoding name, clock rate, channels) from a=rtpmap."""
        out: dict[str, tuple[str, int, int]] = {}
        for value in self.attribute_values("rtpmap"):
            pt, _, rest = value.partition(" ")
            parts = rest.strip().split("/")
            try:
                rate = int(parts[1]) if len(parts) > 1 else 0
                channels = int(parts[2]) if len(parts) > 2 else 1
            except ValueError:
                continue  # a broken rtpmap makes that format unusable, not the message
            out.setdefault(pt, (parts[0], rate, channels))
        return out

    def fmtps(self) -> dict[str, str]:
        """Format -> fmtp parameters."""
        out: dict[str, str] = {}
        for value in self.attribute_values("fmtp"):
            pt, _, params = value.partition(" ")
            out.setdefault(pt, params.strip())
        return out

    def lines(self) -> list[str]:
        """Serialised lines of this section."""
        port = f"{self.port}/{self.port_count}" if self.port_count is not None else str(self.port)
        out = [f"m={self.media} {port} {self.proto} {' '.join(self.formats)}".rstrip()]
        out.extend(f"{k}={v}" for k, v in self.other if k == "i")
        if self.connection is not None:
            out.append(f"c={self.connection}")
        out.extend(f"{k}={v}" for k, v in self.other if k != "i")
        out.extend(f"a={a}" for a in self.attributes)
        return out


@dataclass(slots=True)
class SessionDescription:
    """A whole SDP body."""

    origin: Origin = field(default_factory=Origin)
    session_name: str = "-"
    connection: Connection | None = None
    times: list[str] = field(default_factory=lambda: ["0 0"])
    attributes: list[Attribute] = field(default_factory=list)
    media: list[MediaDescription] = field(default_factory=list)
    other: list[tuple[str, str]] = field(default_factory=list)  # i, u, e, p, b, r, z, k lines
    version: int = 0

    @property
    def direction(self) -> str | None:
        """Session-level direction attribute, if any."""
        for a in self.attributes:
            if a.value is None and a.name in DIRECTIONS:
                return a.name
        return None

    def connection_for(self, m: MediaDescription) -> Connection | None:
        """The c= that applies to a media section (media level wins)."""
        return m.connection or self.connection

    def direction_for(self, m: MediaDescription) -> str:
        """Effective direction of a media section (media, then session, then sendrecv)."""
        return m.direction or self.direction or "sendrecv"

    def to_str(self) -> str:
        """Serialise with CRLF line ends."""
        lines = [f"v={self.version}", f"o={self.origin}", f"s={self.session_name}"]
        order = "iuepb"
        for key in order:
            lines.extend(f"{k}={v}" for k, v in self.other if k == key and k != "b")
            if key == "p" and self.connection is not None:
                lines.append(f"c={self.connection}")
        lines.extend(f"b={v}" for k, v in self.other if k == "b")
        for t in self.times or ["0 0"]:
            lines.append(f"t={t}")
        lines.extend(f"{k}={v}" for k, v in self.other if k in "rzk")
        lines.extend(f"a={a}" for a in self.attributes)
        for m in self.media:
            lines.extend(m.lines())
        return "\r\n".join(lines) + "\r\n"

    def to_bytes(self) -> bytes:
        """Serialise to bytes for a SIP body."""
        return self.to_str().encode("utf-8")

    def __str__(self) -> str:
        return self.to_str()


def _parse_connection(value: str, lineno: int) -> Connection:
    parts = value.split()
    if len(parts) != 3 or parts[0] != "IN":
        raise SdpError(f"bad c= line {value!r}", lineno)
    nettype, addrtype, address = parts
    host = address.split("/", 1)[0]
    if addrtype not in ("IP4", "IP6"):
        raise SdpError(f"unknown address type {addrtype!r}", lineno)
    try:
        ipaddress.IPv4Address(host) if addrtype == "IP4" else ipaddress.IPv6Address(host)
    except ValueError:
        # RFC 4566 allows a FQDN too; a numeric-looking string that failed is an error
        if not _HOSTNAME.match(host) or (addrtype == "IP4" and host.replace(".", "").isdigit()):
            raise SdpError(f"bad {addrtype} address {host!r}", lineno) from None
    return Connection(address, addrtype, nettype)


def _parse_media(value: str, lineno: int) -> MediaDescription:
    parts = value.split()
    if len(parts) < 3:
        raise SdpError(f"bad m= line {value!r}", lineno)
    media, port_s, proto, *formats = parts
    port_count = None
    if "/" in port_s:
        port_s, _, count_s = port_s.partition("/")
        if not (count_s.isascii() and count_s.isdigit()):
            raise SdpError(f"bad port count in m= line {value!r}", lineno)
        port_count = int(count_s)
    if not (port_s.isascii() and port_s.isdigit()) or int(port_s) > 65535:
        raise SdpError(f"bad port in m= line {value!r}", lineno)
    return MediaDescription(media, int(port_s), proto, formats, port_count)


def parse_sdp(data: bytes | str) -> SessionDescription:
    """Parse an SDP body; raises SdpError naming the line on anything malformed.

    Lenient where real devices are: LF or CRLF line ends, a missing s= or t=, trailing
    whitespace, unknown line types (ignored but kept).
    """
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
    else:
        text = data
    sdp = SessionDescription(times=[])
    current: MediaDescription | None = None
    seen_v = seen_o = False
    for lineno, raw in enumerate(text.split("\n"), 1):
        line = raw.rstrip("\r").rstrip()
        if not line:
            continue
        if len(line) < 2 or line[1] != "=" or not line[0].isalpha():
            raise SdpError(f"not an SDP line: {line[:40]!r}", lineno)
        key, value = line[0], line[2:]
        if not seen_v:
            if key != "v":
                raise SdpError("SDP must start with v=", lineno)
            if value.strip() != "0":
                raise SdpError(f"unsupported SDP version {value!r}", lineno)
            seen_v = True
            continue
        if key == "v":
            raise SdpError("duplicate v= line", lineno)
        if key == "o":
            parts = value.split()
            if len(parts) != 6 or not (parts[2].isascii() and parts[2].isdigit()):
                raise SdpError(f"bad o= line {value!r}", lineno)
            sdp.origin = Origin(parts[0], parts[1], int(parts[2]), parts[3], parts[4], parts[5])
            seen_o = True
        elif key == "m":
            current = _parse_media(value, lineno)
            sdp.media.append(current)
        elif key == "c":
            conn = _parse_connection(value, lineno)
            if current is None:
                sdp.connection = conn
            else:
                current.connection = conn
        elif key == "a":
            name, sep, attr_value = value.partition(":")
            attr = Attribute(name.strip(), attr_value if sep else None)
            (current.attributes if current else sdp.attributes).append(attr)
        elif current is not None:
            current.other.append((key, value))
        elif key == "s":
            sdp.session_name = value or "-"
        elif key == "t":
            sdp.times.append(value)
        else:
            sdp.other.append((key, value))
    if not seen_v:
        raise SdpError("empty SDP")
    if not seen_o:
        raise SdpError("SDP has no o= line")
    if not sdp.times:
        sdp.times = ["0 0"]
    for index, m in enumerate(sdp.media):
        if m.port != 0 and sdp.connection_for(m) is None:
            raise SdpError(f"media stream {index} has no c= line")
    return sdp


@dataclass(frozen=True, slots=True)
class Codec:
    """A negotiated payload format."""

    payload_type: int
    name: str
    clock_rate: int = 8000
    channels: int = 1
    fmtp: str | None = None


@dataclass(frozen=True, slots=True)
class NegotiatedStream:
    """Outcome for one m= line of an offer/answer exchange."""

    index: int
    media: str
    accepted: bool
    codec: Codec | None = None  # what we send and expect to receive (None if rejected)
    telephone_event: Codec | None = None
    remote_host: str | None = None
    remote_port: int = 0
    local_port: int = 0
    direction: str = "inactive"  # our direction: does the engine send and/or receive
    remote_hold: bool = False  # the peer stopped receiving (sendonly/inactive/0.0.0.0)
    ptime: int = DEFAULT_PTIME

    @property
    def sends(self) -> bool:
        """Whether the engine sends media on this stream."""
        return self.direction in ("sendrecv", "sendonly")

    @property
    def receives(self) -> bool:
        """Whether the engine expects media on this stream."""
        return self.direction in ("sendrecv", "recvonly")


_MIRROR: Final = {
    "sendrecv": "sendrecv",
    "sendonly": "recvonly",
    "recvonly": "sendonly",
    "inactive": "inactive",
}


def answer_direction(offered: str, wanted: str = "sendrecv") -> str:
    """Direction to answer (RFC 3264 6.1): the mirror of the offer limited by our wish."""
    if offered not in _MIRROR or wanted not in _MIRROR:
        raise ValueError(f"unknown direction {offered!r} / {wanted!r}")
    mirror = _MIRROR[offered]
    send = mirror in ("sendrecv", "sendonly") and wanted in ("sendrecv", "sendonly")
    recv = mirror in ("sendrecv", "recvonly") and wanted in ("sendrecv", "recvonly")
    return {(True, True): "sendrecv", (True, False): "sendonly", (False, True): "recvonly"}.get(
        (send, recv), "inactive"
    )


def _events(fmtp: str | None) -> set[int]:
    """Event numbers listed in a telephone-event fmtp (RFC 4733 2.4.1, default 0-15)."""
    if not fmtp:
        return set(range(16))
    events: set[int] = set()
    for part in fmtp.replace(" ", "").split(","):
        lo, sep, hi = part.partition("-")
        if not (lo.isascii() and lo.isdigit()) or (sep and not (hi.isascii() and hi.isdigit())):
            continue
        a, b = int(lo), int(hi) if sep else int(lo)
        events.update(range(a, min(b, 255) + 1))
    return events


def _format_events(events: set[int]) -> str:
    ranges: list[str] = []
    ordered = sorted(events)
    start = prev = ordered[0]
    for e in [*ordered[1:], None]:
        if e is not None and e == prev + 1:
            prev = e
            continue
        ranges.append(str(start) if start == prev else f"{start}-{prev}")
        if e is not None:
            start = prev = e
    return ",".join(ranges)


def _classify(m: MediaDescription) -> tuple[list[Codec], Codec | None]:
    """Supported audio codecs of an m= line in offer order, and telephone-event if usable."""
    rtpmaps = m.rtpmaps()
    fmtps = m.fmtps()
    audio: list[Codec] = []
    event: Codec | None = None
    for fmt in m.formats:
        if not (fmt.isascii() and fmt.isdigit()) or int(fmt) > 127:
            continue
        pt = int(fmt)
        name, rate, channels = rtpmaps.get(fmt, ("", 0, 1))
        if not name and pt in _STATIC_AUDIO:
            name, rate = _STATIC_AUDIO[pt]
        if pt < 96 and pt in _STATIC_AUDIO:
            # static assignments are fixed (RFC 3551); a contradicting rtpmap is ignored
            name, rate = _STATIC_AUDIO[pt]
        if rate != 8000 or channels != 1:
            continue
        upper = name.upper()
        if upper in ("PCMU", "PCMA") and all(c.name != upper for c in audio):
            audio.append(Codec(pt, upper))
        elif upper == "TELEPHONE-EVENT" and event is None:
            events = _events(fmtps.get(fmt)) & set(range(TELEPHONE_EVENT_MAX + 1))
            if events:
                event = Codec(pt, "telephone-event", fmtp=_format_events(events))
    return audio, event


def _media_attributes(
    codec: Codec, event: Codec | None, direction: str, ptime: int
) -> list[Attribute]:
    attrs = [Attribute("rtpmap", f"{codec.payload_type} {codec.name}/{codec.clock_rate}")]
    if event is not None:
        attrs.append(Attribute("rtpmap", f"{event.payload_type} telephone-event/8000"))
        attrs.append(Attribute("fmtp", f"{event.payload_type} {event.fmtp or '0-16'}"))
    attrs.append(Attribute("ptime", str(ptime)))
    attrs.append(Attribute(direction))
    return attrs


def _addrtype(address: str) -> str:
    try:
        return "IP6" if ipaddress.ip_address(address).version == 6 else "IP4"
    except ValueError:
        return "IP4"  # a host name: IPv4 is the safe default for legacy peers


@dataclass
class LocalOrigin:
    """Our o= line across one SIP dialog: version bumps only when the SDP changes."""

    address: str
    session_id: str
    username: str = "-"
    version: int = 0
    _last: str | None = field(default=None, init=False, repr=False)

    def stamp(self, sdp: SessionDescription) -> SessionDescription:
        """Set ``sdp.origin``, incrementing the version if the body differs from last time."""
        body = _without_origin(sdp)
        if self._last is not None and body != self._last:
            self.version += 1
        self._last = body
        sdp.origin = Origin(
            self.username,
            self.session_id,
            self.version,
            "IN",
            _addrtype(self.address),
            self.address,
        )
        return sdp


def _without_origin(sdp: SessionDescription) -> str:
    return sdp.to_str().split("\r\n", 2)[2]


def answer_offer(
    offer: SessionDescription,
    *,
    address: str,
    port: int,
    origin: Origin | None = None,
    direction: str = "sendrecv",
    codecs: tuple[str, ...] = ("PCMU", "PCMA"),
    prefer_offer_order: bool = True,
    ptime: int = DEFAULT_PTIME,
    session_name: str = "-",
) -> tuple[SessionDescription, list[NegotiatedStream]]:
    """Answer ``offer`` for an anchored call: our ``address``/``port`` in the answer.

    One audio stream is accepted (the first with a common codec) with exactly one codec,
    plus telephone-event when offered; every other stream is rejected with port 0 and
    keeps its place.  ``direction`` is what we want (e.g. sendonly to put the peer on
    hold); the answer is the offer's mirror limited by it.  Raises NegotiationError (488)
    when no audio stream can be accepted.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown direction {direction!r}")
    if not 0 < port < 65536:
        raise ValueError(f"bad local port {port}")
    wanted = [c.upper() for c in codecs]
    answer = SessionDescription(
        origin=origin or Origin(address=address, addrtype=_addrtype(address)),
        session_name=session_name,
        connection=Connection(address, _addrtype(address)),
    )
    results: list[NegotiatedStream] = []
    accepted_any = False
    reasons: list[str] = []
    for index, m in enumerate(offer.media):
        reject = MediaDescription(m.media, 0, m.proto, m.formats[:1] or ["0"])
        if m.port == 0:
            answer.media.append(reject)
            results.append(NegotiatedStream(index, m.media, False))
            continue
        if m.media != "audio" or m.proto.upper() not in SUPPORTED_PROTOS or accepted_any:
            reasons.append(f"stream {index}: {m.media} {m.proto} not supported")
            answer.media.append(reject)
            results.append(NegotiatedStream(index, m.media, False))
            continue
        offered, event = _classify(m)
        common = [c for c in offered if c.name in wanted]
        if not prefer_offer_order:
            common.sort(key=lambda c: wanted.index(c.name))
        if not common:
            names = " ".join(m.formats) or "none"
            reasons.append(f"stream {index}: no common codec (offered {names})")
            answer.media.append(reject)
            results.append(NegotiatedStream(index, m.media, False))
            continue
        codec = common[0]
        conn = offer.connection_for(m)
        assert conn is not None  # parse_sdp guarantees a c= for every live stream
        offered_dir = offer.direction_for(m)
        hold_address = conn.is_hold
        if hold_address:
            # RFC 3264 8.4: 0.0.0.0 means "do not send to me"
            offered_dir = {"sendrecv": "sendonly", "recvonly": "inactive"}.get(
                offered_dir, offered_dir
            )
        our_dir = answer_direction(offered_dir, direction)
        answer.media.append(
            MediaDescription(
                "audio",
                port,
                m.proto,
                [str(codec.payload_type)] + ([str(event.payload_type)] if event else []),
                attributes=_media_attributes(codec, event, our_dir, ptime),
            )
        )
        results.append(
            NegotiatedStream(
                index,
                "audio",
                True,
                codec,
                event,
                None if hold_address else conn.host,
                m.port,
                port,
                our_dir,
                offered_dir in ("sendonly", "inactive"),
                ptime,
            )
        )
        accepted_any = True
    if not accepted_any:
        detail = "; ".join(reasons) if reasons else "no media streams offered"
        raise NegotiationError(f"not acceptable here: {detail}")
    return answer, results


def create_offer(
    *,
    address: str,
    port: int,
    origin: Origin | None = None,
    direction: str = "sendrecv",
    codecs: tuple[str, ...] = ("PCMU", "PCMA"),
    telephone_event_pt: int | None = 101,
    ptime: int = DEFAULT_PTIME,
    session_name: str = "-",
) -> SessionDescription:
    """An anchored audio offer with our address/port, G.711 codecs and telephone-event."""
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown direction {direction!r}")
    if telephone_event_pt is not None and not 96 <= telephone_event_pt <= 127:
        raise ValueError("telephone-event needs a dynamic payload type (96-127)")
    pts = {"PCMU": 0, "PCMA": 8}
    try:
        chosen = [Codec(pts[c.upper()], c.upper()) for c in codecs]
    except KeyError as exc:
        raise ValueError(f"unsupported codec {exc.args[0]!r}") from None
    if not chosen:
        raise ValueError("an offer needs at least one codec")
    attrs = [Attribute("rtpmap", f"{c.payload_type} {c.name}/8000") for c in chosen]
    formats = [str(c.payload_type) for c in chosen]
    if telephone_event_pt is not None:
        formats.append(str(telephone_event_pt))
        attrs.append(Attribute("rtpmap", f"{telephone_event_pt} telephone-event/8000"))
        attrs.append(Attribute("fmtp", f"{telephone_event_pt} 0-16"))
    attrs += [Attribute("ptime", str(ptime)), Attribute(direction)]
    return SessionDescription(
        origin=origin or Origin(address=address, addrtype=_addrtype(address)),
        session_name=session_name,
        connection=Connection(address, _addrtype(address)),
        media=[MediaDescription("audio", port, "RTP/AVP", formats, attributes=attrs)],
    )


def process_answer(
    offer: SessionDescription, answer: SessionDescription, *, local_port: int | None = None
) -> list[NegotiatedStream]:
    """Check an answer against our offer and return what was agreed per stream.

    Raises NegotiationError if the answer does not match the offer (wrong number of
    streams, a codec we did not offer, no accepted audio stream).
    """
    if len(answer.media) != len(offer.media):
        raise NegotiationError(
            f"answer has {len(answer.media)} streams, offer had {len(offer.media)}"
        )
    results: list[NegotiatedStream] = []
    accepted_any = False
    for index, (mo, ma) in enumerate(zip(offer.media, answer.media, strict=True)):
        if ma.port == 0 or mo.port == 0 or mo.media != "audio":
            results.append(NegotiatedStream(index, ma.media, False))
            continue
        offered, offered_event = _classify(mo)
        answered, event = _classify(ma)
        offered_pts = {c.payload_type for c in offered}
        usable = [c for c in answered if c.payload_type in offered_pts]
        if not usable:
            raise NegotiationError(f"stream {index}: answer has no codec from the offer")
        if event is not None and (
            offered_event is None or event.payload_type != offered_event.payload_type
        ):
            event = None  # RFC 3264 6.1: answer PTs must match ours; ignore a stray one
        conn = answer.connection_for(ma)
        assert conn is not None
        remote_dir = answer.direction_for(ma)
        if conn.is_hold:
            remote_dir = {"sendrecv": "sendonly", "recvonly": "inactive"}.get(
                remote_dir, remote_dir
            )
        results.append(
            NegotiatedStream(
                index,
                "audio",
                True,
                usable[0],
                event,
                None if conn.is_hold else conn.host,
                ma.port,
                local_port if local_port is not None else mo.port,
                _MIRROR[remote_dir],
                remote_dir in ("sendonly", "inactive"),
                _ptime(ma),
            )
        )
        accepted_any = True
    if not accepted_any:
        raise NegotiationError("answer accepted no audio stream")
    return results


def _ptime(m: MediaDescription) -> int:
    value = m.attribute("ptime")
    try:
        return int(float(value)) if value else DEFAULT_PTIME
    except ValueError:
        return DEFAULT_PTIME


def with_direction(sdp: SessionDescription, direction: str) -> SessionDescription:
    """A copy of our SDP with every live audio stream set to ``direction`` (hold/resume)."""
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown direction {direction!r}")
    media = []
    for m in sdp.media:
        attrs = [a for a in m.attributes if not (a.value is None and a.name in DIRECTIONS)]
        if m.port:
            attrs.append(Attribute(direction))
        media.append(replace(m, attributes=attrs, formats=list(m.formats)))
    session_attrs = [a for a in sdp.attributes if not (a.value is None and a.name in DIRECTIONS)]
    return replace(sdp, media=media, attributes=session_attrs, origin=replace(sdp.origin))
