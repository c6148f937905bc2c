"""`softswitch security bans` and the registrations table, against a SQLite file."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from softswitch.cli import main
from storage import Binding, open_store
from storage.bans import Ban


def _seed(url: str) -> None:
    async def seed() -> None:
        now = time.time()
        async with open_store(url) as store:
            await store.save_bans(
                [
                    Ban("203.0.113.7", "failed authentications", 2, now, now + 600),
                    Ban("198.51.100.1", "scanner", 1, now - 900, now - 300),
                ]
            )
            await store.save_bindings(
                [
                    Binding(
                        aor="sip:100@pbx.example.test",
                        contact="sip:100@192.0.2.10:5060",
                        expires_at=now + 600,
                        q=None,
                        call_id="c",
                        cseq=1,
                        instance_id=None,
                        reg_id=None,
                        path=[],
                        received="udp:192.0.2.10:5060",
                        transport="UDP",
                        user_agent="Yealink SIP-T46S",
                        registered_at=now,
                    )
                ]
            )

    asyncio.run(seed())


def test_bans_are_listed_and_lifted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path}/switch.db"
    _seed(url)
    capsys.readouterr()
    assert main(["security", "bans", "--database", url]) == 0
    out = capsys.readouterr().out
    assert "203.0.113.7" in out and "failed authentications" in out
    assert "198.51.100.1" not in out  # ended: only with --all
    assert main(["security", "bans", "--database", url, "--all"]) == 0
    assert "(ended" in capsys.readouterr().out
    assert main(["security", "bans", "--database", url, "--lift", "203.0.113.7"]) == 0
    assert "ban lifted" in capsys.readouterr().out
    assert main(["security", "bans", "--database", url, "--lift", "203.0.113.7"]) == 1
    assert "not banned" in capsys.readouterr().err
    assert main(["security", "bans", "--database", url, "--json"]) == 0
    assert capsys.readouterr().out.strip() == "[]"


def test_lift_names_a_bad_address(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["security", "bans", "--lift", "not-an-address"])
    assert "not an IP address" in capsys.readouterr().err


def test_registrations_show_source_and_user_agent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path}/switch.db"
    _seed(url)
    capsys.readouterr()
    assert main(["registrations", "--database", url]) == 0
    out = capsys.readouterr().out
    assert "USER-AGENT" in out and "Yealink SIP-T46S" in out and "udp:192.0.2.10:5060" in out
