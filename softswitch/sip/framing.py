"""Sans-I/O framing of SIP messages on a byte stream (RFC 3261 18.3, RFC 5626 4.4.1).

A stream (TCP, TLS) carries messages back to back; only Content-Length says where a body
ends, so it is mandatory there. The framer never parses a message: it finds the end of the
header block, pulls Content-Length out of those bytes and hands up the raw message bytes.
Between messages a peer may send CRLFs: a double CRLF is an RFC 5626 keep-alive ping (the
adapter answers with a single CRLF pong), a lone CRLF is a pong or padding and is skipped.

Anything the framer cannot frame (no or bad Content-Length, a header block or message over
the limits) becomes a :class:`FramingError`; the stream is then out of sync for good, so the
framer stops and the adapter answers if it can (:meth:`FramingError.response`) and closes.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Final

__all__ = [
    "PING",
    "FramedItem",
    "FramingError",
    "KeepAlivePing",
    "StreamFramer",
    "minimal_response",
]

_CRLF: Final = b"\r\n"
_CRLF2: Final = b"\r\n\r\n"
_PING_PREFIXES: Final = (b"\r", b"\r\n", b"\r\n\r")

# Searched only inside the header block; the leading CRLF anchors it to a line start so a
# header such as "X-Content-Length" or a value containing "l:" never matches.
_CONTENT_LENGTH_RE: Final = re.compile(rb"\r\n(?:content-length|l)[ \t]*:[ \t]*([^\r\n]*)", re.I)
_MAX_LENGTH_DIGITS: Final = 10
# A message starts with a method (a token) or "SIP/2.0": anything else (a TLS ClientHello on
# the TCP port, binary junk) is refused at once instead of waiting for the header limit.
_TOKEN_BYTES: Final = frozenset(
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~"
)

DEFAULT_MAX_HEADER_SIZE: Final = 16384


class KeepAlivePing:
    """A CRLFCRLF keep-alive ping (RFC 5626 4.4.1); use the :data:`PING` singleton."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "PING"


PING: Final = KeepAlivePing()


@dataclass(frozen=True, slots=True)
class FramingError:
    """The stream cannot be framed any further.

    ``status``/``reason`` are the SIP answer a server gives; ``header_block`` holds the
    offending message's header block (start line and headers, without the blank line) when
    it was complete, so that a response can be built from it.
    """

    status: int
    reason: str
    header_block: bytes | None = None

    def response(self) -> bytes | None:
        """The bytes of a stateless error response, or None when there is nothing to answer."""
        if self.header_block is None:
            return None
        return minimal_response(self.header_block, self.status, self.reason)


FramedItem = bytes | KeepAlivePing | FramingError


class StreamFramer:
    """Cuts a SIP byte stream into messages, keep-alive pings and a final error.

    ``feed`` may be called with any slice of the stream; a complete message is returned as
    ``bytes`` (header block + exactly Content-Length body bytes, leading CRLFs removed).
    The buffer never grows beyond ``max_message_size`` plus one read, whatever the peer sends.
    """

    __slots__ = ("_buf", "_error", "_max_header", "_max_message", "_need", "_scan_from")

    def __init__(self, max_message_size: int = 65535, max_header_size: int | None = None) -> None:
        if max_message_size < 16:
            raise ValueError("max_message_size too small")
        self._max_message = max_message_size
        self._max_header = min(max_header_size or DEFAULT_MAX_HEADER_SIZE, max_message_size)
        self._buf = bytearray()
        self._need = 0  # total length of the message whose header block is parsed, 0 if none
        self._scan_from = 0  # where to resume looking for the blank line
        self._error: FramingError | None = None

    @property
    def failed(self) -> FramingError | None:
        """The error that stopped the framer, if any."""
        return self._error

    @property
    def buffered(self) -> int:
        """Bytes held waiting for the rest of a message."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[FramedItem]:
        """Add bytes read from the stream; return the items they complete, in stream order."""
        if self._error is not None:
            return []
        buf = self._buf
        buf += data
        out: list[FramedItem] = []
        while buf:
            if self._need:
                if len(buf) < self._need:
                    break
                if len(buf) == self._need:  # the usual case: the read ends with the message
                    out.append(bytes(buf))
                    buf.clear()
                else:
                    out.append(bytes(buf[: self._need]))
                    del buf[: self._need]
                self._need = 0
                continue
            if buf[0] == 13:  # CR: keep-alive traffic or padding between messages
                if buf.startswith(_CRLF2):
                    out.append(PING)
                    del buf[:4]
                    continue
                if len(buf) < 4 and bytes(buf) in _PING_PREFIXES:
                    break  # maybe the start of a ping: wait for the next read
                if buf.startswith(_CRLF):
                    del buf[:2]
                    continue
            if not self._frame_headers(buf, out):
                break
        return out

    def _frame_headers(self, buf: bytearray, out: list[FramedItem]) -> bool:
        """Parse the header block at the start of ``buf``; False when more bytes are needed."""
        if buf[0] not in _TOKEN_BYTES:
            self._fail(out, FramingError(400, "Not a SIP Message"))
            return False
        end = buf.find(_CRLF2, self._scan_from)
        if end < 0:
            if len(buf) > self._max_header:
                self._fail(out, FramingError(513, "Message Too Large"))
                return False
            # the blank line may straddle reads: keep the last 3 bytes for the next search
            self._scan_from = max(0, len(buf) - 3)
            return False
        self._scan_from = 0
        header_len = end + 4
        if header_len > self._max_header:
            self._fail(out, FramingError(513, "Message Too Large"))
            return False
        match = _CONTENT_LENGTH_RE.search(buf, 0, end)
        if match is None:
            self._fail(out, FramingError(400, "Missing Content-Length", bytes(buf[:end])))
            return False
        value = match.group(1).strip(b" \t")
        again = _CONTENT_LENGTH_RE.search(buf, match.end(), end)
        if again is not None and again.group(1).strip(b" \t") != value:
            self._fail(out, FramingError(400, "Conflicting Content-Length", bytes(buf[:end])))
            return False
        if not (value.isascii() and value.isdigit()) or len(value) > _MAX_LENGTH_DIGITS:
            self._fail(out, FramingError(400, "Bad Content-Length", bytes(buf[:end])))
            return False
        total = header_len + int(value)
        if total > self._max_message:
            self._fail(out, FramingError(413, "Request Entity Too Large", bytes(buf[:end])))
            return False
        self._need = total
        return True

    def _fail(self, out: list[FramedItem], error: FramingError) -> None:
        self._error = error
        self._buf.clear()
        self._need = 0
        out.append(error)


# Headers an error response copies from the request (RFC 3261 8.2.6.2), by lower-case
# full and compact name.
_ECHOED: Final = {
    b"via": b"via",
    b"v": b"via",
    b"from": b"from",
    b"f": b"from",
    b"to": b"to",
    b"t": b"to",
    b"call-id": b"call-id",
    b"i": b"call-id",
    b"cseq": b"cseq",
}
_REQUIRED: Final = frozenset(_ECHOED.values())
_TAG_RE: Final = re.compile(rb";\s*tag\s*=", re.I)
_REQUEST_LINE_RE: Final = re.compile(rb"[A-Za-z!%*_+`'~.-]+ \S+ SIP/2\.0\Z", re.I)


def minimal_response(header_block: bytes, status: int, reason: str) -> bytes | None:
    """Build a stateless error response to the request whose header block is given.

    Returns None when the block is a response, an ACK (never answered) or lacks one of
    Via/From/To/Call-ID/CSeq: a peer could not match the answer, so silence is better.
    """
    lines = header_block.split(_CRLF)
    request_line = lines[0]
    if not _REQUEST_LINE_RE.match(request_line) or request_line[:4].upper() == b"ACK ":
        return None
    echoed: list[list[bytes]] = []  # [[canonical name, value], ...]
    current: bytes | None = None  # canonical name of the header the last line belonged to
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t"):  # folded continuation line (RFC 3261 7.3.1)
            if current is not None:
                echoed[-1][1] += b" " + line.strip()
            continue
        name, colon, value = line.partition(b":")
        current = _ECHOED.get(name.strip().lower()) if colon else None
        if current is not None:
            echoed.append([current, value.strip()])
    if {name for name, _ in echoed} != _REQUIRED:
        return None
    for header in echoed:
        if header[0] == b"to" and not _TAG_RE.search(header[1]):
            header[1] += b";tag=" + secrets.token_hex(6).encode()
    head = f"SIP/2.0 {status} {reason}".encode()
    lines = [head, *(_canonical(name) + b": " + value for name, value in echoed)]
    return _CRLF.join([*lines, b"Content-Length: 0", b"", b""])


def _canonical(name: bytes) -> bytes:
    return {b"call-id": b"Call-ID", b"cseq": b"CSeq"}.get(name) or name.capitalize()
