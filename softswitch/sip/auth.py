"""SIP digest authentication (RFC 3261 22, RFC 7616, RFC 8760), server side and UAC helper.

Sans-I/O: works on header *values* and a clock, knows nothing of messages or sockets.

Nonces are stateless: base64url(timestamp_ms || random || HMAC-SHA256(secret, ... || realm)),
so any node holding the secret can check them and nothing is stored per challenge. The only
state is the highest nonce-count accepted per nonce (replay protection), kept in a table that
is pruned as nonces expire and capped in size (see `DigestAuthenticator`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import unquote

from softswitch.sip.entropy import random_bytes

__all__ = [
    "SUPPORTED_ALGORITHMS",
    "AuthReason",
    "AuthResult",
    "DigestAuthenticator",
    "LookupHA1",
    "build_authorization",
    "compute_ha1",
    "compute_response",
    "parse_auth_header",
    "quote",
]

SUPPORTED_ALGORITHMS = ("SHA-256", "MD5", "SHA-256-sess", "MD5-sess")
_CANONICAL = {name.upper(): name for name in SUPPORTED_ALGORITHMS}
_HASH = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}
_HEX_LEN = {"MD5": 32, "SHA-256": 64}
_HEX_DIGITS = "0123456789abcdefABCDEF"
_WS = " \t\r\n"
_SEP = frozenset(" \t\r\n,")
_NOT_IN_TOKEN = frozenset(' \t\r\n",')
_NOT_IN_SCHEME = frozenset('\t\r\n=",')

_TS = struct.Struct(">Q")
_RANDOM_LEN = 8
_MAC_LEN = 16  # truncated HMAC-SHA256: 128 bits is plenty against forgery
_NONCE_RAW_LEN = _TS.size + _RANDOM_LEN + _MAC_LEN
_NONCE_LEN = 43  # base64url of 32 bytes, unpadded
_RECENT_NONCES = 16384  # issued nonces remembered (seconds of challenges at line rate)

_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")
# RFC 2104 inner and outer pads, as translation tables over the key bytes.
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


def _is_hex(text: str) -> bool:
    """Only hex digits (true for ""): strip stops at the first other character."""
    return not text.strip(_HEX_DIGITS)


def _b64url(data: bytes) -> bytes:
    """base64.urlsafe_b64encode without its Python-level wrapping."""
    return binascii.b2a_base64(data, newline=False).translate(_TO_URLSAFE)


LookupHA1 = Callable[[str, str, str], "str | None"]
"""lookup_ha1(username, realm, algorithm) -> HA1 hex or None. `algorithm` is "MD5" or
"SHA-256" (the -sess variants are derived from the same HA1)."""


class AuthReason(StrEnum):
    """Why a verification failed. Safe to expose: it never tells unknown users apart."""

    OK = "ok"
    MALFORMED = "malformed credentials"
    UNSUPPORTED = "unsupported scheme, algorithm or qop"
    WRONG_REALM = "wrong realm"
    INVALID_NONCE = "invalid nonce"
    STALE_NONCE = "stale nonce"
    REPLAY = "replayed nonce count"
    BAD_CREDENTIALS = "bad credentials"  # unknown user and wrong password alike


@dataclass(frozen=True, slots=True)
class AuthResult:
    """Outcome of `DigestAuthenticator.verify`.

    `stale` asks the caller to re-challenge with stale=true (the client knew the password).
    `detail` is for logs only; never send it to the peer.
    """

    ok: bool
    username: str | None
    stale: bool
    reason: AuthReason
    detail: str = ""


def _fail(reason: AuthReason, username: str | None, detail: str, stale: bool = False) -> AuthResult:
    return AuthResult(False, username, stale, reason, detail)


# --------------------------------------------------------------------------- parsing


def quote(value: str) -> str:
    """A quoted-string (RFC 3261 25.1) with backslash escapes."""
    if '"' in value or "\\" in value:
        value = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{value}"'


def parse_auth_header(value: str) -> tuple[str, dict[str, str]]:
    """Split a challenge/credentials value into (scheme, {lower-case name: value}).

    Handles quoted-strings with escapes and tokens. Raises ValueError when malformed,
    including a parameter given twice.
    """
    s = value.strip(_WS)
    scheme, sep, rest = s.partition(" ")
    if sep and "\\" not in rest and _NOT_IN_SCHEME.isdisjoint(scheme):
        params = _simple_auth_params(rest)
        if params is not None:
            return scheme, params
    return _parse_auth_header_slow(s)


def _simple_auth_params(text: str) -> dict[str, str] | None:
    """The parameters of the shape nearly every client sends (name=token or
    name="text without backslashes", comma-separated), or None when the text has any other
    shape, which the character loop of ``_parse_auth_header_slow`` then judges. A quoted
    value holding a comma falls back too: its halves have unbalanced quotes."""
    params: dict[str, str] = {}
    for item in text.split(","):
        name, eq, param = item.partition("=")
        if not eq:
            if item.strip(_WS):
                return None
            continue  # an empty list element, skipped like the loop does
        name = name.strip(_WS)
        param = param.strip(_WS)
        # isalnum() first: a C test that passes the usual names and tokens at once.
        if not name or not param or (not name.isalnum() and not _NOT_IN_TOKEN.isdisjoint(name)):
            return None
        if param[0] == '"':
            if param[-1] != '"' or len(param) < 2 or param.count('"') != 2:
                return None
            param = param[1:-1]
        elif not param.isalnum() and not _NOT_IN_TOKEN.isdisjoint(param):
            return None
        name = name.lower()
        if name in params:
            return None
        params[name] = param
    return params


def _parse_auth_header_slow(s: str) -> tuple[str, dict[str, str]]:
    n = len(s)
    i = 0
    while i < n and s[i] not in _WS:
        i += 1
    scheme = s[:i]
    if not scheme or "=" in scheme or '"' in scheme or "," in scheme:
        raise ValueError("missing authentication scheme")
    params: dict[str, str] = {}
    while True:
        while i < n and s[i] in _SEP:
            i += 1
        if i >= n:
            return scheme, params
        eq = s.find("=", i)
        if eq < 0:
            raise ValueError(f"parameter without '=' at offset {i}")
        name = s[i:eq].strip(_WS).lower()
        if not name or not _NOT_IN_TOKEN.isdisjoint(name):
            raise ValueError(f"bad parameter name at offset {i}")
        i = eq + 1
        while i < n and s[i] in _WS:
            i += 1
        if i < n and s[i] == '"':
            j = i + 1
            chunks: list[str] = []
            while True:
                q = s.find('"', j)
                if q < 0:
                    raise ValueError(f"unterminated quoted-string in {name}")
                bs = s.find("\\", j, q)
                if bs < 0:
                    chunks.append(s[j:q])
                    i = q + 1
                    break
                chunks.append(s[j:bs])
                chunks.append(s[bs + 1])  # bs + 1 <= q, so always inside the string
                j = bs + 2
            param = "".join(chunks)
        else:
            j = s.find(",", i)
            if j < 0:
                j = n
            param = s[i:j].strip(_WS)
            if not param or not _NOT_IN_TOKEN.isdisjoint(param):
                raise ValueError(f"bad value for {name}")
            i = j
        if name in params:
            raise ValueError(f"parameter {name} given twice")
        params[name] = param
        while i < n and s[i] in _WS:
            i += 1
        if i < n and s[i] != ",":
            raise ValueError(f"expected ',' after {name}")


def _ext_value(value: str) -> str:
    """Decode an RFC 8187 ext-value (username*=UTF-8''J%C3%A4s)."""
    charset, _, rest = value.partition("'")
    _, sep, encoded = rest.partition("'")
    if not sep or charset.lower() != "utf-8":
        raise ValueError("username* must be UTF-8''pct-encoded")
    return unquote(encoded, encoding="utf-8", errors="strict")


# --------------------------------------------------------------------------- digest math


def _b(s: str) -> bytes:
    # Header text is decoded with surrogateescape; this restores the wire bytes.
    return s.encode("utf-8", "surrogateescape")


def compute_ha1(username: str, realm: str, password: str, algorithm: str = "MD5") -> str:
    """H(username:realm:password); for -sess algorithms this is the base HA1."""
    base = _CANONICAL[algorithm.upper()].removesuffix("-sess")
    return _HASH[base](_b(f"{username}:{realm}:{password}")).hexdigest()


def compute_response(
    ha1: str,
    method: str,
    uri: str,
    nonce: str,
    *,
    algorithm: str = "MD5",
    qop: str | None = None,
    nc: str | None = None,
    cnonce: str | None = None,
) -> str:
    """The request-digest (RFC 7616 3.4.1; RFC 2069 form when qop is None).

    `ha1` is the base H(username:realm:password); -sess algorithms derive their HA1 here.
    """
    canonical = _CANONICAL[algorithm.upper()]
    base = canonical.removesuffix("-sess")
    h = _HASH[base]
    if canonical != base:
        ha1 = h(_b(f"{ha1}:{nonce}:{cnonce}")).hexdigest()
    ha2 = h(_b(f"{method}:{uri}")).hexdigest()
    if qop is None:
        return h(_b(f"{ha1}:{nonce}:{ha2}")).hexdigest()
    return h(_b(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")).hexdigest()


def build_authorization(
    challenge: str,
    method: str,
    uri: str,
    username: str,
    password: str,
    *,
    nc: int = 1,
    cnonce: str | None = None,
) -> str:
    """Answer a WWW-/Proxy-Authenticate value as a UAC would (e.g. registering to a trunk).

    Raises ValueError for a malformed challenge or an unsupported algorithm/qop.
    """
    scheme, p = parse_auth_header(challenge)
    if scheme.lower() != "digest" or "realm" not in p or "nonce" not in p:
        raise ValueError("not a digest challenge")
    algorithm = _CANONICAL.get(p.get("algorithm", "MD5").upper())
    if algorithm is None:
        raise ValueError(f"unsupported algorithm {p.get('algorithm')}")
    realm, nonce = p["realm"], p["nonce"]
    qops = [q.strip(_WS).lower() for q in p["qop"].split(",")] if "qop" in p else []
    if qops and "auth" not in qops:
        raise ValueError(f"unsupported qop {p['qop']}")
    qop = "auth" if qops else None
    nc_hex = f"{nc:08x}"
    if cnonce is None:
        cnonce = base64.urlsafe_b64encode(os.urandom(12)).decode("ascii")
    ha1 = compute_ha1(username, realm, password, algorithm)
    response = compute_response(
        ha1, method, uri, nonce, algorithm=algorithm, qop=qop, nc=nc_hex, cnonce=cnonce
    )
    parts = [
        f"Digest username={quote(username)}",
        f"realm={quote(realm)}",
        f"nonce={quote(nonce)}",
        f"uri={quote(uri)}",
        f"response={quote(response)}",
        f"algorithm={algorithm}",
    ]
    if qop is not None or algorithm.endswith("-sess"):
        parts.append(f"cnonce={quote(cnonce)}")
    if qop is not None:
        parts += [f"qop={qop}", f"nc={nc_hex}"]
    if "opaque" in p:
        parts.append(f"opaque={quote(p['opaque'])}")
    return ", ".join(parts)


# --------------------------------------------------------------------------- authenticator


class DigestAuthenticator:
    """Issues digest challenges and verifies credentials.

    `secret` signs nonces (share it across nodes). `clock` is wall-clock seconds, because a
    nonce may be checked by another node. Replay state is per node: a nonce accepted here
    may still be accepted once on another node of a cluster.

    Replay table: nonce -> highest nc accepted, only for nonces that authenticated
    successfully (so strangers cannot fill it). Entries leave when their nonce expires; if
    more than `max_tracked_nonces` are live, the oldest are dropped and every nonce issued
    up to that one is treated as stale from then on, so dropping never re-opens a replay.
    """

    def __init__(
        self,
        secret: bytes,
        nonce_lifetime: float = 300,
        algorithms: Iterable[str] = ("SHA-256", "MD5"),
        clock: Callable[[], float] = time.time,
        *,
        allow_rfc2069: bool = True,
        use_opaque: bool = False,
        max_tracked_nonces: int = 200_000,
    ) -> None:
        if not secret:
            raise ValueError("secret must not be empty")
        if nonce_lifetime <= 0:
            raise ValueError("nonce_lifetime must be positive")
        if max_tracked_nonces < 1:
            raise ValueError("max_tracked_nonces must be positive")
        algs: list[str] = []
        for name in algorithms:
            canonical = _CANONICAL.get(name.upper())
            if canonical is None:
                raise ValueError(f"unsupported digest algorithm {name!r}")
            if canonical not in algs:
                algs.append(canonical)
        if not algs:
            raise ValueError("at least one algorithm is required")
        # RFC 8760 2.4: most preferred challenge first; SHA-256 beats MD5 whatever the order.
        algs.sort(key=lambda a: not a.startswith("SHA-256"))
        self._secret = bytes(secret)
        # HMAC-SHA256 with the key's pads hashed once: each nonce then costs two copies of
        # a SHA-256 state (hmac.HMAC.copy does the same, plus Python-level object set-up).
        key = self._secret if len(self._secret) <= 64 else hashlib.sha256(self._secret).digest()
        key = key.ljust(64, b"\0")
        self._mac_inner = hashlib.sha256(key.translate(_IPAD))
        self._mac_outer = hashlib.sha256(key.translate(_OPAD))
        self._lifetime = float(nonce_lifetime)
        self._algorithms = tuple(algs)
        self._clock = clock
        self._allow_rfc2069 = allow_rfc2069
        self._use_opaque = use_opaque
        self._max_tracked = max_tracked_nonces
        self._nc_seen: dict[str, int] = {}
        self._expiry: deque[tuple[float, str]] = deque()
        self._floor = -1.0  # nonces issued at or before this are stale (table overflow)
        # The last nonces this node issued, with realm and issue time: the usual answer to a
        # challenge arrives a few milliseconds later and is recognised without decoding and
        # re-computing its MAC. Only a shortcut: any other nonce is checked in full.
        self._recent: dict[str, tuple[str, float]] = {}
        self._recent_order: deque[str] = deque(maxlen=_RECENT_NONCES)
        # Unknown users are checked against this so that they cost the same as known ones.
        self._dummy_ha1 = {b: os.urandom(n // 2).hex() for b, n in _HEX_LEN.items()}

    @property
    def algorithms(self) -> tuple[str, ...]:
        """Offered algorithms, in challenge order."""
        return self._algorithms

    @property
    def tracked_nonces(self) -> int:
        """Size of the replay table (for metrics)."""
        return len(self._nc_seen)

    # -- challenges

    def challenge(self, realm: str, stale: bool = False) -> list[str]:
        """WWW-Authenticate / Proxy-Authenticate values, one per algorithm, preferred first."""
        nonce = self._make_nonce(realm, self._clock())
        head = f'Digest realm={quote(realm)}, nonce="{nonce}"'
        tail = ', qop="auth"'
        if self._use_opaque:
            tail += f', opaque="{self._opaque(realm)}"'
        if stale:
            tail += ", stale=true"
        return [f"{head}, algorithm={alg}{tail}" for alg in self._algorithms]

    def _make_nonce(self, realm: str, now: float) -> str:
        millis = max(0, int(now * 1000))
        body = _TS.pack(millis) + random_bytes(_RANDOM_LEN)
        mac = self._nonce_mac(body + _b(realm))
        nonce = _b64url(body + mac).rstrip(b"=").decode("ascii")
        order = self._recent_order
        if len(order) == _RECENT_NONCES:
            del self._recent[order[0]]  # the oldest; the append drops it from the deque
        order.append(nonce)
        self._recent[nonce] = (realm, millis / 1000.0)
        return nonce

    def _nonce_issued(self, nonce: str, realm: str) -> float | None:
        """Issue time of an authentic nonce for this realm, else None."""
        recent = self._recent.get(nonce)
        if recent is not None and recent[0] == realm:
            return recent[1]
        if len(nonce) != _NONCE_LEN or not nonce.isascii():
            return None
        encoded = nonce.encode("ascii")
        try:
            # binascii directly: base64.urlsafe_b64decode is this plus Python-level wrapping.
            raw = binascii.a2b_base64(encoded.translate(_FROM_URLSAFE) + b"=")
        except (ValueError, binascii.Error):
            return None
        # Only the canonical spelling is ours (b64decode skips junk and ignores spare bits).
        if len(raw) != _NONCE_RAW_LEN or _b64url(raw)[:-1] != encoded:
            return None
        body, mac = raw[:-_MAC_LEN], raw[-_MAC_LEN:]
        expected = self._nonce_mac(body + _b(realm))
        if not hmac.compare_digest(mac, expected):
            return None
        return _TS.unpack_from(body)[0] / 1000.0

    def _nonce_mac(self, data: bytes) -> bytes:
        """Truncated HMAC-SHA256 (RFC 2104) of ``data`` under the secret."""
        inner = self._mac_inner.copy()
        inner.update(data)
        outer = self._mac_outer.copy()
        outer.update(inner.digest())
        return outer.digest()[:_MAC_LEN]

    def _opaque(self, realm: str) -> str:
        mac = hmac.digest(self._secret, b"opaque:" + _b(realm), "sha256")[:12]
        return base64.urlsafe_b64encode(mac).decode("ascii")

    # -- verification

    def verify(
        self, method: str, header_value: str | None, realm: str, lookup_ha1: LookupHA1
    ) -> AuthResult:
        """Check an Authorization / Proxy-Authorization value for a request.

        Never raises for bad input (ok=False with a reason); exceptions from `lookup_ha1`
        (e.g. the database is down) propagate to the caller.
        """
        if not isinstance(header_value, str):
            return _fail(AuthReason.MALFORMED, None, "no credentials")
        try:
            scheme, p = parse_auth_header(header_value)
        except (ValueError, TypeError, AttributeError) as exc:
            return _fail(AuthReason.MALFORMED, None, str(exc))
        username = p.get("username")
        if scheme.lower() != "digest":
            return _fail(AuthReason.UNSUPPORTED, username, f"scheme {scheme}")
        if "username*" in p:
            if username is not None:
                return _fail(AuthReason.MALFORMED, username, "both username and username*")
            try:
                username = _ext_value(p["username*"])
            except ValueError as exc:
                return _fail(AuthReason.MALFORMED, None, str(exc))
        userhash = p.get("userhash")
        if userhash is not None and userhash.lower() != "false":
            return _fail(AuthReason.UNSUPPORTED, None, "userhash")
        if username is None:
            return _fail(AuthReason.MALFORMED, None, "missing username")
        for name in ("realm", "nonce", "uri", "response"):
            if name not in p:
                return _fail(AuthReason.MALFORMED, username, f"missing {name}")
        if p["realm"] != realm:
            return _fail(AuthReason.WRONG_REALM, username, f"realm {p['realm']!r}")

        algorithm = _CANONICAL.get(p.get("algorithm", "MD5").upper())
        if algorithm is None or algorithm not in self._algorithms:
            return _fail(AuthReason.UNSUPPORTED, username, f"algorithm {p.get('algorithm')}")
        base = algorithm.removesuffix("-sess")

        qop = p.get("qop")
        nc: str | None = None
        cnonce = p.get("cnonce")
        if qop is None:
            if not self._allow_rfc2069:
                return _fail(AuthReason.UNSUPPORTED, username, "no qop (RFC 2069)")
            if algorithm != base and cnonce is None:
                return _fail(AuthReason.MALFORMED, username, "-sess without cnonce")
            count = 1  # no nonce-count: each nonce is good for one request only
        elif qop.lower() == "auth":
            nc = p.get("nc")
            if nc is None or cnonce is None:
                return _fail(AuthReason.MALFORMED, username, "qop=auth without nc/cnonce")
            if not 1 <= len(nc) <= 8 or not _is_hex(nc):
                return _fail(AuthReason.MALFORMED, username, f"bad nc {nc!r}")
            count = int(nc, 16)
            if count == 0:
                return _fail(AuthReason.MALFORMED, username, "nc is zero")
        else:
            return _fail(AuthReason.UNSUPPORTED, username, f"qop {qop}")

        if self._use_opaque and p.get("opaque") != self._opaque(realm):
            return _fail(AuthReason.MALFORMED, username, "opaque missing or altered")
        response = p["response"]
        if len(response) != _HEX_LEN[base] or not _is_hex(response):
            return _fail(AuthReason.MALFORMED, username, "response is not a digest")

        nonce = p["nonce"]
        issued = self._nonce_issued(nonce, realm)
        if issued is None:
            return _fail(AuthReason.INVALID_NONCE, username, "nonce not issued by us")

        stored = lookup_ha1(username, realm, base)
        if isinstance(stored, str) and len(stored) == _HEX_LEN[base] and _is_hex(stored):
            known, ha1 = True, stored.lower()
        else:
            known, ha1 = False, self._dummy_ha1[base]  # same work as for a real user
        try:
            expected = compute_response(
                ha1, method, p["uri"], nonce, algorithm=algorithm, qop=qop, nc=nc, cnonce=cnonce
            )
        except (UnicodeError, TypeError, AttributeError) as exc:
            return _fail(AuthReason.MALFORMED, username, f"unencodable field: {exc}")
        matches = hmac.compare_digest(expected.encode(), response.lower().encode())
        if not (known and matches):
            if known:
                detail = "wrong password"
            elif stored is None:
                detail = "unknown user"
            else:
                detail = f"stored HA1 unusable for {base}"
            return _fail(AuthReason.BAD_CREDENTIALS, username, detail)

        now = self._clock()
        if abs(now - issued) > self._lifetime or issued <= self._floor:
            return _fail(AuthReason.STALE_NONCE, username, "nonce expired", stale=True)
        self._prune(now)
        last = self._nc_seen.get(nonce)
        if last is not None and count <= last:
            return _fail(AuthReason.REPLAY, username, f"nc {count} after {last}", stale=True)
        if last is None:
            self._expiry.append((issued + self._lifetime, nonce))
        self._nc_seen[nonce] = count
        if len(self._nc_seen) > self._max_tracked:
            self._evict_oldest()
        return AuthResult(True, username, False, AuthReason.OK)

    def _prune(self, now: float) -> None:
        expiry, seen = self._expiry, self._nc_seen
        while expiry and expiry[0][0] < now:
            seen.pop(expiry.popleft()[1], None)

    def _evict_oldest(self) -> None:
        expires_at, nonce = self._expiry.popleft()
        self._nc_seen.pop(nonce, None)
        self._floor = max(self._floor, expires_at - self._lifetime)


def realm_of(credentials: str) -> str | None:
    """The realm parameter of an Authorization value, found cheaply (to pick the right
    credentials among several without parsing them all)."""
    start = credentials.find('realm="')
    if start < 0:
        return None
    start += 7
    end = credentials.find('"', start)
    return credentials[start:end] if end > start else None
