"""`softswitch numbers import --apply` with provisioning = "database", on SQLite and
PostgreSQL: the rows are checked against the stored inventory and created through the
provisioning service in one transaction (all or none, audited as the command line's user);
the configuration file is left alone. And the service's batch create underneath."""

from __future__ import annotations

import asyncio
import getpass
from pathlib import Path
from typing import Any

import pytest

from softswitch.provisioning import Actor, InvalidObject, ProvisioningService, VersionMismatch
from storage import Store, open_store
from storage.provisioning import AuditQuery
from tests.unit.clikit import run, write_config

GOOD_AND_BAD = """number,treatment,destination,caller_id_prefix,notes
+14155550102,user,102,Support,support line
+1 415 555 0103,voicemail,103,,
+14155550100,user,100,,
+14155550104,user,999,,
"""
GOOD = '''number,treatment,destination,caller_id_prefix,notes
+14155550102,user,102,Support,"support line, ""2nd"""
+1 415 555 0103,voicemail,103,,
'''
ADMIN = Actor("test-admin", "127.0.0.1")


async def _numbers(url: str) -> dict[str, dict[str, Any]]:
    async with open_store(url) as store:
        return {o.key: o.data for o in await store.load_provisioning("example", "number")}


async def _audit(url: str) -> list[tuple[str, str, str, str]]:
    """The audit records of the imported numbers (the seed's are of the file's numbers)."""
    async with open_store(url) as store:
        records = await store.load_audit(AuditQuery(limit=100))
        return [
            (r.actor, r.action, r.kind, r.key)
            for r in records
            if r.kind == "number" and r.key in ("+14155550102", "+14155550103")
        ]


def test_apply_writes_the_database_all_or_nothing_and_audits(
    tmp_path: Path, database_url: str
) -> None:
    config_path = write_config(tmp_path, database_url)
    config = str(config_path)
    original = config_path.read_bytes()
    (tmp_path / "mixed.csv").write_text(GOOD_AND_BAD)
    (tmp_path / "good.csv").write_text(GOOD)

    mixed = run("numbers", "import", "mixed.csv", "--apply", "--config", config, cwd=tmp_path)
    assert mixed.returncode == 1, mixed.stderr
    lines = mixed.stdout.splitlines()
    assert "the database held no provisioning: seeded from the configuration file" in lines
    assert "2 row(s) valid, 2 with errors" in lines
    for expected in (
        "row 2: ok +14155550102",
        "row 4: error +14155550100, user, 100 (duplicate: already in the inventory)",
        "row 5: error +14155550104, user, 999 (unknown user destination '999')",
    ):
        assert any(line.startswith(expected) for line in lines), (expected, lines)
    assert "nothing applied" in mixed.stdout
    stored = asyncio.run(_numbers(database_url))
    assert sorted(stored) == ["+14155550100", "+14155550101"]  # the file's, seeded

    check = run("numbers", "import", "good.csv", "--config", config, cwd=tmp_path)
    assert check.returncode == 0 and "to the database" in check.stdout
    assert sorted(asyncio.run(_numbers(database_url))) == ["+14155550100", "+14155550101"]

    applied = run("numbers", "import", "good.csv", "--apply", "--config", config, cwd=tmp_path)
    assert applied.returncode == 0, applied.stderr
    assert "2 DID(s) added to the database of tenant example" in applied.stdout
    assert config_path.read_bytes() == original  # the file is not the truth here
    stored = asyncio.run(_numbers(database_url))
    assert stored["+14155550102"] == {
        "number": "+14155550102",
        "destination": "102",
        "caller_id_prefix": "Support",
        "notes": 'support line, "2nd"',
    }
    assert stored["+14155550103"]["treatment"] == "voicemail"
    who = f"cli:{getpass.getuser()}"
    assert sorted(asyncio.run(_audit(database_url))) == [
        (who, "create", "number", "+14155550102"),
        (who, "create", "number", "+14155550103"),
    ]
    # The export reads the stored inventory, and the rows now are duplicates.
    exported = run("numbers", "export", "--config", config, cwd=tmp_path)
    assert "+14155550103,voicemail,103,," in exported.stdout.splitlines()
    again = run("numbers", "import", "good.csv", "--apply", "--config", config, cwd=tmp_path)
    assert again.returncode == 1 and "0 row(s) valid, 2 with errors" in again.stdout
    assert len(asyncio.run(_audit(database_url))) == 2


async def test_create_all_is_one_transaction(store: Store) -> None:
    service = ProvisioningService(store)
    await service.create(ADMIN, "tenant", "acme", {"name": "acme", "domain": "acme.test"})
    await service.create(ADMIN, "user", "acme", {"extension": "100", "password": "pw100"})
    revision = await store.provisioning_revision()
    good = {"number": "+14155550102", "treatment": "user", "destination": "100"}

    # One row the tenant's rules refuse (a user that does not exist): nothing is written.
    with pytest.raises(InvalidObject) as refused:
        await service.create_all(
            ADMIN,
            "number",
            "acme",
            [good, {"number": "+14155550103", "treatment": "user", "destination": "999"}],
        )
    assert "999" in str(refused.value)
    # A row bad on its own: every such problem is named.
    with pytest.raises(InvalidObject) as bad:
        await service.create_all(ADMIN, "number", "acme", [good, {"number": "12"}, {}])
    assert len(bad.value.errors) >= 2
    assert await store.provisioning_revision() == revision

    items = await service.create_all(ADMIN, "number", "acme", [good])
    assert [(i.key, i.version) for i in items] == [("+14155550102", 1)]
    # A number that exists already: the whole batch is refused.
    with pytest.raises(VersionMismatch):
        await service.create_all(
            ADMIN,
            "number",
            "acme",
            [{"number": "+14155550104", "treatment": "user", "destination": "100"}, good],
        )
    stored = [o.key for o in await store.load_provisioning("acme", "number")]
    assert stored == ["+14155550102"]
    records = await store.load_audit(AuditQuery(limit=10))
    assert [(r.action, r.key) for r in records if r.kind == "number"] == [
        ("create", "+14155550102")
    ]
