"""Loop detection for the B2BUA, beyond Max-Forwards.

Each outbound INVITE's Via branch carries this switch's marker: a token random per process
and digests of routing inputs (the dialled user and the caller as received), in the manner
of RFC 3261 16.3 item 4: the digest of the INVITE that caused it, then the digests of our
markers that INVITE itself carried (a B2BUA starts each leg's Via afresh, so the history of
earlier rounds travels in the marker). A new INVITE arriving with our marker has been
through this switch before:

- in the top Via: we sent it straight to ourselves (a contact or gateway that is our own
  address): a loop;
- further down (a proxy carried it back): a loop when the digest of this INVITE's routing
  inputs is one we stamped, else a legitimate spiral (e.g. a call out through a carrier to
  another tenant's number on this switch) -- a loop repeats its inputs within a round.

A carrier that is itself a B2BUA drops our Via; Max-Forwards (483) still ends such a loop.
A gateway that is one of our own listening addresses is caught before anything is sent.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import secrets
from collections.abc import Iterable

from softswitch.sip.message import SipRequest, new_branch

__all__ = ["LoopGuard"]

_WILDCARDS = frozenset({"0.0.0.0", "::"})
#: Most digests one marker carries (a loop shows within a few rounds; the Via stays short).
MAX_ROUNDS = 8


class LoopGuard:
    """Stamps outbound INVITEs and recognises them when they come back."""

    __slots__ = ("_key", "_local_hosts", "_marker", "_wildcard")

    def __init__(self, local_hosts: Iterable[str] = ()) -> None:
        token = secrets.token_hex(3)
        self._key = token.encode()
        self._marker = re.compile(rf"branch=z9hG4bK[0-9a-f]*\.{token}((?:[0-9a-f]{{8}})+)")
        self._local_hosts = frozenset(h.lower() for h in local_hosts)
        self._wildcard = not self._local_hosts.isdisjoint(_WILDCARDS)

    def _digest(self, request: SipRequest) -> str:
        from_ = request.from_
        caller = (from_.uri.user or "") if from_ is not None else ""
        inputs = f"{request.ruri.user or ''}\0{caller}".encode()
        return hashlib.blake2s(inputs, digest_size=4, key=self._key).hexdigest()

    def _stamped(self, request: SipRequest) -> tuple[bool, list[str]]:
        """(our marker is in the top Via, the digests of all our markers in the Vias)."""
        top = False
        digests: list[str] = []
        for position, via in enumerate(request.get_all("Via")):
            match = self._marker.search(via)
            if match is not None:
                top = top or position == 0
                chain = match.group(1)
                digests += (chain[i : i + 8] for i in range(0, len(chain), 8))
        return top, digests

    def branch(self, received: SipRequest) -> str:
        """A Via branch for an INVITE sent on behalf of the ``received`` one."""
        _, earlier = self._stamped(received)
        chain = dict.fromkeys([self._digest(received), *earlier])  # ordered, no repeats
        return f"{new_branch()}.{self._key.decode()}{''.join(list(chain)[:MAX_ROUNDS])}"

    def looped(self, request: SipRequest) -> bool:
        """True when this new INVITE is one of ours come back in a loop (see above)."""
        top, digests = self._stamped(request)
        return top or (bool(digests) and self._digest(request) in digests)

    def is_us(self, host: str, port: int, local_port: int) -> bool:
        """True when ``host``:``port`` is this switch listening on ``local_port``."""
        if port != local_port:
            return False
        host = host.lower().strip("[]")
        if host in self._local_hosts:
            return True
        if not self._wildcard:
            return False
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False
