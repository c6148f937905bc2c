"""`softswitch prompts`: add, text, list, remove and say against a configuration's library."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from media.wav import read_wav, write_wav
from softswitch.cli import main


@pytest.fixture
def config(tmp_path: Path) -> str:
    path = tmp_path / "switch.toml"
    path.write_text(
        f'[prompts]\ndirectory = "{tmp_path / "prompts"}"\n\n'
        '[[tenants]]\nname = "acme"\ndomain = "acme.test"\n'
    )
    return str(path)


def test_add_text_list_remove(
    tmp_path: Path, config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    audio = tmp_path / "hello.wav"
    write_wav(audio, (3000 * np.sin(np.arange(16000) / 5)).astype(np.int16), rate=16000)
    assert (
        main(["prompts", "add", str(audio), "welcome", "--tenant", "acme", "--config", config]) == 0
    )
    assert "16000 Hz" in capsys.readouterr().out
    assert (
        main(["prompts", "text", "vm-goodbye", "Bye now", "--tenant", "acme", "--config", config])
        == 0
    )
    assert main(["prompts", "list", "--tenant", "acme", "--config", config]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[:2] for line in listed[-2:]] == [
        ["en", "vm-goodbye"],
        ["en", "welcome"],
    ]
    assert main(["prompts", "list", "--generated", "--config", config]) == 0
    generated = capsys.readouterr().out
    assert (
        "en\tdigits/h-21\t" not in generated
        and "en\tdigits/h-20\tgenerated: twentieth" in generated
    )
    assert "en\tvm-you-have\tgenerated: You have" in generated
    assert main(["prompts", "remove", "welcome", "--tenant", "acme", "--config", config]) == 0
    assert main(["prompts", "remove", "welcome", "--tenant", "acme", "--config", config]) == 1


def test_a_bad_file_is_refused(
    tmp_path: Path, config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_text("hello\n")
    assert (
        main(["prompts", "add", str(bad), "welcome", "--tenant", "acme", "--config", config]) == 1
    )
    assert "bad.wav: not an audio file" in capsys.readouterr().err
    assert not (tmp_path / "prompts" / "tenants" / "acme" / "en" / "welcome.wav").exists()
    with pytest.raises(SystemExit):
        main(["prompts", "list", "--tenant", "nobody", "--config", config])


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="`make test` installs espeak-ng")
def test_say_writes_the_phrase(
    tmp_path: Path, config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "said.wav"
    args = ["prompts", "say", "--messages", "2", "--out", str(out), "--config", config]
    assert main(args) == 0
    assert "vm-you-have digits/2 vm-new vm-messages" in capsys.readouterr().out
    _, info = read_wav(out)
    assert info.sample_rate == 8000 and info.frames > 4000
