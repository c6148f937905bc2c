"""The guard in the switch: banned sources get silence (or 403 without a challenge), bans
survive a restart, the Server header is configurable, own phones are remembered."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from config import load_config
from peers.switchproc import SwitchConfigFile, numbered_users
from softswitch.server import Switch
from softswitch.sip.address import Address
from tests.integration.capture import capture_sends

pytestmark = pytest.mark.integration

ATTACKER = Address("UDP", "127.0.0.9", 40000)
PHONE = Address("UDP", "127.0.0.2", 40002)


def _options(agent: str = "Yealink") -> bytes:
    return (
        "OPTIONS sip:pbx.test SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.9:40000;branch=z9hG4bK{uuid.uuid4().hex};rport\r\n"
        "Max-Forwards: 70\r\nFrom: <sip:probe@pbx.test>;tag=t1\r\nTo: <sip:pbx.test>\r\n"
        f"Call-ID: {uuid.uuid4().hex}\r\nCSeq: 1 OPTIONS\r\nUser-Agent: {agent}\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def _config(tmp_path: Path, security: str = "allow = []") -> SwitchConfigFile:
    return SwitchConfigFile(tmp_path, users=numbered_users(1), security_toml=security)


async def _answers(switch: Switch, data: bytes, source: Address) -> list[bytes]:
    sent = capture_sends(switch)
    switch._on_message(data, source)
    await asyncio.sleep(0)
    return sent


async def test_a_banned_source_gets_silence_and_others_are_served(tmp_path: Path) -> None:
    switch = Switch(load_config(_config(tmp_path).write()))
    await switch.start()
    try:
        (answer,) = await _answers(switch, _options(), ATTACKER)
        # The default Server header names the product, not its version.
        assert b"\r\nServer: softswitch\r\n" in answer
        assert switch.guard.ban(ATTACKER.host, "test") is not None
        assert await _answers(switch, _options(), ATTACKER) == []
        assert len(await _answers(switch, _options(), PHONE)) == 1
        # A scanner is dropped at its first request, and its address banned.
        assert (
            await _answers(switch, _options("friendly-scanner"), PHONE._replace(host="127.0.0.8"))
            == []
        )
        assert switch.guard.banned("127.0.0.8") is not None
        assert switch.guard.counters["banned_dropped"] == 1
    finally:
        await switch.stop()


async def test_reject_mode_answers_403_without_a_challenge(tmp_path: Path) -> None:
    security = 'allow = []\nbanned_answer = "reject"\nserver_header = "PBX"'
    switch = Switch(load_config(_config(tmp_path, security).write()))
    await switch.start()
    try:
        switch.guard.ban(ATTACKER.host, "test")
        register = _options().replace(b"OPTIONS", b"REGISTER")
        (answer,) = await _answers(switch, register, ATTACKER)
        assert answer.startswith(b"SIP/2.0 403 ")
        assert b"WWW-Authenticate" not in answer
        (answer,) = await _answers(switch, _options(), PHONE)
        assert b"\r\nServer: PBX\r\n" in answer
    finally:
        await switch.stop()


async def test_bans_survive_a_restart_and_grow(tmp_path: Path) -> None:
    path = _config(tmp_path, "allow = []\nban_time = 60\nban_growth = 3").write()
    switch = Switch(load_config(path))
    await switch.start()
    ban = switch.guard.ban(ATTACKER.host, "failed authentications")
    assert ban is not None
    await switch.stop()  # writes the bans not yet written
    again = Switch(load_config(path))
    await again.start()
    try:
        restored = again.guard.banned(ATTACKER.host)
        assert restored is not None and restored.expires_at == ban.expires_at
        assert await _answers(again, _options(), ATTACKER) == []
        # Lifted (as `softswitch security bans --lift` does), then banned again: longer.
        assert await again.store.delete_ban(ATTACKER.host)
        await again.bans.sync()
        assert again.guard.banned(ATTACKER.host) is None
        assert len(await _answers(again, _options(), ATTACKER)) == 1
    finally:
        await again.stop()


async def test_phones_restored_from_the_database_are_never_banned_for_their_account(
    tmp_path: Path,
) -> None:
    import time

    from storage import Binding, open_store

    config = _config(tmp_path, "allow = []\nmax_failures = 2")
    path = config.write()
    aor = "sip:10000@pbx.test"
    async with open_store(load_config(path).database.url) as store:
        await store.save_bindings(
            [
                Binding(
                    aor=aor,
                    contact="sip:10000@127.0.0.2:40002",
                    expires_at=time.time() + 600,
                    q=None,
                    call_id="c",
                    cseq=1,
                    instance_id=None,
                    reg_id=None,
                    path=[],
                    received=str(PHONE),
                    transport="UDP",
                    user_agent="baresip",
                    registered_at=time.time(),
                )
            ]
        )
    switch = Switch(load_config(path))
    await switch.start()
    try:
        for _ in range(10):  # its phone with a stale password: never banned for it
            assert switch.guard.auth_failed(PHONE.host, aor) is None
        switch.guard.auth_failed(ATTACKER.host, aor)
        assert switch.guard.auth_failed(ATTACKER.host, aor) is not None
    finally:
        await switch.stop()


async def test_failed_call_digests_count_and_ban_like_registrations(tmp_path: Path) -> None:
    from softswitch.sip.auth import build_authorization

    switch = Switch(load_config(_config(tmp_path, "allow = []\nmax_failures = 3").write()))
    await switch.start()
    try:
        for attempt in range(1, 5):
            call_id = uuid.uuid4().hex
            invite = (
                "INVITE sip:10000@pbx.test SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.9:40000;branch=z9hG4bK{uuid.uuid4().hex};rport\r\n"
                "Max-Forwards: 70\r\nFrom: <sip:10000@pbx.test>;tag=a\r\n"
                "To: <sip:10000@pbx.test>\r\n"
                f"Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:10000@127.0.0.9:40000>\r\n"
                "{auth}Content-Length: 0\r\n\r\n"
            )
            answers = await _answers(switch, invite.replace("{auth}", "").encode(), ATTACKER)
            if attempt == 4:  # banned after the third wrong password: silence
                assert answers == []
                break
            challenge = next(
                line.split(": ", 1)[1]
                for line in answers[-1].decode().split("\r\n")
                if line.startswith("Proxy-Authenticate:")
            )
            auth = build_authorization(challenge, "INVITE", "sip:10000@pbx.test", "10000", "wrong")
            invite = invite.replace("branch=z9hG4bK", "branch=z9hG4bKx").replace(
                "CSeq: 1", "CSeq: 2"
            )
            answers = await _answers(
                switch,
                invite.replace("{auth}", f"Proxy-Authorization: {auth}\r\n").encode(),
                ATTACKER,
            )
            assert any(a.startswith(b"SIP/2.0 403 ") for a in answers)
        assert switch.guard.counters["auth_failures"] == 3
        assert switch.guard.banned(ATTACKER.host) is not None
    finally:
        await switch.stop()
