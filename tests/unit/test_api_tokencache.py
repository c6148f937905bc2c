"""Bearer tokens verified recently (softswitch.api.tokencache): kept a few seconds, never
past the token's expiry, forgotten on revoke, and never for a wrong secret."""

from __future__ import annotations

from softswitch.api.principal import Principal
from softswitch.api.roles import Role
from softswitch.api.tokencache import TTL, VerifiedTokens


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def principal(token_id: str = "t1") -> Principal:
    return Principal("alice", Role("operator"), frozenset(), None, None, {}, token_id)


def test_a_verified_token_is_kept_for_the_ttl_only() -> None:
    clock = Clock()
    tokens = VerifiedTokens(clock=clock)
    alice = principal()
    tokens.put("t1", "hash-1", alice, None)
    assert tokens.get("t1", "hash-1") is alice
    clock.now += TTL - 0.01
    assert tokens.get("t1", "hash-1") is alice
    clock.now += 0.02
    assert tokens.get("t1", "hash-1") is None  # verified against the Store again


def test_never_past_the_tokens_own_expiry() -> None:
    clock = Clock()
    tokens = VerifiedTokens(clock=clock)
    tokens.put("t1", "hash-1", principal(), expires_in=1.0)
    clock.now += 1.0
    assert tokens.get("t1", "hash-1") is None
    tokens.put("t2", "hash-2", principal("t2"), expires_in=0.0)  # expired: not kept
    assert tokens.get("t2", "hash-2") is None


def test_a_wrong_secret_for_a_cached_id_is_refused() -> None:
    tokens = VerifiedTokens()
    tokens.put("t1", "hash-1", principal(), None)
    assert tokens.get("t1", "hash-of-a-guess") is None
    assert tokens.get("t1", "hash-1") is not None


def test_revoked_and_changed_logins_are_forgotten() -> None:
    tokens = VerifiedTokens()
    tokens.put("t1", "hash-1", principal(), None)
    tokens.put("t2", "hash-2", principal("t2"), None)
    tokens.forget("t1")  # one token revoked
    assert tokens.get("t1", "hash-1") is None
    assert tokens.get("t2", "hash-2") is not None
    tokens.forget()  # a login changed: every token verified again
    assert tokens.get("t2", "hash-2") is None
