"""Bearer tokens verified recently, so a request costs no database round trip for them.

Checking a token read the token and then its login from the Store: two round trips on
every request. A verified token's principal is kept for `TTL` seconds (never past the
token's own expiry). A revocation, a login changed or deleted, through this API (or the
portal on it) forgets the cached entries at once; one made elsewhere (`softswitch token
revoke`, another node) takes effect within `TTL` seconds: that is the bound.

Only a token whose secret hashed to the stored hash is kept, under its id together with
that hash, so a guessed secret for a cached id is still refused.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass

from softswitch.api.principal import Principal

__all__ = ["TTL", "VerifiedTokens"]

TTL = 5.0  # seconds a verification is trusted without asking the Store again
_MAX_ENTRIES = 10_000  # beyond this, the cache starts over (bounded memory)


@dataclass(frozen=True, slots=True)
class _Verified:
    secret_hash: str
    principal: Principal
    until: float


class VerifiedTokens:
    """token id -> the principal it stood for when verified, for a few seconds."""

    def __init__(self, ttl: float = TTL, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._entries: dict[str, _Verified] = {}

    def get(self, token_id: str, secret_hash: str) -> Principal | None:
        """The cached principal of a token whose secret hashes to `secret_hash`."""
        entry = self._entries.get(token_id)
        if entry is None:
            return None
        if entry.until <= self.clock():
            self._entries.pop(token_id, None)
            return None
        if not hmac.compare_digest(entry.secret_hash, secret_hash):
            return None
        return entry.principal

    def put(
        self, token_id: str, secret_hash: str, principal: Principal, expires_in: float | None
    ) -> None:
        """Keep a verified token (`expires_in`: seconds until the token itself expires)."""
        ttl = self.ttl if expires_in is None else min(self.ttl, expires_in)
        if ttl <= 0:
            return
        if len(self._entries) >= _MAX_ENTRIES:
            self._entries.clear()
        self._entries[token_id] = _Verified(secret_hash, principal, self.clock() + ttl)

    def forget(self, token_id: str | None = None) -> None:
        """A token revoked (or, with no id, any login or token changed): verify again."""
        if token_id is None:
            self._entries.clear()
        else:
            self._entries.pop(token_id, None)
