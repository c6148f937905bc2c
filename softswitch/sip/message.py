"""SIP messages (RFC 3261 sections 7, 8.2, 18.3, 20): parse lazily, serialise cheaply.

``parse_message`` splits only the start line and the header lines into
``(canonical_name, value)`` pairs; structured views (``vias``, ``from_``, ``cseq``, ``ruri``,
...) are parsed on first access and cached. An unmodified message's ``to_bytes()`` is the
bytes it was parsed from, so forwarding or echoing costs nothing.

Everything that reads untrusted text raises ``SipParseError`` (never anything else): the
parser itself, and every structured property of a parsed message (status 400).

Over 600 lines because it is the lazy message parser (RFC 3261 7 and RFC 4475 cases),
the message classes it builds and the request and response builders, which share its
internals (raw bytes kept, header offsets).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from softswitch.sip.entropy import random_bytes
from softswitch.sip.headers import (
    _CANON,
    LIST_HEADERS,
    NameAddr,
    Via,
    canonical_name,
    is_token,
    parse_cseq,
    parse_name_addr,
    parse_name_addrs,
    parse_uint,
    parse_via,
    split_comma_list,
)
from softswitch.sip.uri import (
    SUPPORTED_SCHEMES,
    SipParseError,
    SipUri,
    format_host_port,
    parse_uri,
)

__all__ = [
    "MAX_HEADERS",
    "MAX_HEADER_LINE",
    "MAX_LINES",
    "MAX_MESSAGE_SIZE",
    "REASON_PHRASES",
    "NameAddr",
    "SipMessage",
    "SipParseError",
    "SipRequest",
    "SipResponse",
    "SipUri",
    "Via",
    "check_request",
    "contact_uri",
    "make_cancel",
    "make_request",
    "make_response",
    "new_branch",
    "new_call_id",
    "new_tag",
    "parse_message",
    "via_value",
]

MAX_MESSAGE_SIZE: Final = 65535  # whole message; above: 413 (body too big) or 513 (headers)
MAX_HEADER_LINE: Final = 8192  # one header after unfolding; above: 513
MAX_HEADERS: Final = 256  # header fields after unfolding; above: 513
MAX_LINES: Final = 1024  # raw lines including continuations; above: 513
MAX_CSEQ: Final = 2**31 - 1  # RFC 3261 8.1.1.5: the sequence number is below 2**31
MAX_EXPIRES: Final = 2**32 - 1  # RFC 3261 20.19; larger values are read as this

REASON_PHRASES: Final[dict[int, str]] = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    199: "Early Dialog Terminated",
    200: "OK",
    202: "Accepted",
    204: "No Notification",
    300: "Multiple Choices",
    301: "Moved Permanently",
    302: "Moved Temporarily",
    305: "Use Proxy",
    380: "Alternative Service",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    410: "Gone",
    412: "Conditional Request Failed",
    413: "Request Entity Too Large",
    414: "Request-URI Too Long",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    417: "Unknown Resource-Priority",
    420: "Bad Extension",
    421: "Extension Required",
    422: "Session Interval Too Small",
    423: "Interval Too Brief",
    428: "Use Identity Header",
    429: "Provide Referrer Identity",
    433: "Anonymity Disallowed",
    436: "Bad Identity-Info",
    437: "Unsupported Certificate",
    438: "Invalid Identity Header",
    439: "First Hop Lacks Outbound Support",
    440: "Max-Breadth Exceeded",
    469: "Bad Info Package",
    470: "Consent Needed",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    484: "Address Incomplete",
    485: "Ambiguous",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    489: "Bad Event",
    491: "Request Pending",
    493: "Undecipherable",
    494: "Security Agreement Required",
    500: "Server Internal Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    513: "Message Too Large",
    555: "Push Notification Service Not Supported",
    580: "Precondition Failure",
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
    607: "Unwanted",
    608: "Rejected",
}

_VIA: Final = _CANON["Via"]
_FROM: Final = _CANON["From"]
_TO: Final = _CANON["To"]
_CALL_ID: Final = _CANON["Call-ID"]
_CSEQ: Final = _CANON["CSeq"]
_CONTACT: Final = _CANON["Contact"]
_CONTENT_LENGTH: Final = _CANON["Content-Length"]
_MAX_FORWARDS: Final = _CANON["Max-Forwards"]
_EXPIRES: Final = _CANON["Expires"]
_ROUTE: Final = _CANON["Route"]
_RECORD_ROUTE: Final = _CANON["Record-Route"]

_UNSET: Any = object()
_HEADER_CACHES: Final = {
    _VIA: ("_vias", "_top_via"),
    _FROM: ("_from",),
    _TO: ("_to",),
    _CSEQ: ("_cseq",),
    _CONTACT: ("_contacts",),
    _ROUTE: ("_routes",),
    _RECORD_ROUTE: ("_record_routes",),
}
_CACHES: Final = (
    "_vias",
    "_top_via",
    "_from",
    "_to",
    "_cseq",
    "_contacts",
    "_routes",
    "_record_routes",
    "_ruri",
)


def _header_name(name: str) -> str:
    canon = _CANON.get(name)
    if canon is not None:
        return canon
    canon = canonical_name(name)
    if not is_token(canon):
        raise ValueError(f"invalid header name {name!r}")
    return canon


def _check_value(value: str) -> str:
    # A CR or LF from application code would let it inject headers.
    if "\r" in value or "\n" in value:
        raise ValueError("header value contains CR or LF")
    return value


def _uint_value(text: str, canon: str) -> int:
    # Plain digits (the usual case) are exactly what parse_uint would return.
    if text.isdigit() and len(text) <= 40 and text.isascii():
        return int(text)
    return parse_uint(text, f"{canon} header")


def _relabel(exc: Exception, what: str) -> SipParseError:
    status = exc.status if isinstance(exc, SipParseError) else 400
    return SipParseError(status, f"Bad {what} header")


class SipMessage:
    """Common part of requests and responses.

    ``headers`` is the live ``[(canonical_name, value), ...]`` list in wire order; touching
    it counts as a modification (``to_bytes`` then re-serialises and the structured views
    are re-parsed). Structured views are snapshots: change a header with ``set``/``add``/
    ``remove``/``set_top_via``. Names given to ``get``/``set``/... may be in any case or
    compact form.
    """

    is_request: bool = False
    _raw: bytes | None
    _version: str
    _headers: list[tuple[str, str]]
    _body: bytes
    # Structured-view caches: _UNSET until first read.
    _vias: Any
    _top_via: Any
    _from: Any
    _to: Any
    _cseq: Any
    _contacts: Any
    _routes: Any
    _record_routes: Any
    _ruri: Any

    def __init__(
        self,
        headers: Iterable[tuple[str, str] | list[str]] = (),
        body: bytes = b"",
        version: str = "SIP/2.0",
    ) -> None:
        self._raw = None
        self._headers = [(_header_name(n), _check_value(v)) for n, v in headers] if headers else []
        self._body = bytes(body) if type(body) is not bytes else body
        self._version = version
        self._vias = self._top_via = self._from = self._to = self._cseq = _UNSET
        self._contacts = self._routes = self._record_routes = self._ruri = _UNSET

    # -------------------------------------------------------------- modification tracking

    def invalidate(self) -> None:
        """Forget the wire form and every parsed view: call it after changing the list
        returned by ``headers`` if you kept it around before changing it."""
        self._touch()

    def _touch(self, canon: str | None = None) -> None:
        """Forget the wire form and the parsed views of header ``canon`` (all if None), so
        that changing one header does not make the others parse again."""
        self._raw = None
        for name in _CACHES if canon is None else _HEADER_CACHES.get(canon, ()):
            setattr(self, name, _UNSET)

    @property
    def modified(self) -> bool:
        """True once ``to_bytes`` can no longer hand back the bytes as received."""
        return self._raw is None

    @property
    def headers(self) -> list[tuple[str, str]]:
        self._touch()
        return self._headers

    @headers.setter
    def headers(self, value: Iterable[tuple[str, str] | list[str]]) -> None:
        self._touch()
        self._headers = [(name, text) for name, text in value]

    @property
    def body(self) -> bytes:
        return self._body

    @body.setter
    def body(self, value: bytes) -> None:
        self._raw = None
        self._body = bytes(value)

    @property
    def version(self) -> str:
        return self._version

    @version.setter
    def version(self, value: str) -> None:
        self._raw = None
        self._version = value

    # ------------------------------------------------------------------- header access

    def _first(self, canon: str) -> str | None:
        # A linear scan beats building an index for the dozen headers of a typical message.
        for name, value in self._headers:
            if name == canon:
                return value
        return None

    def _values(self, canon: str) -> list[str]:
        return [value for name, value in self._headers if name == canon]

    def _matcher(self, name: str) -> tuple[str, bool]:
        canon = _CANON.get(name) or canonical_name(name)
        return (canon, True) if canon in _CANON else (canon.lower(), False)

    def header_items(self) -> list[tuple[str, str]]:
        """A read-only copy of the header list (does not count as a modification)."""
        return [(name, value) for name, value in self._headers]

    def get(self, name: str) -> str | None:
        """Value of the first header called ``name``, or None."""
        canon = _CANON.get(name)
        if canon is not None:  # the usual case, inlined: one dict lookup and a scan
            for hname, value in self._headers:
                if hname == canon:
                    return value
            return None
        key, known = self._matcher(name)
        if known:
            return self._first(key)
        for hname, value in self._headers:
            if hname.lower() == key:
                return value
        return None

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name``; comma-separated list headers are split (quote and
        ``<>`` aware) and empty elements dropped."""
        key = _CANON.get(name)
        if key is None:
            key, known = self._matcher(name)
            if not known:
                return [value for hname, value in self._headers if hname.lower() == key]
        values = [value for hname, value in self._headers if hname == key]
        if values and key in LIST_HEADERS:
            return [item for value in values for item in split_comma_list(value) if item]
        return values

    def count(self, name: str) -> int:
        """Number of header fields (lines) called ``name``."""
        key, known = self._matcher(name)
        return sum(
            1 for hname, _ in self._headers if ((hname == key) if known else (hname.lower() == key))
        )

    def set(self, name: str, value: str) -> None:
        """Replace every ``name`` header by one with ``value`` (at the first one's place)."""
        canon = _header_name(name)
        _check_value(value)
        key, known = self._matcher(canon)
        out: list[tuple[str, str]] = []
        placed = False
        for header in self._headers:
            if (header[0] == key) if known else (header[0].lower() == key):
                if not placed:
                    out.append((canon, value))
                    placed = True
            else:
                out.append(header)
        if not placed:
            out.append((canon, value))
        self._headers = out
        self._touch(canon)

    def add(self, name: str, value: str, first: bool = False) -> None:
        """Add a header: before the existing ones of that name when ``first`` (a new top
        Via), else after the last one; at the end (start when ``first``) if none."""
        canon = _header_name(name)
        _check_value(value)
        headers = self._headers
        if canon in _CANON:
            key, names = canon, [h[0] for h in headers]
        else:  # unknown names compare case-insensitively
            key, names = canon.lower(), [h[0].lower() for h in headers]
        if key not in names:
            index = 0 if first else len(headers)
        elif first:
            index = names.index(key)
        else:
            index = len(names) - names[::-1].index(key)
        headers.insert(index, (canon, value))
        self._touch(canon)

    def remove(self, name: str) -> None:
        """Remove every ``name`` header."""
        key, known = self._matcher(name)
        self._headers = [
            h for h in self._headers if not ((h[0] == key) if known else (h[0].lower() == key))
        ]
        self._touch(key if known else None)

    # --------------------------------------------------------------------------- Via

    @property
    def vias(self) -> list[Via]:
        vias = self._vias
        if vias is _UNSET:
            try:
                vias = [
                    parse_via(item)
                    for value in self._values(_VIA)
                    for item in (split_comma_list(value) if "," in value else (value,))
                ]
            except (SipParseError, ValueError, IndexError) as exc:
                raise _relabel(exc, "Via") from None
            self._vias = vias
        return vias

    @property
    def top_via(self) -> Via | None:
        via = self._top_via
        if via is _UNSET:
            vias = self._vias
            if vias is not _UNSET:
                via = vias[0] if vias else None
            else:
                via = None
                for name, value in self._headers:
                    if name == "Via":
                        try:
                            if "," in value:
                                value = split_comma_list(value)[0]
                            via = parse_via(value)
                        except (SipParseError, ValueError, IndexError) as exc:
                            raise _relabel(exc, "Via") from None
                        break
            self._top_via = via
        return via

    def set_top_via(self, via: Via) -> None:
        """Rewrite the top Via (e.g. after adding received/rport); adds one if none."""
        headers = self._headers
        for index, (name, value) in enumerate(headers):
            if name == _VIA:
                if "," in value:
                    items = split_comma_list(value)
                    items[0] = str(via)
                    headers[index] = (_VIA, ", ".join(items))
                else:
                    headers[index] = (_VIA, str(via))
                self._touch(_VIA)
                return
        self.add(_VIA, str(via), first=True)

    def remove_top_via(self) -> Via | None:
        """Remove the top Via and return it (None if there was none)."""
        top = self.top_via
        headers = self._headers
        for index, (name, value) in enumerate(headers):
            if name == _VIA:
                items = split_comma_list(value)
                if len(items) > 1:
                    headers[index] = (_VIA, ", ".join(items[1:]))
                else:
                    del headers[index]
                self._touch(_VIA)
                break
        return top

    # ----------------------------------------------------------------- other headers

    @property
    def call_id(self) -> str | None:
        for name, value in self._headers:
            if name == "Call-ID":
                return value
        return None

    @property
    def cseq(self) -> tuple[int, str] | None:
        """(number, METHOD)."""
        cseq = self._cseq
        if cseq is _UNSET:
            for name, value in self._headers:
                if name == "CSeq":
                    try:
                        cseq = parse_cseq(value)
                    except (SipParseError, ValueError) as exc:
                        raise _relabel(exc, "CSeq") from None
                    break
            else:
                cseq = None
            self._cseq = cseq
        return cseq

    @property
    def from_(self) -> NameAddr | None:
        addr = self._from
        if addr is _UNSET:
            addr = None
            for name, value in self._headers:
                if name == "From":
                    try:
                        addr = parse_name_addr(value)
                    except (SipParseError, ValueError, IndexError) as exc:
                        raise _relabel(exc, "From") from None
                    break
            self._from = addr
        return addr

    @property
    def to(self) -> NameAddr | None:
        addr = self._to
        if addr is _UNSET:
            addr = None
            for name, value in self._headers:
                if name == "To":
                    try:
                        addr = parse_name_addr(value)
                    except (SipParseError, ValueError, IndexError) as exc:
                        raise _relabel(exc, "To") from None
                    break
            self._to = addr
        return addr

    @property
    def to_tag(self) -> str | None:
        """The To header's tag. A plain header (no quoted display name, the usual case) is
        read without parsing the whole name-addr: every response a call receives and sends
        needs its tag, few need the rest."""
        addr = self._to
        if addr is not _UNSET:
            return addr.tag if addr is not None else None
        value: str | None = None
        for name, text in self._headers:
            if name == "To":
                value = text
                break
        if value is None:
            return None
        close = value.rfind(">")
        if '"' in value or (close < 0 and "<" in value):
            to = self.to  # the whole parse (quoted names, or an error to raise)
            return to.tag if to is not None else None
        params = value[close + 1 :] if close >= 0 else value.partition(";")[2]
        tag: str | None = None
        for param in params.split(";"):
            name, eq, text = param.partition("=")
            if eq and name.strip().lower() == "tag":
                tag = text.strip() or None
        return tag

    def _name_addr_list(self, canon: str, allow_star: bool = False) -> list[NameAddr]:
        try:
            values = self._values(canon)
            if len(values) == 1:
                return parse_name_addrs(values[0], allow_star)
            return [item for value in values for item in parse_name_addrs(value, allow_star)]
        except (SipParseError, ValueError, IndexError) as exc:
            raise _relabel(exc, canon) from None

    @property
    def contacts(self) -> list[NameAddr]:
        """Every Contact value; ``Contact: *`` gives a NameAddr with ``is_star``."""
        value = self._contacts
        if value is _UNSET:
            value = self._contacts = self._name_addr_list(_CONTACT, allow_star=True)
        return value

    @property
    def routes(self) -> list[NameAddr]:
        value = self._routes
        if value is _UNSET:
            value = self._routes = self._name_addr_list(_ROUTE)
        return value

    @property
    def record_routes(self) -> list[NameAddr]:
        value = self._record_routes
        if value is _UNSET:
            value = self._record_routes = self._name_addr_list(_RECORD_ROUTE)
        return value

    def _uint(self, canon: str) -> int | None:
        for name, value in self._headers:
            if name == canon:
                return _uint_value(value, canon)
        return None

    @property
    def content_length(self) -> int | None:
        return self._uint(_CONTENT_LENGTH)

    @property
    def max_forwards(self) -> int | None:
        return self._uint(_MAX_FORWARDS)

    @property
    def expires(self) -> int | None:
        """Expires in seconds; values beyond 2**32-1 read as 2**32-1 (RFC 4475 3.1.2.9)."""
        value = self._uint(_EXPIRES)
        return None if value is None else min(value, MAX_EXPIRES)

    # ------------------------------------------------------------------- serialising

    def _start_line(self) -> str:
        raise NotImplementedError

    def to_bytes(self) -> bytes:
        """The wire form: the bytes as received while unmodified, else a fresh serialisation
        with Content-Length set to len(body) (cached until the next modification)."""
        raw = self._raw
        if raw is not None:
            return raw
        body = self._body
        parts = [self._start_line()]
        length_done = False
        for name, value in self._headers:
            if name == _CONTENT_LENGTH:
                if length_done:
                    continue
                length_done = True
                value = str(len(body))
            parts.append(f"{name}: {value}")
        if not length_done:
            parts.append(f"Content-Length: {len(body)}")
        parts += ("", "")
        raw = "\r\n".join(parts).encode("utf-8", "surrogateescape") + body
        self._raw = raw
        return raw

    def __bytes__(self) -> bytes:
        return self.to_bytes()


class SipRequest(SipMessage):
    """A request: ``method``, ``uri`` (text), ``ruri`` (parsed on first access)."""

    is_request = True
    _method: str
    _uri: str

    def __init__(
        self,
        method: str,
        uri: str | SipUri,
        headers: Iterable[tuple[str, str] | list[str]] = (),
        body: bytes = b"",
        version: str = "SIP/2.0",
    ) -> None:
        super().__init__(headers, body, version)
        if not is_token(method):
            raise ValueError(f"invalid method {method!r}")
        self._method = method
        self._uri = str(uri)
        if isinstance(uri, SipUri):
            self._ruri = uri

    @property
    def method(self) -> str:
        return self._method

    @method.setter
    def method(self, value: str) -> None:
        if not is_token(value):
            raise ValueError(f"invalid method {value!r}")
        self._raw = None
        self._method = value

    @property
    def uri(self) -> str:
        """The Request-URI as text."""
        return self._uri

    @uri.setter
    def uri(self, value: str) -> None:
        self._raw = None
        self._ruri = _UNSET
        self._uri = value

    @property
    def ruri(self) -> SipUri:
        """The parsed Request-URI (SipParseError 400 when malformed)."""
        ruri = self._ruri
        if ruri is _UNSET:
            try:
                ruri = parse_uri(self._uri)
            except (SipParseError, ValueError) as exc:
                raise SipParseError(
                    exc.status if isinstance(exc, SipParseError) else 400, "Bad Request-URI"
                ) from None
            self._ruri = ruri
        return ruri

    @ruri.setter
    def ruri(self, value: SipUri) -> None:
        self._raw = None
        self._uri = str(value)
        self._ruri = value

    def _start_line(self) -> str:
        return f"{self._method} {self._uri} {self._version}"

    def __repr__(self) -> str:
        return f"<SipRequest {self._method} {self._uri}>"


class SipResponse(SipMessage):
    """A response: ``status`` and ``reason``."""

    _status: int
    _reason: str

    def __init__(
        self,
        status: int,
        reason: str | None = None,
        headers: Iterable[tuple[str, str] | list[str]] = (),
        body: bytes = b"",
        version: str = "SIP/2.0",
    ) -> None:
        super().__init__(headers, body, version)
        if not 100 <= status <= 699:
            raise ValueError(f"invalid status {status}")
        self._status = status
        self._reason = _check_value(
            reason if reason is not None else REASON_PHRASES.get(status, "Unknown")
        )

    @property
    def status(self) -> int:
        return self._status

    @status.setter
    def status(self, value: int) -> None:
        self._raw = None
        self._status = value

    @property
    def reason(self) -> str:
        return self._reason

    @reason.setter
    def reason(self, value: str) -> None:
        self._raw = None
        self._reason = _check_value(value)

    def _start_line(self) -> str:
        return f"{self._version} {self._status} {self._reason}"

    def __repr__(self) -> str:
        return f"<SipResponse {self._status} {self._reason}>"


# ------------------------------------------------------------------------------ parsing


def parse_message(
    data: bytes, *, datagram: bool = True, max_size: int = MAX_MESSAGE_SIZE
) -> SipRequest | SipResponse:
    """Parse one SIP message.

    ``datagram`` (UDP): Content-Length may be absent (the body is the rest), a larger value
    than what arrived is an error, bytes beyond it are discarded (RFC 3261 18.3). Otherwise
    (bytes framed off a stream) Content-Length is mandatory. Raises SipParseError only:
    ``message`` is the partial message when the start line could be read, else None.
    """
    # One function on purpose: this is the hot path, and the try costs nothing in 3.11.
    try:
        if type(data) is not bytes:
            data = bytes(data)
        size = len(data)
        if size > max_size:
            _too_large(data, max_size)
        if data[:1] in (b"\r", b"\n"):  # RFC 3261 7.5: CRLFs before the start line
            data = data.lstrip(b"\r\n")
            size = len(data)
        end = data.find(b"\r\n\r\n")
        if end >= 0:
            body_start = end + 4
        else:
            end = data.find(b"\n\n")
            body_start = end + 2
            if end < 0:  # no blank line: the datagram is all headers (read liberally)
                end = body_start = size
        head = data[:end].decode("utf-8", "surrogateescape")
        # Split on LF alone: bare-LF line ends are read liberally, and the CR of a CRLF is
        # trailing whitespace that the value strip removes anyway.
        lines = head.split("\n")
        if end == size and not lines[-1].strip():
            lines.pop()
            if not lines:
                raise SipParseError(400, "Empty message")

        # ---- start line (trailing SP read liberally: RFC 4475 trws)
        first = lines[0].rstrip()
        msg: SipRequest | SipResponse
        error: tuple[int, str] | None = None
        lead = first[:4]
        if lead == "SIP/" or (lead[:1] in ("s", "S") and lead.upper() == "SIP/"):
            version, _, rest = first.partition(" ")
            code, _, reason = rest.partition(" ")
            if (
                len(code) != 3
                or not (code.isascii() and code.isdigit())
                or not "100" <= code <= "699"
            ):
                raise SipParseError(400, "Bad Status-Line")
            response = SipResponse(int(code))
            response._reason = reason
            msg = response
        else:
            method, _, rest = first.partition(" ")
            uri, sp, version = rest.rpartition(" ")
            if not sp or (version != "SIP/2.0" and version[:4].upper() != "SIP/"):
                raise SipParseError(400, "Bad Request-Line")
            try:
                request = SipRequest(method, "")  # checks that the method is a token
            except ValueError:
                raise SipParseError(400, "Bad Request-Line") from None
            if uri[:1] == " " or uri[-1:] == " ":
                uri = uri.strip()  # RFC 4475 lwsstart: extra SP, read liberally
                if not uri:
                    error = (400, "Bad Request-Line")
            request._uri = uri
            msg = request
        if version != "SIP/2.0":
            version = version.upper()
            msg._version = version

        # ---- header lines; continuation lines (leading SP/HT, RFC 3261 7.3.1) never match
        # a header name, so folding is handled off the fast path
        if len(lines) > MAX_LINES or (  # + 1: the lines still end in the CR of their CRLF
            end > MAX_HEADER_LINE and max(map(len, lines)) > MAX_HEADER_LINE + 1
        ):
            error = error or (513, "Message Too Large")
        headers: list[tuple[str, str]] = []
        append = headers.append
        canon_get = _CANON.get
        content_length = _CONTENT_LENGTH
        length_text: str | None = None
        folds: dict[int, list[str]] | None = None
        lines_iter = iter(lines)
        next(lines_iter)
        for line in lines_iter:
            name, sep, value = line.partition(":")
            canon = canon_get(name)
            if canon is None or not sep:
                if line[:1] in (" ", "\t"):
                    if not headers:
                        error = error or (400, "Bad header folding")
                        continue
                    if folds is None:
                        folds = {}
                    folds.setdefault(len(headers) - 1, [headers[-1][1]]).append(line.strip())
                    continue
                if sep:
                    canon = _slow_name(name)
                if canon is None or not sep:
                    error = error or (400, "Bad header line")
                    continue
            value = value.strip()
            if canon is content_length:
                if length_text is None:
                    length_text = value
                elif value != length_text:
                    error = error or (400, "Conflicting Content-Length")
            append((canon, value))
        if folds is not None:
            length_text, fold_error = _apply_folds(headers, folds)
            error = error or fold_error
        if len(headers) > MAX_HEADERS:
            error = error or (513, "Message Too Large")
        msg._headers = headers

        # ---- body (RFC 3261 18.3)
        if end == size:
            msg._body = b""  # raw stays None: the original lacks its blank line
        elif length_text is None:
            msg._body = data[body_start:]
            if datagram:
                msg._raw = data
            else:
                error = error or (400, "Missing Content-Length")
        else:
            available = size - body_start
            if length_text.isdigit() and len(length_text) <= 10 and length_text.isascii():
                length = int(length_text)
            else:
                length = -1
                error = error or (400, "Bad Content-Length")
            if length == available:
                msg._body = data[body_start:]
                msg._raw = data
            elif length > available:
                error = error or (400, "Content-Length exceeds message")
                msg._body = data[body_start:]
            elif length >= 0:
                stop = body_start + length
                msg._body = data[body_start:stop]
                msg._raw = data[:stop]
                if not datagram:
                    error = error or (400, "Bytes after body")
            else:
                msg._body = data[body_start:]
        if error is not None:
            msg._raw = None
            raise SipParseError(error[0], error[1], msg)
        return msg
    except SipParseError:
        raise
    except Exception as exc:  # a safety net: untrusted bytes must never escape otherwise
        raise SipParseError(400, "Bad Request") from exc


def _slow_name(name: str) -> str | None:
    # Names with LWS before the colon ("TO :"), odd case, or unknown names.
    name = name.rstrip(" \t")
    canon = _CANON.get(name) or _CANON.get(name.lower())
    if canon is not None:
        return canon
    return name if is_token(name) else None


def _apply_folds(
    headers: list[tuple[str, str]], folds: dict[int, list[str]]
) -> tuple[str | None, tuple[int, str] | None]:
    """Join continuation lines to their header with one SP; re-derive Content-Length."""
    error: tuple[int, str] | None = None
    for index, parts in folds.items():
        value = " ".join([part for part in parts if part])
        headers[index] = (headers[index][0], value)
        if len(value) > MAX_HEADER_LINE:
            error = (513, "Message Too Large")
    lengths = {value for name, value in headers if name is _CONTENT_LENGTH}
    if len(lengths) > 1:
        error = error or (400, "Conflicting Content-Length")
    return (lengths.pop() if lengths else None), error


def _too_large(data: bytes, max_size: int) -> None:
    # Parse the header block alone, when it fits, so the server can answer.
    end = data.find(b"\r\n\r\n", 0, max_size)
    if end < 0:
        raise SipParseError(513, "Message Too Large")
    try:
        partial: SipMessage | None = parse_message(data[: end + 4], max_size=max_size)
    except SipParseError as exc:
        partial = exc.message if isinstance(exc.message, SipMessage) else None
    if partial is not None:
        partial._raw = None
    raise SipParseError(413, "Request Entity Too Large", partial)


# ---------------------------------------------------------------------------- responses


def make_response(
    request: SipRequest,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
) -> SipResponse:
    """A response to ``request`` per RFC 3261 8.2.6.2: every Via, and the From, To,
    Call-ID and CSeq text exactly as received; ``to_tag`` is added when the To has none.
    Works on the partial message of a SipParseError too (malformed To: copied as is)."""
    if not 100 <= status <= 699:
        raise ValueError(f"invalid status {status}")
    # One pass over the request's headers: every Via, and the first From/To/Call-ID/CSeq.
    copied: list[tuple[str, str]] = []
    found: dict[str, str] = {}
    for name, value in request._headers:
        if name == _VIA:
            copied.append((_VIA, value))
        elif name in _ECHOED and name not in found:
            found[name] = value
    for canon in _ECHOED:
        echoed = found.get(canon)
        if echoed is None:
            continue
        if canon is _TO and to_tag is not None:
            try:
                to = request.to
                has_tag = to is not None and to.tag is not None
            except SipParseError:
                has_tag = True  # never touch a To we cannot read
            if not has_tag:
                echoed = f"{echoed};tag={to_tag}"
        copied.append((canon, echoed))
    for name, value in headers:
        copied.append((_header_name(name), _check_value(value)))
    # The headers are set afterwards: the constructor would re-check the names copied above.
    response = SipResponse(status, reason, body=body)
    response._headers = copied
    return response


_ECHOED: Final = (_FROM, _TO, _CALL_ID, _CSEQ)


# ----------------------------------------------------------------------------- requests


def via_value(transport: str, host: str, port: int, *, rport: bool = True) -> str:
    """Our Via value without its branch: ``SIP/2.0/UDP 192.0.2.1:5060;rport`` (IPv6 hosts
    in brackets). ``rport`` (RFC 3581) asks for responses where the request came from,
    which keeps the switch reachable behind NAT."""
    text = f"SIP/2.0/{transport.upper()} {format_host_port(host, port)}"
    return f"{text};rport" if rport else text


def make_cancel(invite: SipRequest, headers: Iterable[tuple[str, str]] = ()) -> SipRequest:
    """The CANCEL of a client INVITE (RFC 3261 9.1): its Request-URI, top Via (same branch),
    From, To (no tag of the answer's), Call-ID and Route, CSeq number with method CANCEL."""
    cseq = invite.cseq
    lines: list[tuple[str, str]] = [
        ("Via", invite.get_all("Via")[0]),
        ("Max-Forwards", "70"),
        ("From", invite.get("From") or ""),
        ("To", invite.get("To") or ""),
        ("Call-ID", invite.call_id or ""),
        ("CSeq", f"{cseq[0] if cseq is not None else 1} CANCEL"),
    ]
    lines.extend(("Route", route) for route in invite.get_all("Route"))
    lines.extend(headers)
    return SipRequest("CANCEL", invite.uri, lines)


def contact_uri(host: str, port: int, transport: str, user: str | None = None) -> str:
    """Our SIP URI at a local address, as Contact puts it: ``sip:[user@]host:port;transport=
    udp`` (IPv6 hosts in brackets)."""
    userinfo = f"{user}@" if user else ""
    return f"sip:{userinfo}{format_host_port(host, port)};transport={transport.lower()}"


def make_request(
    method: str,
    uri: str | SipUri,
    *,
    via: str,
    from_: str,
    to: str,
    call_id: str,
    cseq: int,
    branch: str | None = None,
    max_forwards: int = 70,
    contact: str | None = None,
    routes: Iterable[str] = (),
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    content_type: str | None = None,
) -> SipRequest:
    """A request a UAC sends (RFC 3261 8.1.1), the counterpart of :func:`make_response`.

    ``via`` is our Via value without the branch (see :func:`via_value`); ``branch`` is
    added, a new one unless given (a CANCEL or ACK for a non-2xx reuses its INVITE's).
    ``from_``/``to`` are the whole header values, tags included. The headers come in the
    order Via, Max-Forwards, From, To, Call-ID, CSeq, Route (``routes``, in sending
    order), Contact, ``headers``, Content-Type (only with a body); Content-Length is
    written by serialisation. Raises ValueError for a value with CR/LF or a bad method."""
    lines: list[tuple[str, str]] = [
        ("Via", f"{via};branch={branch or new_branch()}"),
        ("Max-Forwards", str(max_forwards)),
        ("From", from_),
        ("To", to),
        ("Call-ID", call_id),
        ("CSeq", f"{cseq} {method}"),
    ]
    lines.extend(("Route", route) for route in routes)
    if contact is not None:
        lines.append(("Contact", contact))
    lines.extend(headers)
    if body and content_type:
        lines.append(("Content-Type", content_type))
    return SipRequest(method, uri, lines, body)


# ---------------------------------------------------------------------- request checks

_MANDATORY: Final = (_VIA, _TO, _FROM, _CALL_ID, _CSEQ)
_SINGLE: Final = (_TO, _FROM, _CALL_ID, _CSEQ, _MAX_FORWARDS)


def check_request(
    request: SipRequest, *, schemes: frozenset[str] = SUPPORTED_SCHEMES
) -> tuple[int, str] | None:
    """The checks a server makes before handing a request to the transaction layer
    (RFC 3261 8.2, 16.3); returns the (status, reason) to answer, or None if it is fine.

    505 for a SIP version other than 2.0; 400 for a missing or repeated To/From/Call-ID/
    CSeq (Via missing too), a CSeq whose method differs from the request's or whose number
    is >= 2**31, an unreadable Via/From/To/Contact/Max-Forwards/Expires/Content-Length,
    a body shorter than Content-Length, a malformed Request-URI or one with headers; 416 for
    a Request-URI scheme outside ``schemes``. Max-Forwards 0 (483), Require (420) and
    unknown methods (405/501) are left to the server.
    """
    try:
        return _check(request, schemes)
    except SipParseError as exc:
        return exc.status, exc.reason
    except Exception:  # a safety net: a check must answer, never raise
        return 400, "Bad Request"


_NUMERIC: Final = (_MAX_FORWARDS, _EXPIRES, _CONTENT_LENGTH)


def _check(request: SipRequest, schemes: frozenset[str]) -> tuple[int, str] | None:
    if request.version != "SIP/2.0":
        return 505, "Version Not Supported"
    # The header names once, as a list: presence, counts and positions are then C-level
    # list operations instead of Python loops over the header list.
    headers = request._headers
    names = [header[0] for header in headers]
    for name in _MANDATORY:
        if name not in names:
            return 400, f"Missing {name} header"
    for name in _SINGLE:
        if names.count(name) > 1:
            return 400, f"Multiple {name} headers"
    cseq = request.cseq
    assert cseq is not None
    if cseq[0] > MAX_CSEQ:
        return 400, "Bad CSeq header"
    if cseq[1] != request.method:
        return 400, "CSeq method does not match"
    call_id = request.call_id or ""
    if not call_id or len(call_id.split()) != 1:
        return 400, "Bad Call-ID header"
    if not request.vias:
        return 400, "Missing Via header"
    for canon, addr in ((_FROM, request.from_), (_TO, request.to)):
        try:
            assert addr is not None
            addr.uri  # noqa: B018 - parse it to validate
        except (SipParseError, ValueError):
            return 400, f"Bad {canon} header"
    for contact in request.contacts:
        if not contact.is_star:
            try:
                contact.uri  # noqa: B018
            except (SipParseError, ValueError):
                return 400, "Bad Contact header"
    length: int | None = None
    for canon in _NUMERIC:  # parse the first of each to validate, as the properties would
        if canon in names:
            number = _uint_value(headers[names.index(canon)][1], canon)
            if canon is _CONTENT_LENGTH:
                length = number
    if length is not None and len(request._body) < length:
        return 400, "Body shorter than Content-Length"
    ruri = request.ruri
    if ruri.scheme not in schemes:
        return 416, "Unsupported URI Scheme"
    if ruri.headers:
        return 400, "Bad Request-URI"
    return None


# ------------------------------------------------------------------------- identifiers


def new_branch() -> str:
    """A Via branch with the RFC 3261 magic cookie and 64 random bits."""
    return "z9hG4bK" + random_bytes(8).hex()


def new_tag() -> str:
    """A From/To tag (48 random bits; RFC 3261 19.3 asks for at least 32)."""
    return random_bytes(6).hex()


def new_call_id(host: str | None = None) -> str:
    """A globally unique Call-ID (128 random bits), optionally ``@host``."""
    value = random_bytes(16).hex()
    return f"{value}@{host}" if host else value
