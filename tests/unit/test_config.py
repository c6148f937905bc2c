"""Configuration models and loader: table-driven valid and invalid cases."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from config import (
    ConfigError,
    SwitchConfig,
    User,
    config_from_dict,
    example_config_path,
    load_config,
)


def base() -> dict[str, Any]:
    """A small valid configuration to mutate."""
    return {
        "tenants": [
            {
                "name": "acme",
                "domain": "acme.example.test",
                "users": [
                    {"extension": "100", "display_name": "Reception", "password": "pw-100"},
                    {"extension": "101", "display_name": "Alice", "password": "pw-101"},
                ],
            },
            {
                "name": "globex",
                "domain": "globex.example.test",
                "users": [{"extension": "200", "ha1_md5": "0" * 32}],
            },
        ]
    }


Mutation = Callable[[dict[str, Any]], None]


def _user(t: int, u: int, **fields: Any) -> Mutation:
    def apply(d: dict[str, Any]) -> None:
        d["tenants"][t]["users"][u].update(fields)

    return apply


def _add_user(t: int, **fields: Any) -> Mutation:
    return lambda d: d["tenants"][t]["users"].append(dict(fields))


def _set(*path: str | int, value: Any) -> Mutation:
    def apply(d: dict[str, Any]) -> None:
        node: Any = d
        for key in path[:-1]:
            node = node.setdefault(key, {}) if isinstance(key, str) else node[key]
        node[path[-1]] = value

    return apply


def _delete(*path: str | int) -> Mutation:
    def apply(d: dict[str, Any]) -> None:
        node: Any = d
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return apply


INVALID: list[tuple[str, list[Mutation], list[tuple[str, str]]]] = [
    (
        "extension letters",
        [_user(0, 1, extension="10a")],
        [("tenants[0].users[1].extension", "must be digits")],
    ),
    (
        "extension unicode digits",
        [_user(0, 1, extension="\u0661\u0660\u0661")],
        [("tenants[0].users[1].extension", "must be digits")],
    ),
    (
        "extension too short",
        [_user(0, 1, extension="1")],
        [("tenants[0].users[1].extension", "must be 2 to 8 digits")],
    ),
    (
        "extension too long",
        [_user(0, 1, extension="123456789")],
        [("tenants[0].users[1].extension", "must be 2 to 8 digits")],
    ),
    (
        "extension bool",
        [_user(0, 1, extension=True)],
        [("tenants[0].users[1].extension", "must be digits")],
    ),
    (
        "extension missing",
        [_delete("tenants", 0, "users", 1, "extension")],
        [("tenants[0].users[1].extension", "required")],
    ),
    (
        "duplicate extension",
        [_add_user(0, extension="101", username="x", password="p")],
        [
            (
                "tenants[0].users[2].extension",
                "duplicate extension '101' (first at users[1].extension)",
            )
        ],
    ),
    (
        "duplicate username via default",
        [_add_user(0, extension="102", username="101", password="p")],
        [("tenants[0].users[2].username", "duplicate username '101' (first at users[1].username)")],
    ),
    (
        "same extension in two tenants is fine, third dup is not",
        [
            _add_user(1, extension="100", password="p"),
            _add_user(1, extension="100", username="y", password="p"),
        ],
        [
            (
                "tenants[1].users[2].extension",
                "duplicate extension '100' (first at users[1].extension)",
            )
        ],
    ),
    (
        "no credential",
        [_user(0, 0, password=None)],
        [("tenants[0].users[0]", "needs a password, ha1_md5 or ha1_sha256")],
    ),
    (
        "password and ha1",
        [_user(0, 0, ha1_sha256="a" * 64)],
        [("tenants[0].users[0].password", "give either password or ha1_md5/ha1_sha256, not both")],
    ),
    (
        "empty password",
        [_user(0, 0, password="")],
        [("tenants[0].users[0].password", "must not be empty")],
    ),
    (
        "ha1_md5 wrong length",
        [_user(1, 0, ha1_md5="0" * 31)],
        [("tenants[1].users[0].ha1_md5", "must be 32 hex digits (MD5 of username:realm:password)")],
    ),
    (
        "ha1_sha256 not hex",
        [_user(1, 0, ha1_sha256="g" * 64)],
        [
            (
                "tenants[1].users[0].ha1_sha256",
                "must be 64 hex digits (SHA-256 of username:realm:password)",
            )
        ],
    ),
    (
        "username with colon",
        [_user(0, 0, username="a:b")],
        [
            (
                "tenants[0].users[0].username",
                "must be 1 to 64 letters, digits or . _ ~ ! $ & ' ( ) * + , ; = @ -",
            )
        ],
    ),
    (
        "display name control char",
        [_user(0, 0, display_name="Evil\r\nVia: x")],
        [("tenants[0].users[0].display_name", "must not contain control characters")],
    ),
    (
        "caller id not E.164",
        [_user(0, 0, caller_id="0441234567")],
        [("tenants[0].users[0].caller_id", "must be an E.164 number such as +14155550100")],
    ),
    (
        "caller id invalid number",
        [_user(0, 0, caller_id="+1555")],
        [("tenants[0].users[0].caller_id", "is not a valid phone number")],
    ),
    (
        "caller id garbage",
        [_user(0, 0, caller_id="+abc")],
        [("tenants[0].users[0].caller_id", "is not a phone number")],
    ),
    ("user typo key", [_user(0, 0, pasword="x")], [("tenants[0].users[0].pasword", "unknown key")]),
    (
        "user not a table",
        [_set("tenants", 0, "users", 0, value="100")],
        [("tenants[0].users[0]", "must be a table")],
    ),
    (
        "duplicate tenant name",
        [_set("tenants", 1, "name", value="acme")],
        [("tenants[1].name", "duplicate tenant name 'acme' (first at tenants[0].name)")],
    ),
    (
        "duplicate domain case-insensitive",
        [_set("tenants", 1, "domain", value="ACME.example.test")],
        [
            (
                "tenants[1].domain",
                "duplicate domain 'acme.example.test' (first at tenants[0].domain)",
            )
        ],
    ),
    (
        "bad domain",
        [_set("tenants", 0, "domain", value="acme..test")],
        [("tenants[0].domain", "must be a SIP domain (host name or IP address)")],
    ),
    (
        "bad tenant name",
        [_set("tenants", 0, "name", value="-acme")],
        [("tenants[0].name", "must be 1 to 64 letters, digits, '.', '_' or '-', starting alnum")],
    ),
    (
        "tenant missing domain",
        [_delete("tenants", 0, "domain")],
        [("tenants[0].domain", "required")],
    ),
    (
        "several errors at once",
        [
            _user(0, 0, extension="x"),
            _user(1, 0, ha1_md5="z"),
            _set("logging", "level", value="loud"),
        ],
        [
            ("logging.level", "must be 'DEBUG', 'INFO', 'WARNING', 'ERROR' or 'CRITICAL'"),
            ("tenants[0].users[0].extension", "must be digits"),
            (
                "tenants[1].users[0].ha1_md5",
                "must be 32 hex digits (MD5 of username:realm:password)",
            ),
        ],
    ),
    ("unknown section", [_set("sipp", value={})], [("sipp", "unknown key")]),
    (
        "unknown sip key",
        [_set("sip", "max_msg_size", value=1)],
        [("sip.max_msg_size", "unknown key")],
    ),
    (
        "bad transport",
        [_set("sip", "listen", value=[{"transport": "sctp"}])],
        [("sip.listen[0].transport", "must be 'udp', 'tcp' or 'tls'")],
    ),
    (
        "port out of range",
        [_set("sip", "listen", value=[{"transport": "udp", "port": 70000}])],
        [("sip.listen[0].port", "must be less than or equal to 65535")],
    ),
    (
        "bad listen host",
        [_set("sip", "listen", value=[{"transport": "udp", "host": "a b"}])],
        [("sip.listen[0].host", "must be a host name or IP address")],
    ),
    (
        "duplicate listener",
        [_set("sip", "listen", value=[{"transport": "udp"}, {"transport": "UDP", "port": 5060}])],
        [("sip.listen[1]", "duplicate listener (same as listen[0])")],
    ),
    (
        "no listener",
        [_set("sip", "listen", value=[])],
        [("sip.listen", "must have at least 1 item after validation, not 0")],
    ),
    (
        "tls without files",
        [_set("sip", "listen", value=[{"transport": "tls"}])],
        [
            ("sip.tls_certificate", "required when a tls listener is configured"),
            ("sip.tls_private_key", "required when a tls listener is configured"),
        ],
    ),
    (
        "tls files missing",
        [
            _set("sip", "listen", value=[{"transport": "tls"}]),
            _set("sip", "tls_certificate", value="/nonexistent/cert.pem"),
            _set("sip", "tls_private_key", value="/nonexistent/key.pem"),
        ],
        [
            ("sip.tls_certificate", "file not found: /nonexistent/cert.pem"),
            ("sip.tls_private_key", "file not found: /nonexistent/key.pem"),
        ],
    ),
    (
        "bad public host",
        [_set("sip", "public_host", value="exa mple")],
        [("sip.public_host", "must be a host name or IP address")],
    ),
    (
        "t1 above t2",
        [_set("sip", "timers", value={"t1": 5.0, "t2": 4.0})],
        [("sip.timers.t2", "must not be smaller than t1")],
    ),
    (
        "negative t4",
        [_set("sip", "timers", value={"t4": -1})],
        [("sip.timers.t4", "must be greater than 0")],
    ),
    (
        "timer not a number",
        [_set("sip", "timers", value={"t1": "fast"})],
        [("sip.timers.t1", "must be a valid number, unable to parse string as a number")],
    ),
    (
        "tiny max message size",
        [_set("sip", "max_message_size", value=100)],
        [("sip.max_message_size", "must be greater than or equal to 1024")],
    ),
    (
        "max below min expires",
        [_set("registrar", "max_expires", value=30)],
        [("registrar.max_expires", "must not be smaller than min_expires")],
    ),
    (
        "default outside range",
        [_set("registrar", "default_expires", value=7200)],
        [("registrar.default_expires", "must lie between min_expires and max_expires")],
    ),
    (
        "negative qualify",
        [_set("registrar", "qualify_interval", value=-5)],
        [("registrar.qualify_interval", "must be greater than or equal to 0")],
    ),
    (
        "unknown algorithm",
        [_set("auth", "algorithms", value=["SHA-512"])],
        [("auth.algorithms[0]", "must be 'SHA-256', 'MD5', 'SHA-256-sess' or 'MD5-sess'")],
    ),
    (
        "algorithm twice",
        [_set("auth", "algorithms", value=["MD5", "md5"])],
        [("auth.algorithms", "lists an algorithm twice")],
    ),
    (
        "no algorithm",
        [_set("auth", "algorithms", value=[])],
        [("auth.algorithms", "must have at least 1 item after validation, not 0")],
    ),
    (
        "short secret",
        [_set("auth", "secret", value="short")],
        [("auth.secret", "must be at least 16 characters")],
    ),
    (
        "realm with quote",
        [_set("auth", "realm", value='a"b')],
        [("auth.realm", "must be non-empty, without quotes, backslashes or control characters")],
    ),
    (
        "zero nonce lifetime",
        [_set("auth", "nonce_lifetime", value=0)],
        [("auth.nonce_lifetime", "must be greater than 0")],
    ),
    (
        "database scheme",
        [_set("database", "url", value="mysql://h/db")],
        [("database.url", "must start with sqlite:/// or postgresql://")],
    ),
    (
        "sqlite url shape",
        [_set("database", "url", value="sqlite://data.db")],
        [("database.url", "sqlite URLs look like sqlite:///data/softswitch.db")],
    ),
    (
        "postgres without db",
        [_set("database", "url", value="postgresql://u:p@h:5432")],
        [("database.url", "must name the database: postgresql://user:pw@host:port/db")],
    ),
    (
        "postgres bad port",
        [_set("database", "url", value="postgresql://h:99999/db")],
        [("database.url", "has an invalid port")],
    ),
    (
        "log format",
        [_set("logging", "format", value="xml")],
        [("logging.format", "must be 'json' or 'console'")],
    ),
    (
        "collector young threshold",
        [_set("collector", "young_threshold", value=10)],
        [("collector.young_threshold", "must be greater than or equal to 700")],
    ),
    (
        "collector negative interval",
        [_set("collector", "full_interval", value=-1)],
        [("collector.full_interval", "must be greater than or equal to 0")],
    ),
    ("section not a table", [_set("registrar", value=5)], [("registrar", "must be a table")]),
    (
        "tenants not an array",
        [_set("tenants", value={"name": "x"})],
        [("tenants", "must be an array")],
    ),
]


@pytest.mark.parametrize(
    ("mutations", "expected"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID]
)
def test_invalid_configs_report_location_and_message(
    mutations: list[Mutation], expected: list[tuple[str, str]]
) -> None:
    data = base()
    for mutate in mutations:
        mutate(data)
    with pytest.raises(ConfigError) as info:
        config_from_dict(data)
    assert info.value.errors == expected
    assert str(info.value) == "\n".join(f"{loc}: {msg}" for loc, msg in expected)


VALID: list[tuple[str, list[Mutation], Callable[[SwitchConfig], object], object]] = [
    (
        "defaults: udp and tcp on 5060",
        [],
        lambda c: [(x.transport, x.host, x.port) for x in c.sip.listen],
        [("udp", "0.0.0.0", 5060), ("tcp", "0.0.0.0", 5060)],
    ),
    (
        "default timers",
        [],
        lambda c: (c.sip.timers.t1, c.sip.timers.t2, c.sip.timers.t4),
        (0.5, 4.0, 5.0),
    ),
    (
        "default registrar",
        [],
        lambda c: c.registrar.model_dump(),
        {"min_expires": 60, "max_expires": 3600, "default_expires": 3600, "qualify_interval": 0},
    ),
    (
        "default auth",
        [],
        lambda c: (c.auth.realm, c.auth.nonce_lifetime, c.auth.algorithms, c.auth.secret_bytes()),
        (None, 300, ["MD5"], None),
    ),
    (
        "default database",
        [],
        lambda c: (c.database.backend, c.database.sqlite_path),
        ("sqlite", Path("data/softswitch.db")),
    ),
    (
        "default logging",
        [],
        lambda c: (c.logging.level, c.logging.file, c.logging.format),
        ("INFO", Path("data/softswitch.log"), "console"),
    ),
    ("no tenants at all", [_set("tenants", value=[])], lambda c: c.tenants, []),
    (
        "integer extension from TOML",
        [_user(0, 0, extension=100)],
        lambda c: c.tenants[0].users[0].extension,
        "100",
    ),
    ("username defaults to extension", [], lambda c: c.tenants[0].users[1].username, "101"),
    (
        "explicit username",
        [_user(0, 1, username="alice")],
        lambda c: c.tenants[0].user_by_username("alice"),
        "user 101",
    ),
    (
        "caller id normalised",
        [_user(0, 0, caller_id="+1 (415) 555-0100")],
        lambda c: c.tenants[0].users[0].caller_id,
        "+14155550100",
    ),
    (
        "ha1 lower-cased",
        [_user(1, 0, ha1_md5="ABCDEF" + "0" * 26)],
        lambda c: c.tenants[1].users[0].ha1_md5,
        "abcdef" + "0" * 26,
    ),
    (
        "domain lower-cased and found",
        [_set("tenants", 0, "domain", value="ACME.Example.Test")],
        lambda c: c.tenant_for_domain("acme.EXAMPLE.test") is c.tenants[0],
        True,
    ),
    (
        "IP address domain",
        [_set("tenants", 0, "domain", value="192.0.2.10")],
        lambda c: c.tenants[0].domain,
        "192.0.2.10",
    ),
    (
        "bracketed IPv6 domain",
        [_set("tenants", 0, "domain", value="[2001:DB8::1]")],
        lambda c: c.tenants[0].domain,
        "[2001:db8::1]",
    ),
    (
        "IPv6 bind host unbracketed",
        [_set("sip", "listen", value=[{"transport": "udp", "host": "[::]"}])],
        lambda c: c.sip.listen[0].host,
        "::",
    ),
    (
        "tls default port 5061",
        [
            _set(
                "sip",
                "listen",
                value=[{"transport": "TCP", "port": 0}, {"transport": "tcp", "port": 0}],
            )
        ],
        lambda c: [x.transport for x in c.sip.listen],
        ["tcp", "tcp"],
    ),
    (
        "realm defaults to tenant domain",
        [],
        lambda c: c.realm_for(c.tenants[1]),
        "globex.example.test",
    ),
    (
        "configured realm",
        [_set("auth", "realm", value="pbx")],
        lambda c: c.realm_for(c.tenants[1]),
        "pbx",
    ),
    (
        "algorithms canonicalised",
        [_set("auth", "algorithms", value=["md5", "sha-256-SESS"])],
        lambda c: c.auth.algorithms,
        ["MD5", "SHA-256-sess"],
    ),
    (
        "secret bytes",
        [_set("auth", "secret", value="0123456789abcdef")],
        lambda c: c.auth.secret_bytes(),
        b"0123456789abcdef",
    ),
    (
        "postgres url",
        [_set("database", "url", value="postgresql://u:pw@db:5432/switch")],
        lambda c: (c.database.backend, c.database.sqlite_path),
        ("postgresql", None),
    ),
    (
        "absolute sqlite",
        [_set("database", "url", value="sqlite:////var/lib/s.db")],
        lambda c: c.database.sqlite_path,
        Path("/var/lib/s.db"),
    ),
    (
        "log to stderr only",
        [_set("logging", "file", value=""), _set("logging", "level", value="debug")],
        lambda c: (c.logging.file, c.logging.level),
        (None, "DEBUG"),
    ),
]


@pytest.mark.parametrize(
    ("mutations", "probe", "expected"), [c[1:] for c in VALID], ids=[c[0] for c in VALID]
)
def test_valid_configs(
    mutations: list[Mutation], probe: Callable[[SwitchConfig], object], expected: object
) -> None:
    data = base()
    for mutate in mutations:
        mutate(data)
    cfg = config_from_dict(data)
    got = probe(cfg)
    if isinstance(got, User):
        got = f"user {got.extension}"
    assert got == expected


def test_tls_listener_with_existing_files(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("cert")
    key.write_text("key")
    data = base()
    data["sip"] = {
        "listen": [{"transport": "tls"}],
        "tls_certificate": str(cert),
        "tls_private_key": str(key),
    }
    cfg = config_from_dict(data)
    assert (cfg.sip.listen[0].port, cfg.sip.tls_certificate) == (5061, cert)


def test_example_config_loads() -> None:
    cfg = load_config(example_config_path())
    assert [(x.transport, x.host, x.port) for x in cfg.sip.listen] == [
        ("udp", "0.0.0.0", 5060),
        ("tcp", "0.0.0.0", 5060),
    ]
    assert cfg.database.backend == "sqlite"
    # A relative path is the file's neighbour, whatever the working directory.
    assert cfg.database.sqlite_path == example_config_path().resolve().parent / "data/softswitch.db"
    (tenant,) = cfg.tenants
    assert [u.extension for u in tenant.users] == ["100", "101", "102", "103", "104", "105"]
    assert all(u.display_name and u.password for u in tenant.users)
    assert cfg.tenant_for_domain(tenant.domain) is tenant


HA1_CASES = [
    # RFC 2617 3.5 example user: H(Mufasa:testrealm@host.com:Circle Of Life)
    (
        {"extension": "10", "username": "Mufasa", "password": "Circle Of Life"},
        "testrealm@host.com",
        "MD5",
        "939e7578ed9e3c518a452acee763bce9",
    ),
    (
        {"extension": "10", "username": "Mufasa", "password": "Circle Of Life"},
        "testrealm@host.com",
        "md5-sess",
        "939e7578ed9e3c518a452acee763bce9",
    ),
    (
        {"extension": "10", "username": "Mufasa", "password": "Circle of Life"},
        "http-auth@example.org",
        "SHA-256",
        hashlib.sha256(b"Mufasa:http-auth@example.org:Circle of Life").hexdigest(),
    ),
    ({"extension": "10", "ha1_md5": "A" * 32}, "any", "MD5", "a" * 32),
    ({"extension": "10", "ha1_md5": "a" * 32}, "any", "SHA-256", None),
    ({"extension": "10", "ha1_sha256": "b" * 64}, "any", "SHA-256-sess", "b" * 64),
    ({"extension": "10", "password": "x"}, "any", "SHA-512", None),
]


@pytest.mark.parametrize(("fields", "realm", "algorithm", "expected"), HA1_CASES)
def test_user_ha1(fields: dict[str, Any], realm: str, algorithm: str, expected: str | None) -> None:
    assert User.model_validate(fields).ha1(realm, algorithm) == expected


def test_password_not_in_repr() -> None:
    user = User.model_validate({"extension": "10", "password": "hunter2-secret"})
    assert "hunter2" not in repr(user)
    assert "hunter2" not in str(config_from_dict(base()))


def test_models_are_frozen() -> None:
    cfg = config_from_dict(base())
    with pytest.raises(ValidationError):
        cfg.tenants[0].users[0].extension = "999"


def test_model_itself_rejects_duplicates() -> None:
    data = base()
    data["tenants"][1]["domain"] = "acme.example.test"
    with pytest.raises(ValidationError):
        SwitchConfig.model_validate(data)


def test_nothing_half_valid_and_input_untouched() -> None:
    data = base()
    data["tenants"].append(copy.deepcopy(data["tenants"][0]))
    data["tenants"][2].update(name="third", domain="third.test")
    data["tenants"][2]["users"][1]["extension"] = "1"
    before = copy.deepcopy(data)
    with pytest.raises(ConfigError) as info:
        config_from_dict(data)
    assert info.value.errors == [("tenants[2].users[1].extension", "must be 2 to 8 digits")]
    assert data == before


def test_root_not_a_table() -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict([1, 2])  # type: ignore[arg-type]
    assert info.value.errors == [("config", "must be a table")]


FILE_CASES: list[tuple[str, bytes, list[tuple[str, str]]]] = [
    (
        "toml syntax error",
        b"[sip]\nmax_message_size = \n",
        [("line 2, column 20", "Invalid value")],
    ),
    ("toml unterminated", b"[sip]\nlisten = [\n", [("end of file", "Invalid value")]),
    (
        "toml duplicate key",
        b'[auth]\nrealm = "a"\nrealm = "b"\n',
        [("line 3, column 12", "Cannot overwrite a value")],
    ),
    ("not utf-8", b'[auth]\nrealm = "\xff"\n', [("line 2", "not valid UTF-8")]),
    ("typo in file", b"[registrar]\nmax_expire = 10\n", [("registrar.max_expire", "unknown key")]),
    (
        "user error in file",
        b'[[tenants]]\nname = "t"\ndomain = "t.test"\n[[tenants.users]]\n'
        b'extension = "12x"\npassword = "p"\n',
        [("tenants[0].users[0].extension", "must be digits")],
    ),
]


@pytest.mark.parametrize(
    ("content", "expected"), [c[1:] for c in FILE_CASES], ids=[c[0] for c in FILE_CASES]
)
def test_load_config_file_errors(
    tmp_path: Path, content: bytes, expected: list[tuple[str, str]]
) -> None:
    path = tmp_path / "switch.toml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.errors == expected
    assert info.value.source == str(path)


def test_load_config_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.errors == [(str(path), "cannot read file: No such file or directory")]


def test_empty_file_is_all_defaults(tmp_path: Path) -> None:
    path = tmp_path / "empty.toml"
    path.write_text("")
    cfg = load_config(path)
    assert cfg.tenants == [] and cfg.registrar.default_expires == 3600


def test_commented_trunk_example_is_valid(tmp_path: Path) -> None:
    """The example's commented-out trunk, once uncommented, is a valid configuration."""
    text = example_config_path().read_text()
    head, marker, tail = text.partition("# [[tenants.trunks]]")
    assert marker
    lines = [line[2:] if line.startswith("# ") else line for line in (marker + tail).splitlines()]
    path = tmp_path / "with_trunk.toml"
    path.write_text(head + "\n".join(lines) + "\n")
    config = load_config(path)
    (trunk,) = config.tenants[0].trunks
    assert [g.priority for g in trunk.gateways] == [1, 2]
