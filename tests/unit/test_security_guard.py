"""The security guard with a fake clock: counts, decay, bans and their growth, allow lists,
scanners, floods, bounded memory, store sync."""

from __future__ import annotations

import ipaddress
import random
from typing import Any

import pytest

from config import ConfigError
from config.security import SecuritySettings
from softswitch.security.guard import ADMIT, DROP, REJECT, SecurityGuard, trunk_networks
from storage.bans import Ban

ACCOUNT = "sip:100@pbx.example.test"
ATTACKER = "203.0.113.7"
PHONE = "192.0.2.10"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def make(**settings: Any) -> tuple[SecurityGuard, Clock]:
    clock = Clock()
    return SecurityGuard(SecuritySettings(**settings), clock), clock


def request(method: str = "REGISTER", agent: str = "Yealink SIP-T46S 66.86.0.15") -> bytes:
    return (
        f"{method} sip:pbx.example.test SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 203.0.113.7:5060;branch=z9hG4bK1\r\n"
        "From: <sip:100@pbx.example.test>;tag=1\r\nTo: <sip:100@pbx.example.test>\r\n"
        f"Call-ID: a\r\nCSeq: 1 {method}\r\nuser-agent:  {agent}\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def test_a_fast_guesser_is_banned_at_the_source_limit() -> None:
    guard, clock = make(max_failures=10, failure_window=60)
    for attempt in range(1, 11):
        clock.now += 0.1
        assert guard.screen(request(), ATTACKER) == ADMIT
        ban = guard.auth_failed(ATTACKER, ACCOUNT)
        assert (ban is not None) == (attempt == 10)
    assert guard.screen(request(), ATTACKER) == DROP
    assert guard.banned(ATTACKER) is not None
    assert guard.counters["bans"] == 1 and guard.counters["banned_dropped"] == 1
    assert [b.address for b in guard.take_unsaved()] == [ATTACKER]


def test_failures_decay_so_a_rare_mistake_never_bans() -> None:
    guard, clock = make(max_failures=5, failure_window=60, account_max_failures=1000)
    for _ in range(100):  # one wrong password every 15 s drains faster than it fills
        clock.now += 15
        assert guard.auth_failed(PHONE, ACCOUNT) is None


def test_a_slow_guesser_under_the_source_rate_is_stopped_by_the_account_window() -> None:
    guard, clock = make(
        max_failures=10, failure_window=60, account_max_failures=20, account_window=3600
    )
    banned_at = None
    for attempt in range(1, 200):
        clock.now += 10  # 6 a minute: the per-source count never reaches 10
        if guard.screen(request(), ATTACKER) != ADMIT:
            break
        if guard.auth_failed(ATTACKER, ACCOUNT) is not None:
            banned_at = attempt
    assert banned_at is not None and banned_at <= 21
    assert guard.banned(ATTACKER) is not None
    assert guard.banned(ATTACKER).reason == "account under attack"  # type: ignore[union-attr]
    # Once the account is under attack, a second guesser is banned at its first failure.
    assert guard.auth_failed("198.51.100.9", ACCOUNT) is not None


def test_the_accounts_own_phones_are_never_banned_nor_locked_out() -> None:
    guard, clock = make(max_failures=3, account_max_failures=5)
    guard.remember(ACCOUNT, PHONE)
    for _ in range(50):
        clock.now += 1
        guard.auth_failed(ATTACKER, ACCOUNT)
        assert guard.auth_failed(PHONE, ACCOUNT) is None  # even with a wrong password
    assert guard.screen(request(), PHONE) == ADMIT
    assert guard.banned(ATTACKER) is not None
    assert guard.auth_succeeded(PHONE, ACCOUNT) is False  # known address: no alarm


def test_success_from_a_new_address_after_failures_raises_an_alarm() -> None:
    guard, clock = make(max_failures=100, account_max_failures=100, alarm_after_failures=5)
    guard.remember(ACCOUNT, PHONE)
    for _ in range(6):
        clock.now += 1
        guard.auth_failed("198.51.100.1", ACCOUNT)
    assert guard.auth_succeeded("198.51.100.2", ACCOUNT) is True
    assert guard.counters["alarms"] == 1
    assert guard.auth_succeeded("198.51.100.2", ACCOUNT) is False  # now a known address


def test_bans_grow_on_repeat_offences_up_to_the_maximum() -> None:
    guard, clock = make(ban_time=60, ban_growth=4, max_ban_time=1000, offence_memory=86400)
    lengths = []
    for _ in range(4):
        ban = guard.ban(ATTACKER, "test")
        assert ban is not None
        lengths.append(ban.expires_at - ban.banned_at)
        assert guard.ban(ATTACKER, "again") is None  # already banned
        clock.now = ban.expires_at + 1
        assert guard.screen(request(), ATTACKER) == ADMIT  # the ban ended
    assert lengths == [60, 240, 960, 1000]
    clock.now += 86400 + 1001  # past the offence memory: a fresh start
    guard.sync([])
    ban = guard.ban(ATTACKER, "test")
    assert ban is not None and ban.offences == 1


def test_allow_lists_and_trunks_are_never_banned_nor_limited() -> None:
    from config.models import Tenant

    tenant = Tenant.model_validate(
        {
            "name": "t",
            "domain": "pbx.example.test",
            "trunks": [
                {
                    "name": "carrier",
                    "gateways": [{"host": "198.51.100.5"}, {"host": "sip.carrier.example"}],
                    "inbound_addresses": ["192.0.2.128/25"],
                }
            ],
        }
    )
    networks = trunk_networks([tenant])
    assert sorted(map(str, networks)) == ["192.0.2.128/25", "198.51.100.5/32"]
    clock = Clock()
    guard = SecurityGuard(SecuritySettings(allow=["10.1.0.0/16"], rate=1, burst=1), clock, networks)
    for host in ("10.1.2.3", "198.51.100.5", "192.0.2.200"):
        for _ in range(50):
            assert guard.auth_failed(host, ACCOUNT) is None
            assert guard.screen(request("OPTIONS"), host) == ADMIT
        assert guard.ban(host, "manual") is None
        assert guard.screen(request(agent="friendly-scanner"), host) == ADMIT


@pytest.mark.parametrize(
    "agent", ["friendly-scanner", "sipvicious 0.3.4", "SIPCLI/v1.8", "VaxSIPUserAgent/3.1"]
)
def test_scanners_are_dropped_and_banned(agent: str) -> None:
    guard, _ = make()
    assert guard.screen(request("OPTIONS", agent), ATTACKER) == DROP
    assert guard.banned(ATTACKER) is not None
    assert guard.screen(request("OPTIONS"), ATTACKER) == DROP  # whatever it claims next


def test_the_scanner_list_is_configurable() -> None:
    guard, _ = make(scanner_user_agents=["evil-dialer"], ban_scanners=False)
    assert guard.screen(request(agent="friendly-scanner"), ATTACKER) == ADMIT
    assert guard.screen(request(agent="Evil-Dialer 2"), ATTACKER) == DROP
    assert guard.banned(ATTACKER) is None


def test_a_flood_from_one_source_is_limited_and_then_banned() -> None:
    guard, clock = make(rate=10, burst=20, flood_ban_after=100)
    verdicts = []
    for _ in range(200):
        clock.now += 0.001
        verdicts.append(guard.screen(request("OPTIONS"), ATTACKER))
    assert verdicts[:20] == [ADMIT] * 20
    assert verdicts.count(ADMIT) < 25
    assert guard.banned(ATTACKER) is not None and guard.banned(ATTACKER).reason == "flood"  # type: ignore[union-attr]
    # Other sources, responses and non-limited methods are untouched.
    assert guard.screen(request("OPTIONS"), PHONE) == ADMIT
    assert guard.screen(request("BYE"), "192.0.2.11") == ADMIT


def test_a_steady_source_below_the_rate_is_never_limited() -> None:
    guard, clock = make(rate=10, burst=20)
    for _ in range(1000):
        clock.now += 0.2
        assert guard.screen(request("REGISTER"), PHONE) == ADMIT


def test_banned_answer_reject_answers_requests_but_not_acks_or_responses() -> None:
    guard, _ = make(banned_answer="reject")
    guard.ban(ATTACKER, "test")
    assert guard.screen(request("INVITE"), ATTACKER) == REJECT
    assert guard.screen(request("ACK"), ATTACKER) == DROP
    assert guard.screen(b"SIP/2.0 200 OK\r\n\r\n", ATTACKER) == DROP


def test_memory_stays_bounded_under_random_sources() -> None:
    guard, clock = make(max_tracked=256, max_failures=1000, account_max_failures=100000)
    rng = random.Random(7)
    for n in range(20_000):
        host = str(ipaddress.IPv4Address(rng.getrandbits(32)))
        clock.now += 0.0001
        guard.screen(request("OPTIONS" if n % 2 else "INVITE"), host)
        guard.auth_failed(host, f"sip:{n}@pbx.example.test")
        if n % 50 == 0:
            guard.ban(host, "test")
        guard.auth_succeeded(host, f"sip:{n % 300}@pbx.example.test")
    sizes = [
        len(guard._sources),
        len(guard._accounts),
        len(guard._buckets or ()),
        len(guard._bans),
        len(guard._known),
        len(guard._allowed),
    ]
    assert max(sizes) <= 256


def test_sync_follows_lifts_and_adopts_other_nodes_bans() -> None:
    guard, clock = make()
    ban = guard.ban(ATTACKER, "test")
    assert ban is not None
    guard.mark_saved(guard.take_unsaved())
    other = Ban("198.51.100.77", "flood", 1, clock.now, clock.now + 60)
    guard.sync([ban, other])
    assert guard.banned("198.51.100.77") is not None
    guard.sync([other])  # ATTACKER's ban was lifted in the store
    assert guard.banned(ATTACKER) is None and guard.counters["lifted"] == 1
    # A ban not yet written is not mistaken for a lifted one.
    fresh = guard.ban("198.51.100.99", "test")
    guard.sync([other])
    assert fresh is not None and guard.banned("198.51.100.99") is not None


def test_restore_counts_ended_bans_as_offences() -> None:
    guard, clock = make(ban_time=60, ban_growth=2)
    guard.restore([Ban(ATTACKER, "old", 3, clock.now - 600, clock.now - 300)])
    assert guard.screen(request(), ATTACKER) == ADMIT
    ban = guard.ban(ATTACKER, "again")
    assert ban is not None and ban.offences == 4 and ban.expires_at - ban.banned_at == 480


def test_disabled_guard_admits_everything() -> None:
    guard, _ = make(enabled=False)
    assert guard.screen(request(agent="friendly-scanner"), ATTACKER) == ADMIT
    for _ in range(100):
        assert guard.auth_failed(ATTACKER, ACCOUNT) is None


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"allow": ["10.0.0.0/33"]}, "allow"),
        ({"scanner_user_agents": [""]}, "scanner_user_agents"),
        ({"server_header": "a\r\nX: y"}, "server_header"),
        ({"banned_answer": "tarpit"}, "banned_answer"),
        ({"ban_time": 600, "max_ban_time": 60}, "max_ban_time"),
        ({"max_failures": 0}, "max_failures"),
        ({"bogus": 1}, "bogus"),
    ],
)
def test_bad_security_settings_name_the_field(settings: dict[str, Any], field: str) -> None:
    from config import config_from_dict

    with pytest.raises(ConfigError) as error:
        config_from_dict({"security": settings})
    text = str(error.value)
    assert "security" in text
    assert field in text or field == "max_ban_time"


def test_default_server_header_has_no_version() -> None:
    assert SecuritySettings().server_header == "softswitch"


def test_bans_the_store_refused_are_handed_out_again() -> None:
    guard, _ = make()
    guard.ban(ATTACKER, "test")
    first = guard.take_unsaved()
    guard.ban(PHONE, "test")
    guard.requeue(first)
    assert [b.address for b in guard.take_unsaved()] == [ATTACKER, PHONE]
    assert guard.take_unsaved() == []
