"""`softswitch config export|import`, `reload` and `audit` as an operator runs them, on SQLite
and PostgreSQL, from a working directory other than the configuration's."""

from __future__ import annotations

import json
from pathlib import Path

from tests.unit.clikit import run, write_config


def test_import_export_round_trip_and_audit(tmp_path: Path, database_url: str) -> None:
    config = write_config(tmp_path, database_url)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    dry = run("config", "import", str(config), "--config", str(config), "--dry-run", cwd=elsewhere)
    assert dry.returncode == 0, dry.stderr
    assert "create user '101' (tenant 'example')" in dry.stdout
    assert "would change" in dry.stdout
    # A dry run changes nothing: the database still has no provisioning.
    empty = run("config", "export", "--config", str(config), cwd=elsewhere)
    assert "[[tenants]]" not in empty.stdout
    done = run(
        "config", "import", str(config), "--config", str(config), "--by", "ops", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    exported = run("config", "export", "--config", str(config), cwd=elsewhere)
    site = tmp_path / "site.toml"
    site.write_text(exported.stdout)
    # What was exported imports back to the same model.
    again = run("config", "import", str(site), "--config", str(config), "--dry-run", cwd=elsewhere)
    assert again.stdout.strip() == "nothing to change"
    # An edited export lists just the change; a bad one is refused with its field named.
    site.write_text(exported.stdout.replace('display_name = "Bob Brown"', 'display_name = "Bo"'))
    edited = run("config", "import", str(site), "--config", str(config), cwd=elsewhere)
    assert edited.stdout.splitlines()[0] == "update user '102' (tenant 'example')"
    site.write_text(exported.stdout.replace('extension = "103"', 'extension = "1o3"'))
    bad = run("config", "import", str(site), "--config", str(config), cwd=elsewhere)
    assert bad.returncode == 1 and "tenants[0].users[3].extension" in bad.stderr
    audit = run("audit", "--config", str(config), "--key", "102", "--json", cwd=elsewhere)
    records = json.loads(audit.stdout)
    assert [r["action"] for r in records] == ["update", "create"]
    assert records[0]["after"]["display_name"] == "Bo"
    assert records[0]["after"]["password"] == "***"  # secrets never in the audit log
    assert records[-1]["actor"] == "cli:ops"


def test_reload_needs_file_mode(tmp_path: Path, database_url: str) -> None:
    config = write_config(tmp_path, database_url)
    refused = run("reload", "--config", str(config), cwd=tmp_path)
    assert refused.returncode == 1 and "config import" in refused.stderr
    text = config.read_text().replace('provisioning = "database"', 'provisioning = "file"')
    config.write_text(text)
    done = run("reload", "--config", str(config), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "create user '100'" in done.stdout
    # In file mode the model is the file's: import is refused.
    imp = run("config", "import", str(config), "--config", str(config), cwd=tmp_path)
    assert imp.returncode == 1 and "reload" in imp.stderr
