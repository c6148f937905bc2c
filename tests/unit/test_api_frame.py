"""The admin API's frame without a server: roles and permissions, scopes, secrets, cursors."""

from __future__ import annotations

import pyotp
import pytest

from config.models import SwitchConfig
from softswitch.api.errors import ApiError
from softswitch.api.paging import decode_cursor, encode_cursor, page_of
from softswitch.api.principal import Principal
from softswitch.api.roles import Area, Role, check_permissions, effective_permissions
from softswitch.api.security import (
    hash_password,
    new_token,
    parse_token,
    verify_password,
    verify_secret,
    verify_totp,
)
from storage.logins import ApiLogin

TENANT = SwitchConfig.model_validate(
    {
        "tenants": [
            {
                "name": "acme",
                "domain": "acme.test",
                "users": [{"extension": "100", "password": "pw100"}],
            }
        ]
    }
).tenants[0]


def test_role_ceilings_follow_the_guides() -> None:
    operator = effective_permissions(Role.OPERATOR, {})
    assert all(operator[a] == "crud" for a in Area)
    user = effective_permissions(Role.USER, {})
    assert user[Area.CALL_HISTORY] == "r" and Area.MONITORING not in user
    assert Area.ANALYTICS not in user and Area.ADMINS not in user
    supervisor = effective_permissions(Role.SUPERVISOR, {})
    assert supervisor[Area.MONITORING] == "c" and "d" not in supervisor[Area.CALLS]
    assert Area.METRICS not in effective_permissions(Role.RESELLER, {})


def test_own_permissions_only_narrow_the_role() -> None:
    narrowed = effective_permissions(Role.OFFICE_MANAGER, {"calls": "r", "users": ""})
    assert narrowed[Area.CALLS] == "r" and Area.USERS not in narrowed
    assert check_permissions(Role.OFFICE_MANAGER, {"calls": "dr"}) == {"calls": "rd"}
    with pytest.raises(ValueError, match=r"permissions\.calls: role supervisor may not have 'd'"):
        check_permissions(Role.SUPERVISOR, {"calls": "rd"})
    with pytest.raises(ValueError, match="unknown area"):
        check_permissions(Role.OPERATOR, {"weather": "r"})
    with pytest.raises(ValueError, match="letters"):
        check_permissions(Role.OPERATOR, {"calls": "x"})


def _principal(role: str, **scope: object) -> Principal:
    return Principal.of(ApiLogin(name="p", role=role, **scope), "tok")  # type: ignore[arg-type]


def test_scopes() -> None:
    operator = _principal("operator")
    assert operator.sees_tenant("anything") and operator.extensions(TENANT) is None
    manager = _principal("office_manager", tenants=["acme"])
    assert manager.sees_tenant("acme") and not manager.sees_tenant("globex")
    assert manager.extensions(TENANT) is None
    user = _principal("user", tenants=["acme"], extension="100")
    assert user.extensions(TENANT) == frozenset({"100"})
    site = _principal("site_manager", tenants=["acme"], site="north")
    assert site.extensions(TENANT) == frozenset()  # nobody is in a site yet
    assert manager.outranks(Role.SUPERVISOR) and not manager.outranks(Role.RESELLER)
    assert operator.outranks(Role.OPERATOR) and not manager.outranks(Role.OFFICE_MANAGER)


def test_passwords_tokens_and_totp() -> None:
    stored = hash_password("s3cret-enough")
    assert stored.startswith("$argon2id$")
    assert verify_password(stored, "s3cret-enough")
    assert not verify_password(stored, "wrong")
    assert not verify_password(None, "anything")
    made = new_token()
    token_id, secret = parse_token(made.text)  # type: ignore[misc]
    assert token_id == made.id and verify_secret(made.secret_hash, secret)
    assert not verify_secret(made.secret_hash, secret + "x")
    for junk in ("", "Bearer x", "ss_", "ss_short_x", "ss_0123456789abcdef_"):
        assert parse_token(junk) is None
    key = pyotp.random_base32()
    assert verify_totp(key, pyotp.TOTP(key).now())
    assert not verify_totp(key, None) and not verify_totp(key, "12a456")


def test_cursors_and_pages() -> None:
    items = list(range(7))
    first = page_of(items, None, 3)
    assert (first.total, first.items) == (7, [0, 1, 2])
    second = page_of(items, first.next_cursor, 3)
    last = page_of(items, second.next_cursor, 3)
    assert second.items == [3, 4, 5] and last.items == [6] and last.next_cursor is None
    assert decode_cursor(encode_cursor([1.5, "x"])) == [1.5, "x"]
    for bad in ("%%%", encode_cursor(-1), encode_cursor("x"), "e30"):
        with pytest.raises(ApiError) as caught:
            page_of(items, bad, 3)
        assert caught.value.status == 422 and caught.value.errors[0].field == "query.cursor"
