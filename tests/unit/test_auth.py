"""Digest authentication: RFC vectors, verification outcomes, stale nonces, replay, fuzz."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from softswitch.sip.auth import (
    AuthReason,
    AuthResult,
    DigestAuthenticator,
    build_authorization,
    compute_ha1,
    compute_response,
    parse_auth_header,
    quote,
)

REALM = "pbx.example.test"
SECRET = b"unit-test-secret-0123456789abcdef"
PASSWORDS = {"100": "pw-100", "101": "pw-101", "J\u00e4s\u00f8n": "pw-jason"}


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def lookup(username: str, realm: str, algorithm: str) -> str | None:
    password = PASSWORDS.get(username)
    return None if password is None else compute_ha1(username, realm, password, algorithm)


def make_auth(**kwargs: Any) -> tuple[DigestAuthenticator, FakeClock]:
    clock = FakeClock()
    kwargs.setdefault("algorithms", ("SHA-256", "MD5", "SHA-256-sess", "MD5-sess"))
    return DigestAuthenticator(SECRET, clock=clock, **kwargs), clock


def nonce_of(challenge: str) -> str:
    return parse_auth_header(challenge)[1]["nonce"]


def credentials(
    auth: DigestAuthenticator,
    *,
    username: str = "100",
    password: str | None = None,
    algorithm: str = "SHA-256",
    method: str = "REGISTER",
    uri: str = f"sip:{REALM}",
    nc: int = 1,
    cnonce: str = "0a4f113b",
    qop: str | None = "auth",
    nonce: str | None = None,
    realm: str = REALM,
) -> dict[str, str]:
    """Parameters of a correct Authorization value, to be tampered with by a test."""
    if nonce is None:
        nonce = nonce_of(auth.challenge(REALM)[0])
    if password is None:
        password = PASSWORDS[username]
    nc_hex = f"{nc:08x}"
    ha1 = compute_ha1(username, realm, password, algorithm)
    params = {
        "username": quote(username),
        "realm": quote(realm),
        "nonce": quote(nonce),
        "uri": quote(uri),
        "algorithm": algorithm,
        "response": quote(
            compute_response(
                ha1, method, uri, nonce, algorithm=algorithm, qop=qop, nc=nc_hex, cnonce=cnonce
            )
        ),
    }
    if qop is not None:
        params.update(qop=qop, nc=nc_hex, cnonce=quote(cnonce))
    elif algorithm.endswith("-sess"):
        params["cnonce"] = quote(cnonce)
    return params


def header(params: dict[str, str], scheme: str = "Digest") -> str:
    return scheme + " " + ", ".join(f"{k}={v}" for k, v in params.items())


# --------------------------------------------------------------------------- RFC vectors

RFC7616_NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
RFC7616_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"

VECTORS = [
    # RFC 7616 3.9.1 (SHA-256 and MD5)
    (
        "Mufasa",
        "http-auth@example.org",
        "Circle of Life",
        "GET",
        "/dir/index.html",
        RFC7616_NONCE,
        "SHA-256",
        "auth",
        "00000001",
        RFC7616_CNONCE,
        "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
    ),
    (
        "Mufasa",
        "http-auth@example.org",
        "Circle of Life",
        "GET",
        "/dir/index.html",
        RFC7616_NONCE,
        "MD5",
        "auth",
        "00000001",
        RFC7616_CNONCE,
        "8ca523f5e9506fed4657c9700eebdbec",
    ),
    # RFC 2617 3.5
    (
        "Mufasa",
        "testrealm@host.com",
        "Circle Of Life",
        "GET",
        "/dir/index.html",
        "dcd98b7102dd2f0e8b11d0f600bfb0c093",
        "MD5",
        "auth",
        "00000001",
        "0a4f113b",
        "6629fae49393a05397450978507c4ef1",
    ),
]


@pytest.mark.parametrize(
    (
        "username",
        "realm",
        "password",
        "method",
        "uri",
        "nonce",
        "algorithm",
        "qop",
        "nc",
        "cnonce",
        "expected",
    ),
    VECTORS,
)
def test_rfc_response_vectors(
    username: str,
    realm: str,
    password: str,
    method: str,
    uri: str,
    nonce: str,
    algorithm: str,
    qop: str,
    nc: str,
    cnonce: str,
    expected: str,
) -> None:
    ha1 = compute_ha1(username, realm, password, algorithm)
    got = compute_response(
        ha1, method, uri, nonce, algorithm=algorithm, qop=qop, nc=nc, cnonce=cnonce
    )
    assert got == expected


def test_rfc2617_ha1_vector() -> None:
    assert compute_ha1("Mufasa", "testrealm@host.com", "Circle Of Life") == (
        "939e7578ed9e3c518a452acee763bce9"
    )


# --------------------------------------------------------------------------- verify table

Tamper = Callable[[DigestAuthenticator], str]


def _case(**kw: Any) -> Tamper:
    """Header built from correct credentials, then fields replaced (None removes one)."""
    overrides = kw.pop("set", {})
    scheme = kw.pop("scheme", "Digest")
    upper = kw.pop("upper", False)

    def build(auth: DigestAuthenticator) -> str:
        params = credentials(auth, **kw)
        if upper:
            params["response"] = params["response"].upper()
        for key, value in overrides.items():
            if value is None:
                params.pop(key, None)
            else:
                params[key] = value
        return header(params, scheme)

    return build


def _other_realm_nonce(auth: DigestAuthenticator) -> str:
    nonce = nonce_of(auth.challenge("other.example.test")[0])
    return header(credentials(auth, nonce=nonce))


def _foreign_nonce(auth: DigestAuthenticator) -> str:
    foreign = DigestAuthenticator(b"another-secret-entirely-different")
    return header(credentials(auth, nonce=nonce_of(foreign.challenge(REALM)[0])))


def _flipped_nonce(auth: DigestAuthenticator) -> str:
    nonce = nonce_of(auth.challenge(REALM)[0])
    flipped = nonce[:10] + ("A" if nonce[10] != "A" else "B") + nonce[11:]
    return header(credentials(auth, nonce=flipped))


def _noncanonical_nonce(auth: DigestAuthenticator) -> str:
    # The last base64 character carries 2 spare bits: same bytes, different spelling.
    nonce = nonce_of(auth.challenge(REALM)[0])
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(nonce[-1])
    return header(credentials(auth, nonce=nonce[:-1] + alphabet[last ^ 1]))


def _ext_username(auth: DigestAuthenticator) -> str:
    params = credentials(auth, username="J\u00e4s\u00f8n")
    del params["username"]
    params["username*"] = "UTF-8''J%C3%A4s%C3%B8n"
    return header(params)


def _lone_surrogate(auth: DigestAuthenticator) -> str:
    params = credentials(auth)
    params["cnonce"] = '"\ud800"'
    return header(params)


VERIFY_CASES: list[tuple[str, Tamper, str, bool, AuthReason, str | None]] = [
    # id, header builder, method verified, ok, reason, expected username
    ("sha-256", _case(), "REGISTER", True, AuthReason.OK, "100"),
    ("md5", _case(algorithm="MD5"), "REGISTER", True, AuthReason.OK, "100"),
    ("sha-256-sess", _case(algorithm="SHA-256-sess"), "REGISTER", True, AuthReason.OK, "100"),
    ("md5-sess", _case(algorithm="MD5-sess"), "REGISTER", True, AuthReason.OK, "100"),
    (
        "algorithm absent means MD5",
        _case(algorithm="MD5", set={"algorithm": None}),
        "REGISTER",
        True,
        AuthReason.OK,
        "100",
    ),
    (
        "algorithm lower case",
        _case(set={"algorithm": "sha-256"}),
        "REGISTER",
        True,
        AuthReason.OK,
        "100",
    ),
    ("quoted qop", _case(set={"qop": '"auth"'}), "REGISTER", True, AuthReason.OK, "100"),
    (
        "upper-case response hex",
        _case(username="101", upper=True),
        "REGISTER",
        True,
        AuthReason.OK,
        "101",
    ),
    (
        "INVITE with odd uri",
        _case(method="INVITE", uri="sip:+1555@h;user=phone?x=a,b"),
        "INVITE",
        True,
        AuthReason.OK,
        "100",
    ),
    ("rfc 2069 no qop", _case(qop=None), "REGISTER", True, AuthReason.OK, "100"),
    ("username* ext-value", _ext_username, "REGISTER", True, AuthReason.OK, "J\u00e4s\u00f8n"),
    ("scheme Basic", _case(scheme="Basic"), "REGISTER", False, AuthReason.UNSUPPORTED, "100"),
    (
        "wrong realm",
        _case(realm="other.example.test"),
        "REGISTER",
        False,
        AuthReason.WRONG_REALM,
        "100",
    ),
    (
        "unknown algorithm",
        _case(set={"algorithm": "SHA-512-256"}),
        "REGISTER",
        False,
        AuthReason.UNSUPPORTED,
        "100",
    ),
    (
        "qop auth-int",
        _case(set={"qop": "auth-int"}),
        "REGISTER",
        False,
        AuthReason.UNSUPPORTED,
        "100",
    ),
    ("userhash", _case(set={"userhash": "true"}), "REGISTER", False, AuthReason.UNSUPPORTED, None),
    (
        "missing username",
        _case(set={"username": None}),
        "REGISTER",
        False,
        AuthReason.MALFORMED,
        None,
    ),
    (
        "username and username*",
        _case(set={"username*": "UTF-8''x"}),
        "REGISTER",
        False,
        AuthReason.MALFORMED,
        "100",
    ),
    (
        "bad username*",
        _case(set={"username": None, "username*": "latin1''x"}),
        "REGISTER",
        False,
        AuthReason.MALFORMED,
        None,
    ),
    ("missing nonce", _case(set={"nonce": None}), "REGISTER", False, AuthReason.MALFORMED, "100"),
    ("missing uri", _case(set={"uri": None}), "REGISTER", False, AuthReason.MALFORMED, "100"),
    (
        "missing response",
        _case(set={"response": None}),
        "REGISTER",
        False,
        AuthReason.MALFORMED,
        "100",
    ),
    ("missing realm", _case(set={"realm": None}), "REGISTER", False, AuthReason.MALFORMED, "100"),
    ("qop without nc", _case(set={"nc": None}), "REGISTER", False, AuthReason.MALFORMED, "100"),
    (
        "qop without cnonce",
        _case(set={"cnonce": None}),
        "REGISTER",
        False,
        AuthReason.MALFORMED,
        "100",
    ),
    (
        "sess without cnonce",
        _case(algorithm="MD5-sess", qop=None, set={"cnonce": None}),
        "REGISTER",
        False,
        AuthReason.MALFORMED,
        "100",
    ),
    ("nc zero", _case(set={"nc": "00000000"}), "REGISTER", False, AuthReason.MALFORMED, "100"),
    ("nc not hex", _case(set={"nc": "0000000g"}), "REGISTER", False, AuthReason.MALFORMED, "100"),
    ("nc too long", _case(set={"nc": "000000001"}), "REGISTER", False, AuthReason.MALFORMED, "100"),
    (
        "response not hex",
        _case(set={"response": '"' + "z" * 64 + '"'}),
        "REGISTER",
        False,
        AuthReason.MALFORMED,
        "100",
    ),
    (
        "md5-length response for sha-256",
        _case(set={"response": '"' + "a" * 32 + '"'}),
        "REGISTER",
        False,
        AuthReason.MALFORMED,
        "100",
    ),
    ("lone surrogate in cnonce", _lone_surrogate, "REGISTER", False, AuthReason.MALFORMED, "100"),
    (
        "nonce for another realm",
        _other_realm_nonce,
        "REGISTER",
        False,
        AuthReason.INVALID_NONCE,
        "100",
    ),
    (
        "nonce from another secret",
        _foreign_nonce,
        "REGISTER",
        False,
        AuthReason.INVALID_NONCE,
        "100",
    ),
    ("tampered nonce", _flipped_nonce, "REGISTER", False, AuthReason.INVALID_NONCE, "100"),
    (
        "non-canonical nonce spelling",
        _noncanonical_nonce,
        "REGISTER",
        False,
        AuthReason.INVALID_NONCE,
        "100",
    ),
    (
        "short nonce",
        _case(set={"nonce": '"abc"'}),
        "REGISTER",
        False,
        AuthReason.INVALID_NONCE,
        "100",
    ),
    (
        "wrong password",
        _case(password="guess"),
        "REGISTER",
        False,
        AuthReason.BAD_CREDENTIALS,
        "100",
    ),
    (
        "unknown user",
        _case(username="999", password="pw"),
        "REGISTER",
        False,
        AuthReason.BAD_CREDENTIALS,
        "999",
    ),
    (
        "digest for another method",
        _case(method="INVITE"),
        "REGISTER",
        False,
        AuthReason.BAD_CREDENTIALS,
        "100",
    ),
    (
        "altered uri",
        _case(set={"uri": '"sip:evil.test"'}),
        "REGISTER",
        False,
        AuthReason.BAD_CREDENTIALS,
        "100",
    ),
    (
        "altered cnonce",
        _case(set={"cnonce": '"other"'}),
        "REGISTER",
        False,
        AuthReason.BAD_CREDENTIALS,
        "100",
    ),
]


@pytest.mark.parametrize(
    ("build", "method", "ok", "reason", "username"),
    [c[1:] for c in VERIFY_CASES],
    ids=[c[0] for c in VERIFY_CASES],
)
def test_verify(
    build: Tamper, method: str, ok: bool, reason: AuthReason, username: str | None
) -> None:
    auth, _ = make_auth()
    value = build(auth)
    result = auth.verify(method, value, REALM, lookup)
    assert (result.ok, result.reason, result.username, result.stale) == (
        ok,
        reason,
        username,
        False,
    )


def test_algorithm_not_offered_is_refused() -> None:
    auth, _ = make_auth(algorithms=("SHA-256",))
    result = auth.verify("REGISTER", header(credentials(auth, algorithm="MD5")), REALM, lookup)
    assert (result.ok, result.reason) == (False, AuthReason.UNSUPPORTED)


def test_rfc2069_can_be_refused() -> None:
    auth, _ = make_auth(allow_rfc2069=False)
    result = auth.verify("REGISTER", header(credentials(auth, qop=None)), REALM, lookup)
    assert (result.ok, result.reason) == (False, AuthReason.UNSUPPORTED)


def test_store_returning_garbage_is_bad_credentials() -> None:
    auth, _ = make_auth()
    result = auth.verify("REGISTER", header(credentials(auth)), REALM, lambda u, r, a: "not-a-hash")
    assert (result.ok, result.reason) == (False, AuthReason.BAD_CREDENTIALS)


def test_lookup_receives_base_algorithm() -> None:
    auth, _ = make_auth()
    calls: list[tuple[str, str, str]] = []

    def spy(username: str, realm: str, algorithm: str) -> str | None:
        calls.append((username, realm, algorithm))
        return lookup(username, realm, algorithm)

    for algorithm in ("SHA-256-sess", "MD5-sess", "MD5"):
        assert auth.verify(
            "REGISTER", header(credentials(auth, algorithm=algorithm)), REALM, spy
        ).ok
    assert calls == [("100", REALM, "SHA-256"), ("100", REALM, "MD5"), ("100", REALM, "MD5")]


def test_unknown_user_and_wrong_password_look_the_same() -> None:
    auth, _ = make_auth()
    value = header(credentials(auth, username="100", password="wrong"))
    wrong = auth.verify("REGISTER", value, REALM, lookup)
    unknown = auth.verify("REGISTER", value, REALM, lambda u, r, a: None)
    assert not wrong.ok and not unknown.ok
    exposed = [(r.ok, r.username, r.stale, r.reason) for r in (wrong, unknown)]
    assert exposed[0] == exposed[1] == (False, "100", False, AuthReason.BAD_CREDENTIALS)
    assert wrong.detail != unknown.detail  # the logs can still tell them apart


MALFORMED_VALUES = [
    "",
    "   ",
    "Digest",
    "Digest ",
    "Digest username",
    'Digest username="abc',
    'Digest username="a", username="b"',
    "Digest ,,,",
    "Digest =x",
    'Digest a="x"y',
    "Digest a=b c",
    'Digest a=b"',
    "\x00\xff",
    "Digest realm=\\",
    'Digest username="\\',
    "Digest " + "a=b, " * 2000,
    'Digest username="x' + "\\" * 5001,
    '=Digest username="x"',
    "Digest username=\udcff",
]


@pytest.mark.parametrize("value", MALFORMED_VALUES)
def test_malformed_values_never_raise(value: str) -> None:
    auth, _ = make_auth()
    result = auth.verify("REGISTER", value, REALM, lookup)
    assert isinstance(result, AuthResult)
    assert not result.ok
    assert result.reason in (AuthReason.MALFORMED, AuthReason.UNSUPPORTED)


def test_non_string_value_is_malformed() -> None:
    auth, _ = make_auth()
    result = auth.verify("REGISTER", None, REALM, lookup)
    assert (result.ok, result.reason) == (False, AuthReason.MALFORMED)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_fuzz_verify_never_raises(value: str) -> None:
    auth = DigestAuthenticator(SECRET, clock=FakeClock())
    for candidate in (value, "Digest " + value):
        assert not auth.verify("INVITE", candidate, REALM, lookup).ok


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "username",
                "realm",
                "nonce",
                "uri",
                "response",
                "nc",
                "cnonce",
                "qop",
                "algorithm",
                "opaque",
            ]
        ),
        st.text(max_size=40),
        max_size=10,
    )
)
def test_fuzz_parameters_never_raise(params: dict[str, str]) -> None:
    auth = DigestAuthenticator(SECRET, clock=FakeClock())
    value = header({k: quote(v) for k, v in params.items()})
    assert isinstance(auth.verify("REGISTER", value, REALM, lookup), AuthResult)


# --------------------------------------------------------------------------- stale nonces

STALE_CASES = [
    # id, seconds after the challenge, password right?, ok, stale, reason
    ("fresh", 0.0, True, True, False, AuthReason.OK),
    ("just inside lifetime", 299.0, True, True, False, AuthReason.OK),
    ("expired, right password", 301.0, True, False, True, AuthReason.STALE_NONCE),
    ("long expired", 86_400.0, True, False, True, AuthReason.STALE_NONCE),
    ("expired, wrong password", 301.0, False, False, False, AuthReason.BAD_CREDENTIALS),
    ("clock went back past lifetime", -301.0, True, False, True, AuthReason.STALE_NONCE),
    ("clock went back a little", -5.0, True, True, False, AuthReason.OK),
]


@pytest.mark.parametrize(
    ("delay", "right", "ok", "stale", "reason"),
    [c[1:] for c in STALE_CASES],
    ids=[c[0] for c in STALE_CASES],
)
def test_stale_nonces(delay: float, right: bool, ok: bool, stale: bool, reason: AuthReason) -> None:
    auth, clock = make_auth(nonce_lifetime=300)
    value = header(credentials(auth, password=None if right else "wrong"))
    clock.now += delay
    result = auth.verify("REGISTER", value, REALM, lookup)
    assert (result.ok, result.stale, result.reason) == (ok, stale, reason)


# --------------------------------------------------------------------------- replay

REPLAY_SEQUENCES = [
    # id, nc values sent on one nonce, expected ok for each (failures are replays)
    ("increasing", [1, 2, 3, 10], [True, True, True, True]),
    ("same nc twice", [1, 1], [True, False]),
    ("going back", [1, 5, 3, 6], [True, True, False, True]),
    ("max nc", [0xFFFFFFFF, 0xFFFFFFFF], [True, False]),
]


@pytest.mark.parametrize(
    ("counts", "expected"), [c[1:] for c in REPLAY_SEQUENCES], ids=[c[0] for c in REPLAY_SEQUENCES]
)
def test_replayed_nonce_count(counts: list[int], expected: list[bool]) -> None:
    auth, _ = make_auth()
    nonce = nonce_of(auth.challenge(REALM)[0])
    for nc, want in zip(counts, expected, strict=True):
        result = auth.verify(
            "REGISTER", header(credentials(auth, nonce=nonce, nc=nc)), REALM, lookup
        )
        assert result.ok is want
        if not want:
            # stale=true lets an honest client recover with a fresh nonce, no password prompt
            assert (result.reason, result.stale) == (AuthReason.REPLAY, True)


def test_rfc2069_nonce_is_single_use() -> None:
    auth, _ = make_auth()
    value = header(credentials(auth, qop=None))
    assert auth.verify("REGISTER", value, REALM, lookup).ok
    again = auth.verify("REGISTER", value, REALM, lookup)
    assert (again.ok, again.reason, again.stale) == (False, AuthReason.REPLAY, True)


def test_failed_attempts_do_not_burn_nonce_counts() -> None:
    auth, _ = make_auth()
    nonce = nonce_of(auth.challenge(REALM)[0])
    bad = header(credentials(auth, nonce=nonce, nc=0xFF, password="wrong"))
    assert not auth.verify("REGISTER", bad, REALM, lookup).ok
    good = header(credentials(auth, nonce=nonce, nc=1))
    assert auth.verify("REGISTER", good, REALM, lookup).ok
    assert auth.tracked_nonces == 1


def test_replay_table_pruned_when_nonces_expire() -> None:
    auth, clock = make_auth(nonce_lifetime=60)
    for _ in range(50):
        assert auth.verify("REGISTER", header(credentials(auth)), REALM, lookup).ok
    assert auth.tracked_nonces == 50
    clock.now += 61
    assert auth.verify("REGISTER", header(credentials(auth)), REALM, lookup).ok
    assert auth.tracked_nonces == 1


def test_replay_table_capped_without_reopening_replays() -> None:
    auth, clock = make_auth(max_tracked_nonces=10)
    used: list[str] = []
    for _ in range(100):
        clock.now += 0.01
        value = header(credentials(auth))
        assert auth.verify("REGISTER", value, REALM, lookup).ok
        used.append(value)
        assert auth.tracked_nonces <= 10
    for value in used:  # evicted or not, no replay gets through
        assert not auth.verify("REGISTER", value, REALM, lookup).ok
    # and fresh nonces still work
    assert auth.verify("REGISTER", header(credentials(auth)), REALM, lookup).ok


# --------------------------------------------------------------------------- challenges

CHALLENGE_CASES = [
    # id, constructor algorithms, stale, expected algorithm order
    ("default", ("SHA-256", "MD5"), False, ["SHA-256", "MD5"]),
    ("sha-256 first whatever the order", ("MD5", "SHA-256"), False, ["SHA-256", "MD5"]),
    ("stale", ("SHA-256", "MD5"), True, ["SHA-256", "MD5"]),
    ("md5 only", ("md5",), False, ["MD5"]),
    (
        "sess variants",
        ("MD5-sess", "SHA-256-sess", "SHA-256"),
        False,
        ["SHA-256-sess", "SHA-256", "MD5-sess"],
    ),
]


@pytest.mark.parametrize(
    ("algorithms", "stale", "order"),
    [c[1:] for c in CHALLENGE_CASES],
    ids=[c[0] for c in CHALLENGE_CASES],
)
def test_challenge(algorithms: tuple[str, ...], stale: bool, order: list[str]) -> None:
    auth = DigestAuthenticator(SECRET, algorithms=algorithms, clock=FakeClock())
    values = auth.challenge(REALM, stale=stale)
    parsed = [parse_auth_header(v) for v in values]
    assert [p["algorithm"] for _, p in parsed] == order
    for scheme, p in parsed:
        assert scheme == "Digest"
        assert (p["realm"], p["qop"]) == (REALM, "auth")
        assert p.get("stale") == ("true" if stale else None)
        assert "opaque" not in p
    assert len({p["nonce"] for _, p in parsed}) == 1
    assert auth.challenge(REALM)[0] != values[0]  # every challenge gets a fresh nonce


def test_challenge_escapes_realm() -> None:
    auth = DigestAuthenticator(SECRET)
    (value, _) = auth.challenge('odd "realm" \\ here')
    assert parse_auth_header(value)[1]["realm"] == 'odd "realm" \\ here'


OPAQUE_CASES = [
    ("echoed", None, True, AuthReason.OK),
    ("missing", "", False, AuthReason.MALFORMED),
    ("altered", '"forged"', False, AuthReason.MALFORMED),
]


@pytest.mark.parametrize(
    ("opaque", "ok", "reason"), [c[1:] for c in OPAQUE_CASES], ids=[c[0] for c in OPAQUE_CASES]
)
def test_opaque(opaque: str | None, ok: bool, reason: AuthReason) -> None:
    auth, _ = make_auth(use_opaque=True)
    challenge = auth.challenge(REALM)[0]
    value = build_authorization(challenge, "REGISTER", f"sip:{REALM}", "100", "pw-100")
    if opaque is not None:
        original = quote(parse_auth_header(challenge)[1]["opaque"])
        value = value.replace(f", opaque={original}", f", opaque={opaque}" if opaque else "")
    result = auth.verify("REGISTER", value, REALM, lookup)
    assert (result.ok, result.reason) == (ok, reason)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"secret": b""},
        {"secret": SECRET, "algorithms": ("SHA-512",)},
        {"secret": SECRET, "algorithms": ()},
        {"secret": SECRET, "nonce_lifetime": 0},
        {"secret": SECRET, "max_tracked_nonces": 0},
    ],
)
def test_constructor_rejects_bad_arguments(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        DigestAuthenticator(**kwargs)


# --------------------------------------------------------------------------- parsing, UAC

PARSE_CASES = [
    ('Digest realm="a\\"b\\\\c", nonce=xyz', ("Digest", {"realm": 'a"b\\c', "nonce": "xyz"})),
    ('digest  Realm = "r" ,NONCE=n,', ("digest", {"realm": "r", "nonce": "n"})),
    ('Digest uri="sip:a@b;x=1,y", qop=auth', ("Digest", {"uri": "sip:a@b;x=1,y", "qop": "auth"})),
    ('Digest empty=""', ("Digest", {"empty": ""})),
    ("Digest", ("Digest", {})),
]


@pytest.mark.parametrize(("value", "expected"), PARSE_CASES)
def test_parse_auth_header(value: str, expected: tuple[str, dict[str, str]]) -> None:
    assert parse_auth_header(value) == expected


@pytest.mark.parametrize("text", ["plain", 'with "quotes"', "back\\slash", "", '\\"\\'])
def test_quote_round_trip(text: str) -> None:
    assert parse_auth_header(f"Digest x={quote(text)}")[1]["x"] == text


UAC_CASES = [
    (
        'Digest realm="pbx.example.test", nonce="N", qop="auth,auth-int", algorithm=SHA-256',
        {"qop": "auth", "nc": "00000001", "algorithm": "SHA-256"},
    ),
    ('Digest realm="pbx.example.test", nonce="N"', {"algorithm": "MD5"}),
    (
        'Digest realm="pbx.example.test", nonce="N", opaque="o", algorithm=MD5-sess',
        {"opaque": "o", "algorithm": "MD5-sess", "cnonce": "c"},
    ),
]


@pytest.mark.parametrize(("challenge", "expected"), UAC_CASES)
def test_build_authorization(challenge: str, expected: dict[str, str]) -> None:
    value = build_authorization(
        challenge, "REGISTER", "sip:pbx.example.test", "100", "pw", cnonce="c"
    )
    scheme, params = parse_auth_header(value)
    assert scheme == "Digest"
    for key, want in expected.items():
        assert params[key] == want
    if "qop" not in expected:
        assert "qop" not in params and "nc" not in params
    algorithm = params["algorithm"]
    ha1 = compute_ha1("100", REALM, "pw", algorithm)
    assert params["response"] == compute_response(
        ha1,
        "REGISTER",
        "sip:pbx.example.test",
        "N",
        algorithm=algorithm,
        qop=params.get("qop"),
        nc=params.get("nc"),
        cnonce=params.get("cnonce"),
    )


@pytest.mark.parametrize(
    "challenge",
    [
        'Basic realm="x"',
        'Digest realm="x"',
        'Digest realm="x", nonce="n", algorithm=SHA-512',
        'Digest realm="x", nonce="n", qop="auth-int"',
        'Digest realm="x, nonce=',
    ],
)
def test_build_authorization_rejects(challenge: str) -> None:
    with pytest.raises(ValueError):
        build_authorization(challenge, "REGISTER", "sip:x", "u", "p")


def test_round_trip_through_own_challenge() -> None:
    auth, _ = make_auth()
    for index in range(len(auth.algorithms)):
        challenge = auth.challenge(REALM)[index]  # one nonce per round: nc counts per nonce
        for nc in (1, 2):
            value = build_authorization(
                challenge, "INVITE", "sip:200@" + REALM, "101", "pw-101", nc=nc, cnonce="fixed"
            )
            assert auth.verify("INVITE", value, REALM, lookup).ok


@pytest.mark.parametrize("secret", [b"k", SECRET, b"x" * 64, b"y" * 65, b"z" * 200])
def test_nonce_mac_is_hmac_sha256(secret: bytes) -> None:
    # The nonce MAC pre-hashes the key pads itself; it must stay plain HMAC-SHA256, so
    # nonces issued by any node sharing the secret keep validating everywhere.
    import hashlib
    import hmac

    auth = DigestAuthenticator(secret)
    for data in (b"", b"nonce body" + REALM.encode(), bytes(range(256))):
        assert auth._nonce_mac(data) == hmac.digest(secret, data, hashlib.sha256)[:16]


@pytest.mark.parametrize(
    ("issuer", "realm", "ok"),
    [
        ("self", REALM, True),  # remembered as recently issued
        ("peer", REALM, True),  # another node with the secret: checked in full
        ("self", "other.realm", False),  # remembered, but for another realm
        ("peer", "other.realm", False),
    ],
)
def test_nonce_from_this_or_another_node(issuer: str, realm: str, ok: bool) -> None:
    auth, clock = make_auth()
    peer = DigestAuthenticator(SECRET, clock=clock, algorithms=auth.algorithms)
    nonce = nonce_of((auth if issuer == "self" else peer).challenge(REALM)[0])
    assert (auth._nonce_issued(nonce, realm) is not None) is ok
    value = header(credentials(auth, nonce=nonce))
    assert auth.verify("REGISTER", value, realm, lookup).ok is ok
