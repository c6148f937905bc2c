"""Header names and the structured header values of RFC 3261 section 20 / 25.1.

Every parser here raises ``SipParseError(400, ...)`` on malformed input and nothing else.
Header-parameter names are case-insensitive and stored in lower case; values keep the text
as received (quoted strings keep their quotes).

Over 600 lines because it is the grammar of the SIP headers the switch reads (RFC 3261
25.1 and extensions): name-addr, Via, CSeq, parameters and their checks, one table.
"""

from __future__ import annotations

import re

from softswitch.sip.uri import (
    COMMON_SIP_PATTERN,
    SipParseError,
    SipUri,
    common_sip_uri,
    format_host,
    parse_host_port,
    parse_uri,
)

__all__ = [
    "COMPACT_FORMS",
    "LIST_HEADERS",
    "NameAddr",
    "SipParseError",
    "Via",
    "canonical_name",
    "parse_cseq",
    "parse_name_addr",
    "parse_name_addrs",
    "parse_params",
    "parse_uint",
    "parse_via",
    "parse_vias",
    "quote_display_name",
    "split_comma_list",
]

_KNOWN_NAMES = (
    "Accept",
    "Accept-Contact",
    "Accept-Encoding",
    "Accept-Language",
    "Accept-Resource-Priority",
    "Alert-Info",
    "Allow",
    "Allow-Events",
    "Answer-Mode",
    "Authentication-Info",
    "Authorization",
    "Call-ID",
    "Call-Info",
    "Contact",
    "Content-Disposition",
    "Content-Encoding",
    "Content-ID",
    "Content-Language",
    "Content-Length",
    "Content-Type",
    "CSeq",
    "Date",
    "Diversion",
    "Error-Info",
    "Event",
    "Expires",
    "Feature-Caps",
    "Flow-Timer",
    "From",
    "Geolocation",
    "History-Info",
    "Identity",
    "Identity-Info",
    "In-Reply-To",
    "Info-Package",
    "Join",
    "Max-Breadth",
    "Max-Forwards",
    "MIME-Version",
    "Min-Expires",
    "Min-SE",
    "Organization",
    "P-Access-Network-Info",
    "P-Asserted-Identity",
    "P-Called-Party-ID",
    "P-Charging-Vector",
    "P-Preferred-Identity",
    "Path",
    "Priority",
    "Privacy",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Proxy-Require",
    "RAck",
    "Reason",
    "Record-Route",
    "Recv-Info",
    "Refer-Sub",
    "Refer-To",
    "Referred-By",
    "Reject-Contact",
    "Remote-Party-ID",
    "Replaces",
    "Reply-To",
    "Request-Disposition",
    "Require",
    "Resource-Priority",
    "Retry-After",
    "Route",
    "RSeq",
    "Security-Client",
    "Security-Server",
    "Security-Verify",
    "Server",
    "Service-Route",
    "Session-Expires",
    "Session-ID",
    "SIP-ETag",
    "SIP-If-Match",
    "Subject",
    "Subscription-State",
    "Supported",
    "Target-Dialog",
    "Timestamp",
    "To",
    "Unsupported",
    "User-Agent",
    "Via",
    "Warning",
    "WWW-Authenticate",
)

COMPACT_FORMS: dict[str, str] = {
    "a": "Accept-Contact",
    "b": "Referred-By",
    "c": "Content-Type",
    "d": "Request-Disposition",
    "e": "Content-Encoding",
    "f": "From",
    "i": "Call-ID",
    "j": "Reject-Contact",
    "k": "Supported",
    "l": "Content-Length",
    "m": "Contact",
    "n": "Identity-Info",
    "o": "Event",
    "r": "Refer-To",
    "s": "Subject",
    "t": "To",
    "u": "Allow-Events",
    "v": "Via",
    "x": "Session-Expires",
    "y": "Identity",
}

# Exact canonical spelling, lower case and compact forms (both cases) -> canonical name; the
# parser tries the name as received first, so well-behaved peers cost one dict lookup.
_CANON: dict[str, str] = {}
for _name in _KNOWN_NAMES:
    _CANON[_name] = _name
    _CANON[_name.lower()] = _name
for _short, _long in COMPACT_FORMS.items():
    _CANON[_short] = _CANON[_long]
    _CANON[_short.upper()] = _CANON[_long]
del _name, _short, _long

# Headers whose grammar is a comma-separated list (RFC 3261 7.3.1); the others (Date,
# From, Authorization, ...) may hold commas that do not separate values.
LIST_HEADERS = frozenset(
    {
        "Accept",
        "Accept-Contact",
        "Accept-Encoding",
        "Accept-Language",
        "Alert-Info",
        "Allow",
        "Allow-Events",
        "Call-Info",
        "Contact",
        "Content-Encoding",
        "Content-Language",
        "Diversion",
        "Error-Info",
        "History-Info",
        "In-Reply-To",
        "P-Asserted-Identity",
        "P-Preferred-Identity",
        "Path",
        "Proxy-Require",
        "Reason",
        "Record-Route",
        "Reject-Contact",
        "Request-Disposition",
        "Require",
        "Route",
        "Security-Client",
        "Security-Server",
        "Security-Verify",
        "Service-Route",
        "Supported",
        "Unsupported",
        "Via",
        "Warning",
    }
)

_HOSTNAME_RE = re.compile(r"[A-Za-z0-9_.\-]+\Z")
# Possessive quantifiers where the next character can never belong to the class (faster,
# same matches).
_SIMPLE_VIA_RE = re.compile(
    r"SIP/2\.0/([A-Za-z0-9]++) ([A-Za-z0-9_.\-]++)(?::([0-9]{1,5}+))?(?:;([^ \t\"]*+))?\Z"
)
# '"Alice" <sip:a@b>;tag=1', 'Bob <sip:b@c>', '<sip:c@d>': no escapes, no LWS in odd places.
_SIMPLE_NAME_ADDR_RE = re.compile(
    r'(?:"([^"\\]*)" ?|([A-Za-z0-9\-.!%*_+`\'~]+(?: [A-Za-z0-9\-.!%*_+`\'~]+)*) ?)?'
    r'<([^<>"\s]+)>(?:;([^\s"]*))?\Z'
)
# The same shape with the display-name alternative decided by the first character: the
# usual '<sip:...>;tag=...' and '"Name" <sip:...>' skip the regex's trial of the other forms.
_BARE_NAME_ADDR_RE = re.compile(r'<([^<>"\s]++)>(?:;([^\s"]*+))?\Z')
# "<sip:user@host...>;params", the usual Contact/From/To of a phone: the URI is read in the
# same match (a server's request checks read every one of them anyway).
_BARE_SIP_NAME_ADDR_RE = re.compile(rf'<({COMMON_SIP_PATTERN})>(?:;([^\s"]*+))?\Z')
_QUOTED_NAME_ADDR_RE = re.compile(r'"([^"\\]*+)" ?<([^<>"\s]++)>(?:;([^\s"]*+))?\Z')
_SWS_COLON_RE = re.compile(r"[ \t]*:[ \t]*")
_TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+\Z")
_LIST_PIECE_RE = re.compile(r'[^,"<]+|"(?:[^"\\]|\\.)*(?:"|\Z)|<[^>]*(?:>|\Z)|,', re.S)
_PARAM_PIECE_RE = re.compile(r'[^;"]+|"(?:[^"\\]|\\.)*(?:"|\Z)|;', re.S)
_QUOTED_PAIR_RE = re.compile(r"\\(.)", re.S)


def _bad(what: str) -> SipParseError:
    return SipParseError(400, f"Bad {what}")


def canonical_name(name: str) -> str:
    """Canonical spelling of a header name (compact forms expanded); unknown names are
    returned as given, minus surrounding whitespace."""
    canon = _CANON.get(name)
    if canon is not None:
        return canon
    name = name.strip()
    return _CANON.get(name) or _CANON.get(name.lower()) or name


def is_token(text: str) -> bool:
    """RFC 3261 token (method names, header names, parameter names)."""
    return (text.isascii() and text.isalnum()) or _TOKEN_RE.match(text) is not None


def _split_pieces(text: str, pattern: re.Pattern[str], delim: str) -> list[str]:
    out: list[str] = []
    current: list[str] = []
    for piece in pattern.findall(text):
        if piece == delim:
            out.append("".join(current).strip())
            current = []
        else:
            current.append(piece)
    out.append("".join(current).strip())
    return out


def split_comma_list(text: str) -> list[str]:
    """Split a comma-separated header value, aware of quoted strings and <...>.

    Elements are stripped; empty elements are kept (so callers can reject ``a,,b`` where the
    grammar forbids it); an empty value gives [].
    """
    if "," not in text:
        text = text.strip()
        return [text] if text else []
    if '"' not in text and "<" not in text:
        return [item.strip() for item in text.split(",")]
    return _split_pieces(text, _LIST_PIECE_RE, ",")


def parse_params(text: str, what: str = "header parameter") -> dict[str, str | None]:
    """Parse ``name[=value]`` items separated by ``;`` (the text after the first ``;``).

    Names are lower-cased; a name without ``=`` maps to None; quoted values keep their quotes.
    """
    if '"' in text or " " in text or "\t" in text:
        return _parse_params_slow(text, what)
    return _simple_params(text, what)


def _simple_params(text: str, what: str) -> dict[str, str | None]:
    # Text already known to hold no LWS and no quotes.
    if ";" not in text:  # the usual single tag=...
        name, eq, value = text.partition("=")
        if not (name.isalnum() and name.isascii()) and not _TOKEN_RE.match(name):
            raise _bad(what)
        if not eq:
            return {name.lower(): None}
        if not value:
            raise _bad(what)
        return {name.lower(): value}
    params: dict[str, str | None] = {}
    for item in text.split(";"):
        name, eq, value = item.partition("=")
        if not (name.isalnum() and name.isascii()) and not _TOKEN_RE.match(name):
            raise _bad(what)
        if eq:
            if not value:
                raise _bad(what)
            params[name.lower()] = value
        else:
            params[name.lower()] = None
    return params


def _parse_params_slow(text: str, what: str) -> dict[str, str | None]:
    # LWS around ";" and "=", quoted-string values (which may hold ";").
    items = text.split(";") if '"' not in text else _split_pieces(text, _PARAM_PIECE_RE, ";")
    params: dict[str, str | None] = {}
    for item in items:
        name, eq, value = item.partition("=")
        name = name.strip()
        if not name or not is_token(name):
            raise _bad(what)
        if eq:
            value = value.strip()
            if not value:
                raise _bad(what)
            if value[0] == '"':
                if len(value) < 2 or value[-1] != '"' or _quoted_end(value, 0) != len(value) - 1:
                    raise _bad(what)
            elif " " in value or "\t" in value or '"' in value:
                raise _bad(what)
            params[name.lower()] = value
        else:
            params[name.lower()] = None
    return params


def _format_params(params: dict[str, str | None]) -> str:
    # A list comprehension: str.join over a generator is markedly slower for a few items.
    return "".join([f";{k}" if v is None else f";{k}={v}" for k, v in params.items()])


def parse_uint(text: str, what: str = "number") -> int:
    """A non-negative decimal (leading zeros allowed). Absurdly long values saturate at
    10**40 instead of being converted, so range checks still see them as too large."""
    text = text.strip()
    if not text or not (text.isascii() and text.isdigit()):
        raise _bad(what)
    if len(text) > 40:
        text = text.lstrip("0") or "0"
        if len(text) > 40:
            return 10**40
    return int(text)


def parse_cseq(text: str) -> tuple[int, str]:
    """``CSeq: 4711 INVITE`` -> (4711, "INVITE")."""
    number, sp, method = text.partition(" ")
    if (
        sp
        and (number.isascii() and number.isdigit())
        and len(number) <= 10
        and method.isalpha()
        and method.isascii()
    ):
        return int(number), method
    parts = text.split()
    if len(parts) != 2 or not is_token(parts[1]):
        raise _bad("CSeq")
    return parse_uint(parts[0], "CSeq"), parts[1]


# ---------------------------------------------------------------------------------- Via


class Via:
    """One via-parm: ``SIP/2.0/UDP host:port;branch=...``.

    ``host`` has no IPv6 brackets; ``params`` maps lower-case names to values (None for a
    parameter without value, e.g. a bare ``rport``).
    """

    __slots__ = ("host", "params", "port", "protocol", "transport")

    def __init__(
        self,
        transport: str,
        host: str,
        port: int | None = None,
        params: dict[str, str | None] | None = None,
        protocol: str = "SIP/2.0",
    ) -> None:
        self.transport = transport.upper()
        self.host = host
        self.port = port
        self.params: dict[str, str | None] = params if params is not None else {}
        self.protocol = protocol

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @branch.setter
    def branch(self, value: str) -> None:
        self.params["branch"] = value

    @property
    def received(self) -> str | None:
        """The ``received`` address without IPv6 brackets (RFC 5118 4.5 allows both)."""
        value = self.params.get("received")
        if value and value[0] == "[" and value[-1] == "]":
            return value[1:-1]
        return value

    @property
    def rport(self) -> int | None:
        """The numeric ``rport`` value; None when absent or bare (test ``"rport" in params``
        to know whether the sender asked for it)."""
        value = self.params.get("rport")
        if value and value.isascii() and value.isdigit() and len(value) <= 5:
            return int(value)
        return None

    @property
    def sent_by(self) -> str:
        """``host[:port]`` as written in the Via."""
        host = format_host(self.host)
        return host if self.port is None else f"{host}:{self.port}"

    def copy(self) -> Via:
        return Via(self.transport, self.host, self.port, dict(self.params), self.protocol)

    def __str__(self) -> str:
        return f"{self.protocol}/{self.transport} {self.sent_by}{_format_params(self.params)}"

    def __repr__(self) -> str:
        return f"Via({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Via):
            return NotImplemented
        return str(self) == str(other)

    __hash__ = None  # type: ignore[assignment]


def parse_via(text: str) -> Via:
    """Parse one via-parm (LWS allowed around ``/``, ``:``, ``;`` and ``=``)."""
    match = _SIMPLE_VIA_RE.match(text)
    if match is not None:
        # The usual shape, "SIP/2.0/UDP host:port;params", without LWS games.
        transport, host, port_text, param_text = match.groups()
        port: int | None = None
        if port_text is not None:
            port = int(port_text)
            if port > 65535:
                raise _bad("Via")
        params: dict[str, str | None]
        if param_text is None:
            params = {}
        elif param_text[:7] == "branch=":
            # "branch=...[;rport]", what nearly every client sends, without the general loop
            # (the regex already excluded LWS and quotes; the value may not be empty).
            branch, semi, rest = param_text[7:].partition(";")
            if branch and not semi:
                params = {"branch": branch}
            elif branch and rest == "rport":
                params = {"branch": branch, "rport": None}
            else:
                params = _simple_params(param_text, "Via parameter")
        else:
            params = _simple_params(param_text, "Via parameter")
        return Via(transport, host, port, params)
    sent, semi, param_text = text.partition(";")
    parts = sent.split("/")
    if len(parts) != 3:
        raise _bad("Via")
    name, version, last = parts[0].strip(), parts[1].strip(), parts[2].split(None, 1)
    if len(last) != 2 or not is_token(name) or not is_token(version) or not is_token(last[0]):
        raise _bad("Via")
    sent_by = last[1].strip()
    if " " in sent_by or "\t" in sent_by:
        sent_by = _SWS_COLON_RE.sub(":", sent_by)  # sent-by = host [SWS ":" SWS port]
    host, sent_port = parse_host_port(sent_by, "Via")
    params = parse_params(param_text, "Via parameter") if semi else {}
    protocol = "SIP/2.0" if name == "SIP" and version == "2.0" else f"{name.upper()}/{version}"
    return Via(last[0], host, sent_port, params, protocol)


def parse_vias(text: str) -> list[Via]:
    """Parse a Via header value that may hold several comma-separated via-parms."""
    return (
        [parse_via(item) for item in split_comma_list(text)] if "," in text else [parse_via(text)]
    )


# ----------------------------------------------------------------------------- NameAddr


def quote_display_name(name: str) -> str:
    """A display name as a quoted-string."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


class NameAddr:
    """``"Display" <uri>;params`` (From, To, Contact, Route, Record-Route, ...).

    ``uri`` is parsed on first access (SipParseError if malformed). ``Contact: *`` is a
    NameAddr with ``is_star`` true, whose uri is an empty absolute URI that prints as ``*``.
    Until ``uri`` is first read, ``str()`` gives the URI text as received.
    """

    __slots__ = ("_parsed", "_uri", "_uri_text", "display_name", "is_star", "params")

    def __init__(
        self,
        uri: SipUri | str,
        display_name: str | None = None,
        params: dict[str, str | None] | None = None,
        is_star: bool = False,
    ) -> None:
        if isinstance(uri, SipUri):
            self._uri: SipUri | None = uri
            self._uri_text = ""
        else:
            self._uri = None
            self._uri_text = uri
        # A URI the parser already read with the name-addr, handed out by the first ``uri``.
        self._parsed: SipUri | None = None
        self.display_name = display_name
        self.params: dict[str, str | None] = params if params is not None else {}
        self.is_star = is_star

    @property
    def uri(self) -> SipUri:
        uri = self._uri
        if uri is None:
            uri = self._parsed
            if uri is None:
                uri = SipUri("", opaque="*") if self.is_star else parse_uri(self._uri_text)
            self._uri = uri
        return uri

    @uri.setter
    def uri(self, value: SipUri) -> None:
        self._uri = value

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    @tag.setter
    def tag(self, value: str | None) -> None:
        if value is None:
            self.params.pop("tag", None)
        else:
            self.params["tag"] = value

    def copy(self) -> NameAddr:
        uri = self._uri.copy() if self._uri is not None else self._uri_text
        return NameAddr(uri, self.display_name, dict(self.params), self.is_star)

    def __str__(self) -> str:
        if self.is_star:
            return "*"
        uri = str(self._uri) if self._uri is not None else self._uri_text
        display = "" if self.display_name is None else quote_display_name(self.display_name) + " "
        return f"{display}<{uri}>{_format_params(self.params)}"

    def __repr__(self) -> str:
        return f"NameAddr({str(self)!r})"


def _quoted_end(text: str, start: int) -> int:
    """Index of the quote closing the quoted-string opened at ``start``."""
    i = start + 1
    while True:
        j = text.find('"', i)
        if j < 0:
            raise _bad("quoted string")
        k = j - 1
        while k > start and text[k] == "\\":
            k -= 1
        if (j - k - 1) % 2 == 0:
            return j
        i = j + 1


def _new_name_addr(uri_text: str, display: str | None, params: dict[str, str | None]) -> NameAddr:
    return NameAddr(uri_text, display, params)


def parse_name_addr(text: str) -> NameAddr:
    """Parse name-addr or addr-spec plus header parameters.

    In the addr-spec form every ``;`` starts a header parameter (RFC 3261 20.10).
    Liberal where RFC 4475 allows: an unquoted display name may hold any characters but
    quotes (``Bell, Alexander <sip:...>``), and LWS inside ``< >`` is ignored.
    """
    first = text[:1]
    display: str | None
    parsed: SipUri | None = None
    if first == "<":
        match = _BARE_SIP_NAME_ADDR_RE.match(text)
        if match is not None:
            uri_text, scheme, user, host, port_text, uri_params, param_text = match.groups()
            parsed = common_sip_uri(scheme, user, host, port_text, uri_params)
        else:
            match = _BARE_NAME_ADDR_RE.match(text)
            if match is not None:
                uri_text, param_text = match.groups()
        display = None
    elif first == '"':
        match = _QUOTED_NAME_ADDR_RE.match(text)
        if match is not None:
            display, uri_text, param_text = match.groups()
    else:
        match = _SIMPLE_NAME_ADDR_RE.match(text)
        if match is not None:
            quoted, unquoted, uri_text, param_text = match.groups()
            display = quoted if quoted is not None else (unquoted or None)
    if match is not None:
        params: dict[str, str | None]
        if param_text is None:
            params = {}
        elif param_text[:4] == "tag=" and ";" not in param_text and len(param_text) > 4:
            params = {"tag": param_text[4:]}  # the usual lone tag, as _simple_params
        else:
            params = _simple_params(param_text, "header parameter")
        addr = NameAddr(uri_text, display, params)
        addr._parsed = parsed
        return addr
    text = text.strip()
    if not text:
        raise _bad("address")
    if text[0] == '"':
        end = text.find('"', 1)
        if end < 0 or text[end - 1] == "\\":
            end = _quoted_end(text, 0)
        display = text[1:end]
        if "\\" in display:
            display = _QUOTED_PAIR_RE.sub(r"\1", display)
        lt = text.find("<", end + 1)
        if lt < 0 or (lt > end + 1 and text[end + 1 : lt].strip()):
            raise _bad("address")
    else:
        lt = text.find("<")
        if lt < 0 or text.find(";", 0, lt) >= 0:
            uri_text, semi_sep, param_text = text.partition(";")
            uri_text = uri_text.rstrip()
            if not uri_text or ">" in uri_text:
                raise _bad("address")
            return _new_name_addr(uri_text, None, parse_params(param_text) if semi_sep else {})
        if lt:
            display = text[:lt].rstrip()
            if '"' in display or ">" in display:
                raise _bad("display name")
        else:
            display = None
    gt = text.find(">", lt + 1)
    if gt < 0:
        raise _bad("address")
    uri_text = text[lt + 1 : gt].strip()
    if not uri_text:
        raise _bad("address")
    if gt + 1 == len(text):
        return _new_name_addr(uri_text, display, {})
    after = text[gt + 1 :]
    if after[0] != ";":
        after = after.lstrip()
        if after[0] != ";":
            raise _bad("address")
    return _new_name_addr(uri_text, display, parse_params(after[1:]))


def parse_name_addrs(text: str, allow_star: bool = False) -> list[NameAddr]:
    """Parse a comma-separated list of name-addrs; empty elements are an error.
    With ``allow_star``, a lone ``*`` (Contact in REGISTER) gives a star NameAddr."""
    items = split_comma_list(text) if "," in text else [text.strip()]
    out: list[NameAddr] = []
    for item in items:
        if allow_star and item == "*":
            out.append(NameAddr("", is_star=True))
        else:
            out.append(parse_name_addr(item))
    return out
