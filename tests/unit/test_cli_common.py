"""The helpers the `softswitch` sub-commands share: errors to exit statuses, the
configuration loaded with a clear error, the store around a piece of work (SQLite)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from config import example_config_path
from softswitch.cli_common import (
    CommandError,
    guarded,
    load_checked_config,
    load_config_or_exit,
    with_store,
)
from storage import Store


class _Refusal(Exception):
    pass


def _command(error: Exception | None) -> argparse.Namespace:
    def func(args: argparse.Namespace) -> int:
        if error is not None:
            raise error
        return 0

    return argparse.Namespace(func=func)


def test_guarded_turns_errors_into_a_message_and_a_status(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = argparse.Namespace()
    assert guarded(_command(None).func)(args) == 0
    assert guarded(_command(CommandError("no plan 'Flood'", 2)).func)(args) == 2
    assert capsys.readouterr().err == "softswitch: no plan 'Flood'\n"
    assert guarded(_command(_Refusal("read only")).func, _Refusal)(args) == 1
    assert capsys.readouterr().err == "softswitch: read only\n"
    assert guarded(_command(_Refusal("bad prompt")).func, _Refusal, prefix="")(args) == 1
    assert capsys.readouterr().err == "bad prompt\n"
    with pytest.raises(_Refusal):  # only the exceptions named are the command's to report
        guarded(_command(_Refusal("other")).func)(args)


def _config_file(directory: Path, extra: str = "") -> Path:
    path = directory / "switch.toml"
    path.write_text(example_config_path().read_text(encoding="utf-8") + extra, encoding="utf-8")
    return path


def test_a_bad_configuration_names_the_file_and_is_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _config_file(tmp_path, "\n[nonsense]\nkey = 1\n")
    with pytest.raises(CommandError) as refused:
        load_checked_config(str(path))
    assert refused.value.status == 2
    assert str(refused.value).startswith(f"{path}: configuration has errors:\n")
    with pytest.raises(SystemExit) as exited:
        load_config_or_exit(str(path))
    assert exited.value.code == 2
    assert capsys.readouterr().err.startswith(f"{path}: configuration has errors:\n")


def test_database_given_replaces_the_files(tmp_path: Path) -> None:
    path = _config_file(tmp_path)
    url = f"sqlite:///{tmp_path}/other.db"
    assert load_checked_config(str(path), url).database.url == url
    assert load_checked_config(str(path)).database.url != url
    assert load_checked_config(str(path), None) == load_checked_config(str(path))


@pytest.fixture
def _logs_restored() -> Iterator[None]:
    """with_store quiets structlog for the whole process; later tests get the defaults."""
    yield
    structlog.reset_defaults()


@pytest.mark.usefixtures("_logs_restored")
def test_with_store_runs_the_work_and_maps_database_failures(tmp_path: Path) -> None:
    path = _config_file(tmp_path)
    config = load_checked_config(str(path), f"sqlite:///{tmp_path}/switch.db")

    async def bans(store: Store) -> int:
        return len(await store.load_bans(0.0))

    assert with_store(config, bans) == 0
    bad_url = load_checked_config(str(path), "mysql://nowhere/db")
    with pytest.raises(CommandError) as refused:
        with_store(bad_url, bans)
    assert refused.value.status == 2 and str(refused.value).startswith("database: ")
    down = load_checked_config(str(path), "postgresql://nobody@127.0.0.1:1/none")
    with pytest.raises(CommandError) as unavailable:
        with_store(down, bans)
    assert unavailable.value.status == 3 and str(unavailable.value).startswith("database: ")
