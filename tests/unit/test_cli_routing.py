"""The routing commands of the real `softswitch` CLI (subprocesses), against SQLite and
PostgreSQL: disaster enable/disable/status, route explain, numbers import/export."""

from __future__ import annotations

import asyncio
from pathlib import Path

from config import load_config
from storage import Binding, open_store
from tests.unit.clikit import run, write_config

ROOT = Path(__file__).resolve().parents[2]
MONDAY_10 = "2026-07-06T10:00-04:00"
PLAN = "Office outage"


async def _history(url: str) -> list[tuple[str, str, str]]:
    async with open_store(url) as store:
        return [(e.plan, e.action, e.changed_by) for e in await store.load_disaster_events()]


def test_disaster_enable_disable_persist_and_route(tmp_path: Path, database_url: str) -> None:
    config = str(write_config(tmp_path, database_url))
    cli = ["--config", config]

    status = run("disaster", "status", *cli, cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert f"{PLAN} [US East]: saved, 2 did number(s)" in status.stdout

    explain = [
        "route",
        "explain",
        "--to",
        "+14155550100",
        "--from",
        "+12125550100",
        "--at",
        MONDAY_10,
        *cli,
    ]
    normal = run(*explain, cwd=tmp_path)
    assert normal.returncode == 0, normal.stderr
    assert "enabled disaster plans: none" in normal.stdout
    assert "did: +14155550100: treatment user 100" in normal.stdout
    assert "rule 2 active (time frame 'Business hours'" in normal.stdout

    enable = run("disaster", "enable", PLAN, "--by", "alice", *cli, cwd=tmp_path)
    assert enable.returncode == 0, enable.stderr
    assert f"disaster plan '{PLAN}' enabled by alice" in enable.stdout
    assert "+14155550100 -> +12125550199" in enable.stdout
    assert enable.stderr == ""  # no log lines mixed into the output

    status = run("disaster", "status", "--tenant", "example", *cli, cwd=tmp_path)
    assert f"{PLAN} [US East]: enabled, 2 did number(s), last execute by alice" in status.stdout
    assert "+14155550101 -> +16465550123" in status.stdout

    during = run(*explain, cwd=tmp_path)
    assert f"enabled disaster plans: '{PLAN}'" in during.stdout
    assert f"disaster: plan '{PLAN}' is enabled: +14155550100 -> +12125550199" in during.stdout
    assert "external +12125550199" in during.stdout
    assert "rule 2 active" not in during.stdout

    again = run("disaster", "enable", PLAN, "--by", "carol", *cli, cwd=tmp_path)
    assert again.returncode == 1
    assert "already enabled" in again.stderr

    disable = run("disaster", "disable", PLAN, "--by", "bob", *cli, cwd=tmp_path)
    assert disable.returncode == 0, disable.stderr
    assert "2 number(s) back to normal routing" in disable.stdout
    status = run("disaster", "status", *cli, cwd=tmp_path)
    assert f"{PLAN} [US East]: saved, 2 did number(s), last revert by bob" in status.stdout
    after = run(*explain, cwd=tmp_path)
    assert "enabled disaster plans: none" in after.stdout
    assert "rule 2 active (time frame 'Business hours'" in after.stdout

    twice = run("disaster", "disable", PLAN, "--by", "bob", *cli, cwd=tmp_path)
    assert twice.returncode == 1 and "not enabled" in twice.stderr
    assert asyncio.run(_history(database_url)) == [
        (PLAN, "execute", "alice"),
        (PLAN, "revert", "bob"),
    ]


async def _register(url: str, aor: str) -> None:
    async with open_store(url) as store:
        await store.save_bindings(
            [
                Binding(
                    aor=aor,
                    contact="sip:100@192.0.2.10:5062",
                    expires_at=4_000_000_000.0,
                    q=None,
                    call_id="c1",
                    cseq=1,
                    instance_id=None,
                    reg_id=None,
                    path=[],
                    received=None,
                    transport="udp",
                    user_agent=None,
                    registered_at=0.0,
                )
            ]
        )


def test_route_explain_reads_registrations_and_what_ifs(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/softswitch.db"
    config = str(write_config(tmp_path, url))
    asyncio.run(_register(url, "sip:100@pbx.example.test"))
    base = ["route", "explain", "--from", "101", "--at", MONDAY_10, "--config", config]

    internal = run(*base, "--to", "100", cwd=tmp_path)
    assert internal.returncode == 0, internal.stderr
    assert "(extension of the tenant)" in internal.stdout
    assert "registered devices: 100 (1)" in internal.stdout
    assert "ring 20s: user_devices 100 (user 100 rule 2)" in internal.stdout

    busy = run(*base, "--to", "100", "--busy", "100", cwd=tmp_path)
    assert "busy: 100" in busy.stdout

    offline = run(*base, "--to", "100", "--registered", "102", cwd=tmp_path)
    assert "registered devices: 102 (1)" in offline.stdout

    naive = run(
        *base[:-4],
        "--at",
        "2026-07-04T14:00",
        "--to",
        "+14155550100",
        "--config",
        config,
        cwd=tmp_path,
    )
    assert naive.returncode == 0, naive.stderr
    assert "read as UTC" in naive.stdout
    assert "Independence Day" in naive.stdout

    bad = run(*base[:-4], "--at", "next tuesday", "--to", "100", "--config", config, cwd=tmp_path)
    assert bad.returncode == 2
    assert "not an ISO 8601 time" in bad.stderr


def test_refusals_name_the_problem(tmp_path: Path) -> None:
    config = str(write_config(tmp_path, f"sqlite:///{tmp_path}/softswitch.db"))
    unknown = run("disaster", "enable", "Flood", "--config", config, cwd=tmp_path)
    assert unknown.returncode == 1
    assert "no disaster plan 'Flood' (plans: 'Office outage')" in unknown.stderr
    tenant = run("disaster", "status", "--tenant", "globex", "--config", config, cwd=tmp_path)
    assert tenant.returncode == 2 and "no tenant 'globex'" in tenant.stderr
    broken = tmp_path / "broken.toml"
    broken.write_text(
        '[[tenants]]\nname = "x"\ndomain = "x.test"\n'
        '[[tenants.users]]\nextension = "100"\npassword = "pw"\n'
        '[[tenants.routing.users.100.rules]]\ntime_frame = "Lunch"\n'
    )
    bad = run("disaster", "status", "--config", str(broken), cwd=tmp_path)
    assert bad.returncode == 2
    assert (
        "tenants[0].routing.users.100.rules[0].time_frame: unknown time frame 'Lunch'" in bad.stderr
    )
    pg_down = run(
        "disaster",
        "status",
        "--config",
        config,
        "--database",
        "postgresql://nobody@127.0.0.1:1/none",
        cwd=tmp_path,
    )
    assert pg_down.returncode == 3 and "database:" in pg_down.stderr


GOOD_AND_BAD = """number,treatment,destination,caller_id_prefix,notes
+14155550102,user,102,Support,support line
+1 415 555 0103,voicemail,103,,
+14155550100,user,100,,
+14155550104,user,999,,
4155550105,user,100,,
+14155550102,user,104,,
"""
GOOD = '''number,treatment,destination,caller_id_prefix,notes
+14155550102,user,102,Support,"support line, ""2nd"""
+1 415 555 0103,voicemail,103,,
'''


def _file_mode(path: Path) -> Path:
    """The configuration switched to provisioning = "file" (the file is the truth, where
    --apply appends the numbers; database mode: test_cli_numbers_store.py)."""
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace('provisioning = "database"', 'provisioning = "file"', 1))
    return path


def test_numbers_import_applies_nothing_until_clean(tmp_path: Path) -> None:
    config_path = _file_mode(write_config(tmp_path, f"sqlite:///{tmp_path}/softswitch.db"))
    config = str(config_path)
    original = config_path.read_bytes()
    (tmp_path / "mixed.csv").write_text(GOOD_AND_BAD)
    (tmp_path / "good.csv").write_text(GOOD)

    mixed = run("numbers", "import", "mixed.csv", "--apply", "--config", config, cwd=tmp_path)
    assert mixed.returncode == 1
    lines = mixed.stdout.splitlines()
    assert "2 row(s) valid, 4 with errors" in lines
    for expected in (
        "row 2: ok +14155550102",
        "row 3: ok +1 415 555 0103",
        "row 4: error +14155550100, user, 100 (duplicate: already in the inventory)",
        "row 5: error +14155550104, user, 999 (unknown user destination '999')",
        "row 6: error 4155550105, user, 100 (invalid number: missing '+'",
        "row 7: error +14155550102, user, 104 (duplicate of row 2)",
    ):
        assert any(line.startswith(expected) for line in lines), (expected, lines)
    assert "nothing applied" in mixed.stdout
    assert config_path.read_bytes() == original

    check = run("numbers", "import", "good.csv", "--config", config, cwd=tmp_path)
    assert check.returncode == 0 and "run again with --apply" in check.stdout
    assert config_path.read_bytes() == original

    toml = run("numbers", "import", "good.csv", "--print-toml", "--config", config, cwd=tmp_path)
    assert toml.returncode == 0
    assert '[[tenants.routing.dids]]\nnumber = "+14155550102"' in toml.stdout
    assert 'notes = "support line, \\"2nd\\""' in toml.stdout
    assert config_path.read_bytes() == original

    applied = run("numbers", "import", "good.csv", "--apply", "--config", config, cwd=tmp_path)
    assert applied.returncode == 0, applied.stderr
    assert "2 DID(s) added" in applied.stdout
    assert config_path.read_bytes().startswith(original)  # appended; comments kept
    dids = load_config(config_path).tenants[0].routing.dids
    assert [(d.number, d.treatment.value, d.destination, d.notes) for d in dids[2:]] == [
        ("+14155550102", "user", "102", 'support line, "2nd"'),
        ("+14155550103", "voicemail", "103", ""),
    ]

    exported = run("numbers", "export", "--config", config, cwd=tmp_path)
    assert exported.returncode == 0
    assert exported.stdout.splitlines() == [
        "number,treatment,destination,caller_id_prefix,notes",
        "+14155550100,user,100,Main,main number",
        "+14155550101,user,101,,Alice's direct line",
        '+14155550102,user,102,Support,"support line, ""2nd"""',
        "+14155550103,voicemail,103,,",
    ]
    # An export imports cleanly into a configuration without those numbers... and not twice.
    (tmp_path / "export.csv").write_text(exported.stdout)
    again = run("numbers", "import", "export.csv", "--config", config, cwd=tmp_path)
    assert again.returncode == 1 and "0 row(s) valid, 4 with errors" in again.stdout


def test_numbers_import_rejects_other_files_and_unsafe_appends(tmp_path: Path) -> None:
    second_tenant = """
[[tenants]]
name = "globex"
domain = "globex.example.test"
[[tenants.users]]
extension = "200"
password = "pw-200"
"""
    config_path = _file_mode(
        write_config(tmp_path, f"sqlite:///{tmp_path}/softswitch.db", second_tenant)
    )
    config = str(config_path)
    original = config_path.read_bytes()
    (tmp_path / "numbers.txt").write_text(GOOD)
    (tmp_path / "good.csv").write_text(GOOD)

    wrong = run(
        "numbers", "import", "numbers.txt", "--tenant", "example", "--config", config, cwd=tmp_path
    )
    assert wrong.returncode == 1 and "file rejected: unsupported file type (.txt)" in wrong.stdout

    choose = run("numbers", "import", "good.csv", "--config", config, cwd=tmp_path)
    assert choose.returncode == 2 and "choose one with --tenant" in choose.stderr

    unsafe = run(
        "numbers",
        "import",
        "good.csv",
        "--tenant",
        "example",
        "--apply",
        "--config",
        config,
        cwd=tmp_path,
    )
    assert unsafe.returncode == 1 and "use --print-toml" in unsafe.stderr
    assert config_path.read_bytes() == original
    assert not list(tmp_path.glob(".switch.toml.*"))  # no temp file left behind
