"""Loop detection for the B2BUA, beyond Max-Forwards.

Each outbound INVITE's Via branch carries this switch's marker: a token random per process
and a digest of the call's routing inputs (the dialled user and the caller as received),
in the manner of RFC 3261 16.3 item 4. A new INVITE arriving with our marker has been
through this switch before:

- in the top Via: we sent it straight to ourselves (a contact or gateway that is our own
  address): a loop;
- further down (a proxy carried it back): a loop when the digest of this INVITE's routing
  inputs is the one we stamped, else a legitimate spiral (e.g. a call out through a carrier
  to another tenant's number on this switch).

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


class LoopGuard:
    """Stamps outbound INVITEs and recognises them when they come back."""

    __slots__ = ("_key", "_local_hosts", "_marker", "_wildcard")

    def __init__(self, local_hosts: Iterable[str] = ()) -> None:
        token = secrets.token_hex(3)
        self._key = token.encode()
        self._marker = re.compile(rf"branch=z9hG4bK[^;,\s]*\.{token}([0-9a-f]{{8}})")
        self._local_hosts = frozenset(h.lower() for h in local_hosts)
        self._wildcard = not self._local_hosts.isdisjoint(_WILDCARDS)

    def _digest(self, request: SipRequest) -> str:
        from_ = request.from_
        caller = (from_.uri.user or "") if from_ is not None else ""
        inputs = f"{request.ruri.user or ''}\0{caller}".encode()
        return hashlib.blake2s(inputs, digest_size=4, key=self._key).hexdigest()

    def branch(self, received: SipRequest) -> str:
        """A Via branch for an INVITE sent on behalf of the ``received`` one."""
        return f"{new_branch()}.{self._key.decode()}{self._digest(received)}"

    def looped(self, request: SipRequest) -> bool:
        """True when this new INVITE is one of ours come back unchanged (see above)."""
        vias = request.get_all("Via")
        digest: str | None = None
        for position, via in enumerate(vias):
            match = self._marker.search(via)
            if match is None:
                continue
            if position == 0:
                return True
            if digest is None:
                digest = self._digest(request)
            if match.group(1) == digest:
                return True
        return False

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
