"""Music-on-hold configuration: playlists checked at load with their place named, and
which playlist a held party hears."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from config import (
    ConfigError,
    MusicOnHold,
    config_from_dict,
    example_config_path,
    hold_music_for,
    load_config,
)
from media.wav import write_wav
from softswitch.cli import main as cli
from tests.unit.wavkit import fmt_chunk, riff


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    """Good and bad audio files by name."""
    made = {}
    for name in ("song1", "song2", "intro", "notice"):
        path = tmp_path / f"{name}.wav"
        write_wav(path, np.ones(800, np.int16))
        made[name] = str(path)
    for name, data in {
        "mp3": b"ID3\x04\x00" + bytes(200),
        "pcm8": riff(fmt_chunk(1, 1, 8000, 8), bytes(800)),
        "empty": b"",
    }.items():
        path = tmp_path / f"{name}.wav"
        path.write_bytes(data)
        made[name] = str(path)
    made["missing"] = str(tmp_path / "missing.wav")
    return made


def tenant(**extra: Any) -> dict[str, Any]:
    return {
        "name": "acme",
        "domain": "acme.example.test",
        "users": [{"extension": "100", "password": "pw-100"}],
        **extra,
    }


def errors_of(data: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as err:
        config_from_dict(data)
    return err.value.errors


def test_playlists_at_tenant_and_user_level(files: dict[str, str]) -> None:
    data = {"tenants": [tenant(moh={"songs": [files["song1"], files["song2"]]})]}
    data["tenants"][0]["users"][0]["moh"] = {
        "songs": [files["song2"]],
        "intro": files["intro"],
        "messages": [files["notice"]],
        "message_interval": 45,
        "randomise": True,
    }
    cfg = config_from_dict(data)
    moh, user_moh = cfg.tenants[0].moh, cfg.tenants[0].users[0].moh
    assert moh is not None and user_moh is not None
    assert moh.songs == (Path(files["song1"]), Path(files["song2"]))
    assert (moh.intro, moh.messages, moh.message_interval, moh.randomise) == (None, (), 30, False)
    assert user_moh.intro == Path(files["intro"]) and user_moh.message_interval == 45
    assert user_moh.randomise


BAD = [
    (
        "song not a WAV",
        {"songs": ["song1", "mp3"]},
        "moh.songs[1]",
        "{mp3}: not a WAV file (no RIFF/WAVE header)",
    ),
    (
        "8-bit intro",
        {"songs": ["song1"], "intro": "pcm8"},
        "moh.intro",
        "{pcm8}: 8-bit PCM samples cannot be played; convert it to 16-bit PCM WAV "
        "(8 kHz mono plays without conversion)",
    ),
    (
        "empty message",
        {"songs": ["song1"], "messages": ["notice", "empty"]},
        "moh.messages[1]",
        "{empty}: not a WAV file (no RIFF/WAVE header)",
    ),
    (
        "missing song",
        {"songs": ["missing"]},
        "moh.songs[0]",
        "{missing}: cannot read: No such file or directory",
    ),
    ("no songs", {"songs": []}, "moh.songs", "must list at least one song"),
    ("songs required", {"intro": "intro"}, "moh.songs", "required"),
    (
        "interval too short",
        {"songs": ["song1"], "message_interval": 10},
        "moh.message_interval",
        "must be greater than or equal to 15",
    ),
    (
        "interval too long",
        {"songs": ["song1"], "message_interval": 121},
        "moh.message_interval",
        "must be less than or equal to 120",
    ),
    ("unknown key", {"songs": ["song1"], "shuffle": True}, "moh.shuffle", "unknown key"),
]


def _resolve(value: Any, files: dict[str, str]) -> Any:
    if isinstance(value, list):
        return [files.get(v, v) for v in value]
    return files.get(value, value) if isinstance(value, str) else value


@pytest.mark.parametrize("level", ["tenants[0]", "tenants[0].users[0]"])
@pytest.mark.parametrize(("name", "moh", "where", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_playlists_name_the_place_and_the_file(
    files: dict[str, str], level: str, name: str, moh: dict[str, Any], where: str, message: str
) -> None:
    moh = {k: _resolve(v, files) for k, v in moh.items()}
    data = {"tenants": [tenant()]}
    if level == "tenants[0]":
        data["tenants"][0]["moh"] = moh
    else:
        data["tenants"][0]["users"][0]["moh"] = moh
    assert errors_of(data) == [(f"{level}.{where}", message.format(**files))]


def test_every_bad_file_is_reported(files: dict[str, str]) -> None:
    moh = {"songs": [files["mp3"], files["song1"], files["pcm8"]], "intro": files["empty"]}
    assert [loc for loc, _ in errors_of({"tenants": [tenant(moh=moh)]})] == [
        "tenants[0].moh.intro",
        "tenants[0].moh.songs[0]",
        "tenants[0].moh.songs[2]",
    ]


def test_check_config_reports_the_file(
    files: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "switch.toml"
    path.write_text(
        '[[tenants]]\nname = "acme"\ndomain = "acme.example.test"\n'
        f'[tenants.moh]\nsongs = ["{files["song1"]}", "{files["mp3"]}"]\n'
    )
    with pytest.raises(SystemExit) as exit_:
        cli(["check-config", str(path)])
    assert exit_.value.code == 2
    assert f"tenants[0].moh.songs[1]: {files['mp3']}: not a WAV file" in capsys.readouterr().err


def _playlist(song: str) -> MusicOnHold:
    return MusicOnHold(songs=(Path(song),))


@pytest.mark.parametrize(
    ("tenant_has", "user_has", "queue_has", "expect"),
    [
        (False, False, False, None),
        (True, False, False, "tenant"),
        (True, None, False, "tenant"),  # no user given
        (True, True, False, "user"),
        (False, True, False, "user"),
        (True, True, True, "queue"),
        (False, False, True, "queue"),
        (True, None, True, "queue"),
    ],
)
def test_most_specific_playlist_wins(
    files: dict[str, str],
    tenant_has: bool,
    user_has: bool | None,
    queue_has: bool,
    expect: str | None,
) -> None:
    chosen = {
        "tenant": _playlist(files["song1"]),
        "user": _playlist(files["song2"]),
        "queue": _playlist(files["intro"]),
    }
    data = tenant(moh={"songs": [files["song1"]]} if tenant_has else None)
    if user_has:
        data["users"][0]["moh"] = {"songs": [files["song2"]]}
    t = config_from_dict({"tenants": [data]}).tenants[0]
    user = None if user_has is None else t.users[0]
    queue = chosen["queue"] if queue_has else None
    got = hold_music_for(t, user, queue)
    assert got == (None if expect is None else chosen[expect])


def test_commented_example_is_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The example's commented-out music on hold, uncommented with its files, loads."""
    lines = example_config_path().read_text().splitlines()
    start = lines.index("# [tenants.moh]")
    end = lines.index("", start)
    for i in range(start, end):
        lines[i] = lines[i][2:]
    path = tmp_path / "with_moh.toml"
    path.write_text("\n".join(lines) + "\n")
    (tmp_path / "moh").mkdir()
    for name in ("calls-are-recorded", "song-1", "song-2", "thank-you-for-waiting"):
        write_wav(tmp_path / "moh" / f"{name}.wav", np.ones(800, np.int16))
    monkeypatch.chdir(tmp_path)  # the example's paths are relative to the working directory
    moh = load_config(path).tenants[0].moh
    assert moh is not None and len(moh.songs) == 2 and moh.message_interval == 30
    assert moh.intro == Path("moh/calls-are-recorded.wav")
