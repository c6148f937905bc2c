"""SIP, SIPS and tel URIs (RFC 3261 19.1, RFC 3966), other schemes kept as absolute URIs.

This is the lowest module of the message layer, so ``SipParseError`` lives here; import it
from ``softswitch.sip.message``.

Fields keep the text as received (escaped characters stay escaped) so that ``str()`` gives
back what the peer sent; ``unescape`` and ``SipUri.__eq__`` (RFC 3261 19.1.4) deal with the
escaped forms. Parameter names are case-insensitive and stored in lower case. IPv6 hosts are
stored without their brackets (``host == "2001:db8::1"``), like ``Address.host``; ``str()``
puts the brackets back.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

__all__ = [
    "SUPPORTED_SCHEMES",
    "SipParseError",
    "SipUri",
    "format_host",
    "format_host_port",
    "parse_host_port",
    "parse_uri",
    "unescape",
]

SUPPORTED_SCHEMES = frozenset({"sip", "sips", "tel"})

_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*\Z")
# Characters never allowed raw in a URI: controls, SP, and the delimiters of name-addr.
_BAD_CHARS_RE = re.compile(r'[\x00-\x20\x7f<>"]')
_HOSTNAME_RE = re.compile(r"[A-Za-z0-9_.\-]+\Z")
# Loose on purpose: RFC 5118 4.8 wants the buggy three-colon form accepted too.
_IPV6_RE = re.compile(r"[0-9A-Fa-f:.]+\Z")
# The shape nearly every URI on the wire has: sip:user@host[:port][;simple params], with no
# password, IPv6, escapes, quotes, URI headers or odd characters. One match parses it; every
# other URI takes the general path below.
# Possessive quantifiers (++, *+): each class stops at a character it cannot hold, so
# backtracking into it could never find another match; not recording it is faster. Five
# groups (scheme, user, host, port, ";params"): see common_sip_uri. The name-addr parser
# embeds the pattern to read "<sip:...>" and its URI in one match.
COMMON_SIP_PATTERN = (
    r"(sips?):(?:([A-Za-z0-9_.!~*'()+\-]++)@)?([A-Za-z0-9_.\-]++)(?::([0-9]{1,5}+))?"
    r"((?:;[A-Za-z0-9_.!~*'+\-]++(?:=[A-Za-z0-9_.!~*'+\-]++)?+)*+)"
)
_COMMON_SIP_RE = re.compile(COMMON_SIP_PATTERN + r"\Z")
_TEL_RE = re.compile(r"[0-9A-Fa-f+*#().\-pPwW%]+\Z")


class SipParseError(ValueError):
    """A message (or a part of one) that cannot be parsed.

    ``status``/``reason`` are the answer a server gives (400, 413, 505, 513, ...); the reason
    is always one of our own constant phrases, never text taken from the input. ``message``
    is what could be parsed (enough to build that answer), or None when nothing usable was
    (the server then stays silent).
    """

    # ``message`` is typed ``object``: this module sits below the message module, which
    # raises this error with the part of a message it could read.
    def __init__(self, status: int, reason: str, message: object = None) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason
        self.message = message


def _bad(what: str) -> SipParseError:
    return SipParseError(400, f"Bad {what}")


def unescape(text: str) -> str:
    """Expand %HH escapes once (never recursively); invalid escapes stay as they are."""
    if "%" not in text:
        return text
    return unquote(text, errors="surrogateescape")


def format_host(host: str) -> str:
    """Host as written in a URI, Via or Contact: IPv6 addresses get their brackets back
    (a host already in brackets is left as it is). The one place the stack does this."""
    return f"[{host}]" if ":" in host and host[:1] != "[" else host


def format_host_port(host: str, port: int | None) -> str:
    """``host:port`` (``[v6]:port``) as a Via sent-by or URI hostport; no port, no colon."""
    return f"{format_host(host)}:{port}" if port else format_host(host)


def parse_host_port(text: str, what: str = "host") -> tuple[str, int | None]:
    """Split ``host[:port]`` / ``[v6]:port``; IPv6 brackets are removed. Raises SipParseError."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise _bad(what)
        host = text[1:end]
        if not host or not _IPV6_RE.match(host) or ":" not in host:
            raise _bad(what)
        rest = text[end + 1 :]
        if not rest:
            return host, None
        if rest[0] != ":":
            raise _bad(what)
        port_text = rest[1:]
    else:
        host, colon, port_text = text.partition(":")
        if not host or not _HOSTNAME_RE.match(host):
            raise _bad(what)
        if not colon:
            return host, None
    if not port_text or len(port_text) > 5 or not (port_text.isascii() and port_text.isdigit()):
        raise _bad(what)
    port = int(port_text)
    if port > 65535:
        raise _bad(what)
    return host, port


def _parse_params(text: str) -> dict[str, str | None]:
    if ";" not in text:  # the usual lone parameter (transport=..., user=phone, lr)
        name, eq, value = text.partition("=")
        if not name:
            raise _bad("URI parameter")
        return {name.lower(): value if eq else None}
    params: dict[str, str | None] = {}
    for item in text.split(";"):
        name, eq, value = item.partition("=")
        if not name:
            raise _bad("URI parameter")
        params[name.lower()] = value if eq else None
    return params


class SipUri:
    """A parsed URI.

    sip/sips: ``user``, ``password``, ``host``, ``port``, ``params``, ``headers``.
    tel: the number is in ``user``, ``host`` is "". Any other scheme: ``scheme`` and
    ``opaque`` (the text after the colon). ``str()`` serialises.
    """

    __slots__ = ("headers", "host", "opaque", "params", "password", "port", "scheme", "user")

    def __init__(
        self,
        scheme: str = "sip",
        user: str | None = None,
        host: str = "",
        port: int | None = None,
        params: dict[str, str | None] | None = None,
        headers: dict[str, str] | None = None,
        password: str | None = None,
        opaque: str = "",
    ) -> None:
        self.scheme = scheme.lower()
        self.user = user
        self.password = password
        self.host = host
        self.port = port
        self.params: dict[str, str | None] = params if params is not None else {}
        self.headers: dict[str, str] = headers if headers is not None else {}
        self.opaque = opaque

    @property
    def is_sip(self) -> bool:
        """sip: or sips:."""
        return self.scheme in ("sip", "sips")

    @property
    def transport(self) -> str | None:
        """The ``transport`` parameter, upper-case, or None."""
        value = self.params.get("transport")
        return value.upper() if value else None

    @property
    def host_port(self) -> str:
        """``host[:port]`` with IPv6 brackets."""
        host = format_host(self.host)
        return host if self.port is None else f"{host}:{self.port}"

    def canonical_aor(self) -> str:
        """Address-of-record key (RFC 3261 10.3 step 5): no parameters or headers,
        escapes expanded, scheme and host lower-case."""
        if self.scheme == "tel":
            return f"tel:{unescape(self.user or '')}"
        if not self.is_sip:
            return f"{self.scheme}:{self.opaque}"
        user = f"{unescape(self.user)}@" if self.user is not None else ""
        port = f":{self.port}" if self.port is not None else ""
        return f"{self.scheme}:{user}{format_host(self.host.lower())}{port}"

    def copy(self) -> SipUri:
        """A copy whose params/headers dicts can be changed independently."""
        return SipUri(
            self.scheme,
            self.user,
            self.host,
            self.port,
            dict(self.params),
            dict(self.headers),
            self.password,
            self.opaque,
        )

    def __str__(self) -> str:
        scheme = self.scheme
        if (
            (scheme == "sip" or scheme == "sips")
            and self.password is None
            and not self.headers
            and self.user is not None
            and ":" not in self.host
        ):
            # The usual sip:user@host[:port][;params], in one formatting step.
            port = "" if self.port is None else f":{self.port}"
            params = (
                "".join(
                    [
                        f";{name}" if value is None else f";{name}={value}"
                        for name, value in self.params.items()
                    ]
                )
                if self.params
                else ""
            )
            return f"{scheme}:{self.user}@{self.host}{port}{params}"
        if scheme not in SUPPORTED_SCHEMES:
            return f"{scheme}:{self.opaque}" if scheme else self.opaque
        parts = [scheme, ":"]
        if scheme == "tel":
            parts.append(self.user or "")
        else:
            if self.user is not None:
                parts.append(self.user)
                if self.password is not None:
                    parts += (":", self.password)
                parts.append("@")
            parts.append(format_host(self.host))
            if self.port is not None:
                parts += (":", str(self.port))
        for name, value in self.params.items():
            parts += (";", name) if value is None else (";", name, "=", value)
        if self.headers:
            parts += ("?", "&".join(f"{k}={v}" for k, v in self.headers.items()))
        return "".join(parts)

    def __repr__(self) -> str:
        return f"SipUri({str(self)!r})"

    def _key(self) -> tuple[object, ...]:
        if self.scheme not in SUPPORTED_SCHEMES:
            return (self.scheme, self.opaque)
        return (
            self.scheme,
            unescape(self.user) if self.user is not None else None,
            unescape(self.password) if self.password is not None else None,
            self.host.lower(),
            self.port,
        )

    def __eq__(self, other: object) -> bool:
        """RFC 3261 19.1.4: user/password case-sensitive, host and scheme not, escapes
        expanded; user, ttl, method, maddr and transport must agree when present in either
        URI, other parameters only when present in both; headers must all agree."""
        if not isinstance(other, SipUri):
            return NotImplemented
        if self._key() != other._key():
            return False
        if self.scheme not in SUPPORTED_SCHEMES:
            return True
        mine, theirs = self.params, other.params
        for name in mine.keys() | theirs.keys():
            a, b = mine.get(name), theirs.get(name)
            both = name in mine and name in theirs
            if name in ("user", "ttl", "method", "maddr", "transport") or both:
                if (name in mine) != (name in theirs):
                    return False
                if unescape(a or "").lower() != unescape(b or "").lower():
                    return False
        h1 = {k.lower(): unescape(v) for k, v in self.headers.items()}
        h2 = {k.lower(): unescape(v) for k, v in other.headers.items()}
        return h1 == h2

    def __hash__(self) -> int:
        return hash(self._key())


def parse_uri(text: str) -> SipUri:
    """Parse a URI; raises SipParseError(400, ...) when it is malformed.

    The user part may hold ``;`` and ``?`` (RFC 4475 semiuri): the first ``@`` ends it.
    """
    common = _COMMON_SIP_RE.match(text)
    if common is not None:
        uri = common_sip_uri(*common.groups())
        if uri is not None:
            return uri
    if not text or _BAD_CHARS_RE.search(text):
        raise _bad("URI")
    scheme, colon, rest = text.partition(":")
    if not colon or not _SCHEME_RE.match(scheme):
        raise _bad("URI")
    scheme = scheme.lower()
    if scheme == "sip" or scheme == "sips":
        return _parse_sip(scheme, rest)
    if scheme == "tel":
        return _parse_tel(rest)
    if not rest:
        raise _bad("URI")
    return SipUri(scheme, opaque=rest)


def common_sip_uri(
    scheme: str, user: str | None, host: str, port_text: str | None, param_text: str
) -> SipUri | None:
    """The URI whose text matched COMMON_SIP_PATTERN, from its five groups; None when the
    port is out of range (the general parser then words the error)."""
    port = int(port_text) if port_text is not None else None
    if port is not None and port > 65535:
        return None
    return SipUri(scheme, user, host, port, _parse_params(param_text[1:]) if param_text else {})


def _parse_sip(scheme: str, rest: str) -> SipUri:
    user: str | None = None
    password: str | None = None
    at = rest.find("@")
    if at >= 0:
        userinfo, rest = rest[:at], rest[at + 1 :]
        user, colon, pw = userinfo.partition(":")
        if colon:
            password = pw
        if not user and password is None:
            raise _bad("URI")
    rest, qmark, header_text = rest.partition("?")
    hostport, semi, param_text = rest.partition(";")
    host, port = parse_host_port(hostport, "URI host")
    params = _parse_params(param_text) if semi else {}
    headers: dict[str, str] = {}
    if qmark:
        for item in header_text.split("&"):
            name, eq, value = item.partition("=")
            if not name or not eq:
                raise _bad("URI header")
            headers[name] = value
    return SipUri(scheme, user, host, port, params, headers, password)


def _parse_tel(rest: str) -> SipUri:
    number, semi, param_text = rest.partition(";")
    if not number or not _TEL_RE.match(number):
        raise _bad("tel URI")
    params = _parse_params(param_text) if semi else {}
    return SipUri("tel", number, "", None, params)
