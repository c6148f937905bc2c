"""The prompt library: uploads, tenant overrides, languages, and espeak-ng behind its cache."""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile

from config import ConfigError, config_from_dict
from config.prompts import PromptSettings, TenantPrompts
from media.wav import read_wav
from softswitch.prompts import MESSAGES, Phrase, PromptError, PromptLibrary

ESPEAK = shutil.which("espeak-ng")
needs_espeak = pytest.mark.skipif(
    ESPEAK is None, reason="espeak-ng missing: `make test` installs it"
)


def counting_espeak(tmp_path: Path) -> tuple[str, Path]:
    """The real espeak-ng behind a wrapper that logs each run (one line per synthesis)."""
    log = tmp_path / "espeak-runs.log"
    script = tmp_path / "espeak-counted"
    script.write_text(f'#!/bin/sh\necho "$*" >> {log}\nexec {ESPEAK} "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script), log


def runs(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


def library(tmp_path: Path, **kw: object) -> PromptLibrary:
    tenants = {"acme": TenantPrompts(), "globex": TenantPrompts(language="en-gb")}
    return PromptLibrary(PromptSettings(directory=tmp_path / "prompts", **kw), tenants)  # type: ignore[arg-type]


def upload(tmp_path: Path, name: str = "greeting.wav", freq: float = 700) -> Path:
    path = tmp_path / name
    t = np.arange(44100) / 44100
    soundfile.write(path, 0.3 * np.sin(2 * np.pi * freq * t), 44100, subtype="PCM_24")
    return path


def test_an_upload_is_converted_once_and_found_by_name(tmp_path: Path) -> None:
    lib = library(tmp_path)
    prompt, info = lib.add_file(upload(tmp_path), "welcome", tenant="acme")
    assert prompt.kind == "file" and prompt.tenant == "acme" and prompt.language == "en"
    assert prompt.path == tmp_path / "prompts/tenants/acme/en/welcome.wav"
    assert info.source_rate == 44100 and info.samples == 8000
    assert read_wav(prompt.path)[1].sample_rate == 8000
    assert lib.resolve("welcome", tenant="acme") == prompt
    with pytest.raises(PromptError, match="no prompt 'welcome'"):
        lib.resolve("welcome", tenant="globex")
    assert [p.name for p in lib.stored("acme")] == ["welcome"]


def test_a_bad_upload_names_the_file_and_adds_nothing(tmp_path: Path) -> None:
    lib = library(tmp_path, max_upload_mb=1)
    lib.add_text("welcome", "Welcome to Acme", tenant="acme")
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio\n" * 100)
    with pytest.raises(PromptError, match=r"notes\.wav: not an audio file"):
        lib.add_file(bad, "welcome", tenant="acme")
    huge = tmp_path / "huge.wav"
    huge.write_bytes(b"\0" * (1024 * 1024 + 1))
    with pytest.raises(PromptError, match=r"huge\.wav: file too large"):
        lib.add_file(huge, "welcome", tenant="acme")
    # the text version stays, and nothing else appeared
    assert [(p.name, p.kind) for p in lib.stored("acme")] == [("welcome", "text")]
    assert sorted(os.listdir(tmp_path / "prompts/tenants/acme/en")) == ["welcome.txt"]


def test_names_and_tenants_are_checked(tmp_path: Path) -> None:
    lib = library(tmp_path)
    for name in ("../etc/passwd", "Welcome", "", "a//b", "a/" * 5 + "b", "x.wav"):
        with pytest.raises(PromptError, match="prompt name"):
            lib.add_text(name, "hello", tenant="acme")
    with pytest.raises(PromptError, match="tenant name"):
        lib.add_text("welcome", "hello", tenant="../acme")
    with pytest.raises(PromptError, match="text is empty"):
        lib.add_text("welcome", "   ", tenant="acme")
    with pytest.raises(PromptError, match="not a language tag"):
        lib.add_text("welcome", "hi", tenant="acme", language="english!")


def test_tenants_override_system_prompts_by_file_or_text(tmp_path: Path) -> None:
    lib = library(tmp_path)
    generated = lib.resolve("vm-you-have", tenant="acme")
    assert (generated.origin, generated.kind, generated.text) == ("system", "text", "You have")
    lib.add_text("vm-you-have", "Hey, you have got", tenant="acme")
    assert lib.resolve("vm-you-have", tenant="acme").text == "Hey, you have got"
    assert lib.resolve("vm-you-have", tenant="globex").text == "You have"
    recorded, _ = lib.add_file(upload(tmp_path), "vm-you-have", tenant="acme")
    assert lib.resolve("vm-you-have", tenant="acme") == recorded  # the recording replaced it
    assert lib.stored("acme")[0].kind == "file"
    # a recorded system prompt replaces the generated one for every tenant
    system, _ = lib.add_file(upload(tmp_path, freq=900), "digits/7")
    assert system.path == tmp_path / "prompts/system/en/digits/7.wav"
    assert lib.resolve("digits/7", tenant="globex") == system
    assert lib.remove("vm-you-have", tenant="acme")
    assert not lib.remove("vm-you-have", tenant="acme")
    assert lib.resolve("vm-you-have", tenant="acme").origin == "system"


def test_languages_fall_back_to_the_base_then_the_tenant_default(tmp_path: Path) -> None:
    lib = library(tmp_path)
    lib.add_text("welcome", "Willkommen", tenant="acme", language="de")
    lib.add_text("welcome", "Welcome", tenant="acme")
    assert lib.resolve("welcome", tenant="acme", language="de-at").text == "Willkommen"
    assert lib.resolve("welcome", tenant="acme", language="fr").text == "Welcome"
    # globex speaks en-gb: English system prompts through the base language
    prompt = lib.resolve("digits/3", tenant="globex")
    assert (prompt.language, prompt.text) == ("en-gb", "three")  # spoken in its voice
    assert lib.voice_for("globex", "en-gb") == ("en-us", 160)


def test_voices_and_rate_per_tenant(tmp_path: Path) -> None:
    settings = PromptSettings(directory=tmp_path, voices={"en": "en-us", "de": "de"}, rate=150)
    lib = PromptLibrary(
        settings, {"acme": TenantPrompts(voices={"en": "en-gb-x-rp"}, rate=120, language="de")}
    )
    assert lib.voice_for("acme", "en") == ("en-gb-x-rp", 120)
    assert lib.voice_for("acme", "de") == ("de", 120)
    assert lib.voice_for(None, "de") == ("de", 150)
    assert lib.voice_for(None, "fr") == ("fr", 150)  # the espeak-ng voice of the language
    assert lib.language_of("acme") == "de" and lib.language_of(None) == "en"


@needs_espeak
async def test_espeak_ng_runs_once_per_text_voice_and_rate(tmp_path: Path) -> None:
    command, log = counting_espeak(tmp_path)
    lib = library(tmp_path, tts_command=command)
    first, again, *together = await asyncio.gather(
        lib.speak("Your call is important to us", tenant="acme"),
        lib.speak("Your call is important to us", tenant="acme"),
        *(lib.speak("Your  call is important to us ", tenant="acme") for _ in range(3)),
    )
    assert first == again and set(together) == {first}
    assert runs(log) == 1
    assert await lib.speak("Your call is important to us", tenant="acme") == first
    assert runs(log) == 1
    # another library on the same directory (a restart) finds it on disk
    assert (
        await library(tmp_path, tts_command=command).speak(
            "Your call is important to us", tenant="acme"
        )
        == first
    )
    assert runs(log) == 1
    await library(tmp_path, tts_command=command, rate=200).speak(
        "Your call is important to us", tenant="acme"
    )
    assert runs(log) == 2


@needs_espeak
async def test_a_real_espeak_ng_utterance_is_audible_and_plausibly_long(tmp_path: Path) -> None:
    lib = library(tmp_path)
    path = await lib.speak("Please leave your message after the tone.", tenant="acme")
    samples, info = read_wav(path)
    assert (info.sample_rate, info.channels, info.bits_per_sample) == (8000, 1, 16)
    seconds = info.frames / 8000
    assert 1.0 < seconds < 6.0  # eight words at 160 words per minute
    assert float(np.sqrt(np.mean(samples**2))) > 300


@needs_espeak
async def test_the_cache_is_bounded(tmp_path: Path) -> None:
    command, log = counting_espeak(tmp_path)
    lib = library(tmp_path, tts_command=command)
    lib.synthesiser.cache_bytes = 60_000  # a few short utterances
    texts = [f"Prompt number {n}" for n in ("one", "two", "three", "four", "five", "six")]
    for text in texts:
        await lib.speak(text)
    cached = list((tmp_path / "prompts/tts-cache").glob("??/*.wav"))
    assert sum(p.stat().st_size for p in cached) <= 60_000
    assert 0 < len(cached) < len(texts)
    assert lib.synthesiser.path_for(texts[-1], "en-us", 160) in cached  # the newest stays
    await lib.speak(texts[0])  # evicted, so synthesised again
    assert runs(log) == len(texts) + 1


async def test_speech_failures_are_clear(tmp_path: Path) -> None:
    lib = library(tmp_path, tts_command="no-such-espeak")
    with pytest.raises(PromptError, match="no-such-espeak not found: install Debian's espeak-ng"):
        await lib.speak("hello")
    slow = tmp_path / "slow-tts"
    slow.write_text("#!/bin/sh\nexec sleep 30\n")
    slow.chmod(0o755)
    lib = library(tmp_path, tts_command=str(slow), tts_timeout=0.3)
    with pytest.raises(PromptError, match=r"did not finish within 0\.3 s"):
        await lib.speak("hello")
    silent = tmp_path / "silent-tts"
    silent.write_text("#!/bin/sh\ncat > /dev/null\necho 'no such voice' >&2\n")
    silent.chmod(0o755)
    lib = library(tmp_path, tts_command=str(silent))
    with pytest.raises(PromptError, match=r"produced no usable audio .*no such voice"):
        await lib.speak("hello")
    assert list((tmp_path / "prompts/tts-cache").glob("??/*.wav")) == []


@needs_espeak
async def test_a_phrase_renders_with_tenant_overrides(tmp_path: Path) -> None:
    lib = library(tmp_path)
    phrase = Phrase().prompt("vm-you-have").count(2, MESSAGES, "vm-new")
    plain = await lib.render(phrase, tenant="globex")
    # acme records its own "you have" as a one-second tone: the phrase plays it
    lib.add_file(upload(tmp_path, freq=700), "vm-you-have", tenant="acme")
    custom = await lib.render(phrase, tenant="acme")
    assert plain.dtype == np.int16 and 0.8 < len(plain) / 8000 < 5
    head = np.abs(np.fft.rfft(custom[:4000].astype(np.float64)))
    assert abs(np.argmax(head) * 8000 / 4000 - 700) < 5
    with pytest.raises(PromptError, match="empty phrase"):
        await lib.render(Phrase())


def test_the_prompts_section_is_validated_and_read(tmp_path: Path) -> None:
    config = config_from_dict(
        {
            "prompts": {"directory": str(tmp_path), "voices": {"en_US": "en-us"}, "rate": 140},
            "tenants": [
                {"name": "acme", "domain": "acme.test", "prompts": {"language": "de"}},
            ],
        }
    )
    lib = PromptLibrary.from_config(config)
    assert lib.root == tmp_path and lib.language_of("acme") == "de"
    assert lib.voice_for("acme", "en-us") == ("en-us", 140)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"prompts": {"rate": 10}}, "prompts.rate"),
        ({"prompts": {"voices": {"en": "en us; rm"}}}, "prompts.voices"),
        ({"prompts": {"tts_command": "espeak-ng -q"}}, "prompts.tts_command"),
        ({"prompts": {"language": "English"}}, "prompts.language"),
    ]
    for bad, where in cases:
        with pytest.raises(ConfigError, match=where.replace(".", r"\.")):
            config_from_dict(bad)


@needs_espeak
async def test_generated_prompts_are_prepared_once(tmp_path: Path) -> None:
    command, log = counting_espeak(tmp_path)
    lib = library(tmp_path, tts_command=command)
    lib.add_text("vm-goodbye", "See you", tenant="acme")
    count = await lib.prepare(tenant="acme")
    assert count == len(lib.generated()) > 100
    assert runs(log) == count  # acme's own "vm-goodbye" instead of the system's
    assert await lib.prepare(tenant="globex") == count
    assert runs(log) == count + 1  # globex hears the system's "vm-goodbye"
