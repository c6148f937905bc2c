"""The security guard: bans for password guessing, scanner and flood filtering (sans-I/O).

The switch asks ``screen`` once per datagram or framed message, before parsing it: a
banned source costs one dict lookup, a known scanner's User-Agent one regular-expression
search, a flood one token bucket, all before any transaction or digest work. Digest
verification reports each outcome (``auth_failed`` / ``auth_succeeded``). Failures are
counted per source address and per account in leaky counts (fail2ban's maxretry/findtime,
Kamailio's pike and htable expiry); a source over its limit, or failing against an account
that is under attack (over its own, slower limit), is banned for a time that grows with
every repeat offence. Allow-listed networks (the office, the carriers, trunk addresses)
are never banned nor limited, and an account's own phones (addresses it registered from)
are neither banned for it nor counted against it, so a guesser cannot lock an account out.

Nothing here does I/O: time comes from the clock passed in, new bans wait in
``take_unsaved`` for the store, and stored bans come back through ``restore``/``sync``
(``softswitch.security.keeper`` does both). Memory is bounded by ``max_tracked`` per table.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Sequence

import structlog

from config.models import Tenant
from config.security import SecuritySettings
from softswitch.security.tables import LeakyCounts, TokenBuckets
from storage.bans import Ban

__all__ = ["ADMIT", "DROP", "REJECT", "SecurityGuard", "trunk_networks"]

log = structlog.get_logger(__name__)

#: Verdicts of ``screen``: handle the message, drop it unanswered, answer 403 (no challenge).
ADMIT = 0
DROP = 1
REJECT = 2

#: Methods of new requests a flood is made of (and that cost the switch most to answer).
_LIMITED = frozenset({b"OPTIONS", b"REGISTER", b"INVITE"})
_USER_AGENT = re.compile(rb"\nUser-Agent[ \t]*:[ \t]*([^\r\n]*)", re.IGNORECASE)
#: Addresses each account remembers as its own phones' (most recent kept).
_KNOWN_PER_ACCOUNT = 16

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class SecurityGuard:
    """Counts, bans and screens by source address; see the module docstring."""

    def __init__(
        self,
        settings: SecuritySettings,
        clock: Callable[[], float],
        trusted: Iterable[Network] = (),
    ) -> None:
        self.settings = settings
        self.enabled = settings.enabled
        self._clock = clock
        self._networks: tuple[Network, ...] = (
            *(ipaddress.ip_network(n) for n in settings.allow),
            *trusted,
        )
        self._allowed: dict[str, bool] = {}  # host -> on an allow list (cache)
        self._verdict_banned = REJECT if settings.banned_answer == "reject" else DROP
        # One expression for the whole list: a search per request, not one per fragment.
        fragments = [re.escape(f.encode()) for f in settings.scanner_user_agents]
        self._scanners = re.compile(b"|".join(fragments)) if fragments else None
        limit = settings.max_tracked
        self._sources = LeakyCounts(settings.max_failures / settings.failure_window, limit)
        self._accounts = LeakyCounts(settings.account_max_failures / settings.account_window, limit)
        self._buckets = (
            TokenBuckets(settings.rate, settings.burst, limit) if settings.rate > 0 else None
        )
        self._known: dict[str, list[str]] = {}  # account -> addresses it registered from
        self._bans: dict[str, Ban] = {}  # address -> latest ban (kept for offence memory)
        self._saved: set[str] = set()  # addresses whose current ban is in the store
        self._unsaved: list[Ban] = []
        #: Plain counters (the metrics endpoint reads them).
        self.counters: dict[str, int] = {
            "banned_dropped": 0,
            "banned_rejected": 0,
            "scanner_dropped": 0,
            "flood_dropped": 0,
            "auth_failures": 0,
            "bans": 0,
            "lifted": 0,
            "alarms": 0,
        }

    # -- the request path ------------------------------------------------------------------

    def screen(self, data: bytes, host: str) -> int:
        """ADMIT, DROP or REJECT one inbound message from ``host``, before it is parsed."""
        if not self.enabled:
            return ADMIT
        # The clock only when it is needed: most messages come from known, unbanned hosts.
        ban = self._bans.get(host)
        if ban is not None and self._clock() < ban.expires_at:
            verdict = self._verdict_banned
            if (
                verdict == REJECT
                and not data.startswith(b"SIP/2.0")
                and not data.startswith(b"ACK ")
            ):
                self.counters["banned_rejected"] += 1
                return REJECT
            self.counters["banned_dropped"] += 1
            return DROP
        known = self._allowed.get(host)
        if known is None:
            known = self.allowed(host)
        if known or data.startswith(b"SIP/2.0 "):
            return ADMIT
        scanners = self._scanners
        if scanners is not None:
            agent = _user_agent(data)
            if agent and scanners.search(agent) is not None:
                self.counters["scanner_dropped"] += 1
                if self.settings.ban_scanners:
                    self.ban(host, "scanner", agent.strip().decode("utf-8", "replace"))
                return DROP
        buckets = self._buckets
        if buckets is not None and data[: data.find(b" ", 0, 16)] in _LIMITED:
            refused = buckets.take(host, self._clock())
            if refused:
                self.counters["flood_dropped"] += 1
                after = self.settings.flood_ban_after
                if after and refused >= after:
                    self.ban(host, "flood", f"{refused} requests over the rate limit")
                return DROP
        return ADMIT

    def trust(self, trusted: Iterable[Network]) -> None:
        """Never ban these networks besides the configured allow list (the trunks' addresses,
        given again when provisioning changes them)."""
        self._networks = (
            *(ipaddress.ip_network(n) for n in self.settings.allow),
            *trusted,
        )
        self._allowed.clear()

    def allowed(self, host: str) -> bool:
        """True when ``host`` is on an allow list (configured, or a trunk's address)."""
        known = self._allowed.get(host)
        if known is not None:
            return known
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            found = False
        else:
            found = any(address.version == n.version and address in n for n in self._networks)
        if len(self._allowed) >= self.settings.max_tracked:
            self._allowed.clear()
        self._allowed[host] = found
        return found

    def banned(self, host: str) -> Ban | None:
        """The active ban of ``host``, if any."""
        ban = self._bans.get(host)
        return ban if ban is not None and ban.active(self._clock()) else None

    # -- digest outcomes -------------------------------------------------------------------

    def auth_failed(self, host: str, account: str) -> Ban | None:
        """A failed digest authentication from ``host`` for ``account`` (an AOR, also for
        unknown users); returns the ban it caused, if any."""
        if not self.enabled:
            return None
        self.counters["auth_failures"] += 1
        if self.allowed(host) or host in self._known.get(account, ()):
            return None  # the office, a carrier, or one of the account's own phones
        now = self._clock()
        source_level = self._sources.add(host, now)
        account_level = self._accounts.add(account, now)
        settings = self.settings
        # The n-th failure counts as n while the earlier ones have drained less than one.
        if account_level > settings.account_max_failures - 1:
            return self.ban(host, "account under attack", account)
        if source_level > settings.max_failures - 1:
            return self.ban(host, "failed authentications", account)
        return None

    def auth_succeeded(self, host: str, account: str) -> bool:
        """A successful digest authentication (a registration or a call) from ``host`` for
        ``account``; True when it raised an alarm: a new address after many failures."""
        if not self.enabled:
            return False
        self._sources.forget(host)
        known = self._known.get(account)
        if known is not None and host in known:
            return False
        failures = self._accounts.level(account, self._clock())
        alarm = failures > self.settings.alarm_after_failures - 1
        if alarm:
            self.counters["alarms"] += 1
            log.warning(
                "security_alarm",
                what="authenticated after failures from a new address",
                account=account,
                address=host,
                recent_failures=round(failures, 1),
            )
        self.remember(account, host)
        return alarm

    def remember(self, account: str, host: str) -> None:
        """Note ``host`` as an address of ``account``'s own phones (also from stored
        registrations at start)."""
        known = self._known.get(account)
        if known is None:
            if len(self._known) >= self.settings.max_tracked:
                del self._known[next(iter(self._known))]
            self._known[account] = [host]
        elif host not in known:
            known.append(host)
            if len(known) > _KNOWN_PER_ACCOUNT:
                del known[0]

    # -- bans ------------------------------------------------------------------------------

    def ban(self, host: str, reason: str, detail: str = "") -> Ban | None:
        """Ban ``host`` now (None when it is allow-listed or already banned); the ban's
        length grows with the address's earlier bans within ``offence_memory``."""
        if self.allowed(host):
            return None
        settings = self.settings
        now = self._clock()
        earlier = self._bans.get(host)
        if earlier is not None and earlier.active(now):
            return None
        offences = 1
        if earlier is not None and now - earlier.expires_at <= settings.offence_memory:
            offences = earlier.offences + 1
        length = min(
            settings.ban_time * settings.ban_growth ** (offences - 1), settings.max_ban_time
        )
        ban = Ban(host, reason, offences, now, now + length)
        bans = self._bans
        if host not in bans and len(bans) >= settings.max_tracked:
            oldest = next(iter(bans))
            del bans[oldest]
            self._saved.discard(oldest)
        bans[host] = ban
        self._saved.discard(host)
        self._unsaved.append(ban)
        self._sources.forget(host)
        self.counters["bans"] += 1
        log.warning(
            "source_banned",
            address=host,
            reason=reason,
            detail=detail,
            offences=offences,
            seconds=round(length),
        )
        return ban

    def lift(self, host: str) -> bool:
        """Lift ``host``'s ban and forget its offences; False when it had none."""
        ban = self._bans.pop(host, None)
        self._saved.discard(host)
        if ban is None:
            return False
        self.counters["lifted"] += 1
        log.info("ban_lifted", address=host)
        return True

    def active_bans(self) -> list[Ban]:
        """Bans in force, by address."""
        now = self._clock()
        return sorted((b for b in self._bans.values() if b.active(now)), key=_address)

    def take_unsaved(self) -> list[Ban]:
        """Bans made since the last call, for the store; ``mark_saved`` once stored."""
        unsaved, self._unsaved = self._unsaved, []
        return unsaved

    def requeue(self, bans: Sequence[Ban]) -> None:
        """Bans the store could not take: handed out again by the next ``take_unsaved``."""
        self._unsaved[:0] = bans

    def mark_saved(self, bans: Sequence[Ban]) -> None:
        for ban in bans:
            if self._bans.get(ban.address) is ban:
                self._saved.add(ban.address)

    def restore(self, bans: Iterable[Ban]) -> None:
        """Bans read from the store at start (ended ones too: their offences count)."""
        for ban in bans:
            current = self._bans.get(ban.address)
            if current is None or current.expires_at < ban.expires_at:
                self._bans[ban.address] = ban
                self._saved.add(ban.address)

    def sync(self, stored_active: Sequence[Ban]) -> None:
        """Follow the store: a stored ban this guard had that is gone was lifted (by
        `softswitch security bans --lift` or another node); one it lacks is adopted."""
        now = self._clock()
        stored = {b.address for b in stored_active}
        for host in [h for h in self._saved if h not in stored]:
            ban = self._bans.get(host)
            if ban is not None and ban.active(now):
                self.lift(host)
        self.restore(stored_active)
        # Ended bans past the offence memory are forgotten.
        horizon = now - self.settings.offence_memory
        for host in [h for h, b in self._bans.items() if b.expires_at < horizon]:
            del self._bans[host]
            self._saved.discard(host)


def _user_agent(data: bytes) -> bytes:
    """The User-Agent header's value, lower-cased (b"" when there is none): a plain search
    for the usual spelling first, the case-insensitive expression only when it fails."""
    start = data.find(b"\nUser-Agent:")
    if start >= 0:
        start += 12
        end = data.find(b"\r", start)
        return data[start:end].lower() if end >= 0 else data[start:].lower()
    match = _USER_AGENT.search(data)
    return match.group(1).lower() if match is not None else b""


def _address(ban: Ban) -> str:
    return ban.address


def trunk_networks(tenants: Iterable[Tenant]) -> list[Network]:
    """Every trunk's inbound addresses and gateway IPs: carriers are never banned."""
    networks: list[Network] = []
    for tenant in tenants:
        for trunk in tenant.trunks:
            networks.extend(trunk.networks())
            for gateway in trunk.gateways:
                try:
                    networks.append(ipaddress.ip_network(gateway.host))
                except ValueError:
                    continue  # a host name: its addresses are not known here
    return networks
