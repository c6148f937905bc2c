"""The prompt library: system and tenant prompts by name and language, played as audio.

Prompts are files under ``[prompts] directory``::

    system/<language>/<name>.wav            recorded system prompts (replace generated ones)
    tenants/<tenant>/<language>/<name>.wav  a tenant's uploads and recordings
    tenants/<tenant>/<language>/<name>.txt  a tenant's prompt given as text (spoken by TTS)
    tts-cache/                              synthesised speech (see softswitch.prompts.speech)

A name is lower-case words joined by ``-`` or ``_``, with ``/`` for groups (``welcome``,
``digits/7``, ``vm-you-have``).  Every audio file enters through :meth:`PromptLibrary.add_file`
(an upload, a recording made by phone, an import), which converts it once to 8 kHz mono
16-bit PCM; a file that cannot be read is refused with its name and nothing is added.

Looking a prompt up (:meth:`PromptLibrary.resolve`) tries, for the requested language, then
its base language (``en-gb`` -> ``en``), then the tenant's default language: the tenant's
file, the tenant's text, the system's file, then the text of the system prompt from the
language's phrase rules, which is spoken by espeak-ng.  So every system prompt (numbers,
dates, voicemail and menu instructions) exists without a recording, and a tenant can
replace any of them by uploading a file or giving a text under the same name.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt
import structlog

import softswitch.prompts.english  # noqa: F401  (registers the English rules)
from config.prompts import PROMPT_NAME, PromptSettings, TenantPrompts, canonical_language
from media.convert import ConversionError, Converted, convert_file
from media.players import load_source
from softswitch.prompts.phrases import Phrase, Segment, rules_for
from softswitch.prompts.speech import MAX_TEXT, SpeechError, Synthesiser

if TYPE_CHECKING:
    from config.models import SwitchConfig

__all__ = ["Prompt", "PromptError", "PromptLibrary"]

log = structlog.get_logger(__name__)

_NAME = PROMPT_NAME
_TENANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
GAP_MS = 60  # silence between the pieces of a phrase, as a speaker breathes between words

Origin = Literal["tenant", "system"]
Kind = Literal["file", "text"]


class PromptError(ValueError):
    """A prompt that cannot be added, found or spoken; the message names it."""


@dataclass(frozen=True, slots=True)
class Prompt:
    """One prompt as the library found it: a WAV file, or text spoken by TTS."""

    name: str
    language: str
    origin: Origin
    tenant: str | None
    kind: Kind
    path: Path | None = None  # the 8 kHz WAV (kind "file", or "text" once stored)
    text: str | None = None  # kind "text"


def check_name(name: str) -> str:
    """The prompt name, or PromptError saying what a name may be."""
    if not _NAME.fullmatch(name):
        raise PromptError(
            f"prompt name {name!r}: use lower-case letters, digits, '-' and '_', "
            "with '/' between groups (e.g. welcome, digits/7)"
        )
    return name


def _check_tenant(tenant: str | None) -> str | None:
    if tenant is not None and (not _TENANT.fullmatch(tenant) or ".." in tenant):
        raise PromptError(f"tenant name {tenant!r} cannot name a prompt directory")
    return tenant


def _language(language: str) -> str:
    try:
        return canonical_language(language)
    except ValueError as exc:
        raise PromptError(str(exc)) from None


class PromptLibrary:
    """Prompts of the system and of each tenant, on disk; see the module docstring."""

    def __init__(
        self,
        settings: PromptSettings,
        tenants: dict[str, TenantPrompts] | None = None,
        *,
        synthesiser: Synthesiser | None = None,
    ) -> None:
        self.settings = settings
        self.tenants = dict(tenants or {})
        self.root = Path(settings.directory)
        self.synthesiser = synthesiser or Synthesiser(
            self.root / "tts-cache",
            command=settings.tts_command,
            timeout=settings.tts_timeout,
            cache_bytes=settings.tts_cache_mb * 1024 * 1024,
        )

    @classmethod
    def from_config(cls, config: SwitchConfig) -> PromptLibrary:
        """The library of a switch configuration: ``[prompts]`` and each tenant's."""
        return cls(config.prompts, {t.name: t.prompts for t in config.tenants})

    # ------------------------------------------------------------------ where and who

    def _dir(self, tenant: str | None, language: str) -> Path:
        if tenant is None:
            return self.root / "system" / language
        return self.root / "tenants" / tenant / language

    def language_of(self, tenant: str | None) -> str:
        """The default language of a tenant (or of the system)."""
        own = self.tenants.get(tenant) if tenant is not None else None
        return (own.language if own else None) or self.settings.language

    def voice_for(self, tenant: str | None, language: str) -> tuple[str, int]:
        """espeak-ng voice and rate for ``language``: the tenant's, the switch's, the tag."""
        own = self.tenants.get(tenant) if tenant is not None else None
        for lang in _chain(language):
            if own and lang in own.voices:
                return own.voices[lang], own.rate or self.settings.rate
            if lang in self.settings.voices:
                return self.settings.voices[lang], (own.rate if own else None) or (
                    self.settings.rate
                )
        return language, (own.rate if own else None) or self.settings.rate

    # ------------------------------------------------------------------ adding

    def add_file(
        self,
        source: str | os.PathLike[str],
        name: str,
        *,
        tenant: str | None = None,
        language: str | None = None,
    ) -> tuple[Prompt, Converted]:
        """Convert an audio file into the library (uploads and phone recordings alike).

        Blocking (decoding and resampling): from the event loop use ``asyncio.to_thread``.
        A file that cannot be read raises :class:`PromptError` naming it; nothing is added.
        """
        check_name(name)
        _check_tenant(tenant)
        lang = _language(language or self.language_of(tenant))
        base = self._dir(tenant, lang) / name
        try:
            converted = convert_file(
                source,
                base.with_suffix(".wav"),
                max_bytes=self.settings.max_upload_mb * 1024 * 1024,
            )
        except ConversionError as exc:
            raise PromptError(str(exc)) from None
        with contextlib.suppress(FileNotFoundError):
            base.with_suffix(".txt").unlink()  # the recording replaces a text version
        log.info(
            "prompt_added",
            name=name,
            tenant=tenant,
            language=lang,
            source=os.fspath(source),
            format=converted.source_format,
            seconds=round(converted.seconds, 2),
        )
        return self._prompt(tenant, lang, name, "file", base.with_suffix(".wav")), converted

    def add_text(
        self, name: str, text: str, *, tenant: str | None = None, language: str | None = None
    ) -> Prompt:
        """Give a prompt as text, spoken by text-to-speech (replaces a recorded version)."""
        check_name(name)
        _check_tenant(tenant)
        text = " ".join(text.split())
        if not text:
            raise PromptError(f"prompt {name!r}: the text is empty")
        if len(text) > MAX_TEXT:
            raise PromptError(f"prompt {name!r}: the text is longer than {MAX_TEXT} characters")
        lang = _language(language or self.language_of(tenant))
        base = self._dir(tenant, lang) / name
        base.parent.mkdir(parents=True, exist_ok=True)
        tmp = base.with_suffix(".txt.tmp")
        tmp.write_text(text + "\n", encoding="utf-8")
        os.replace(tmp, base.with_suffix(".txt"))
        with contextlib.suppress(FileNotFoundError):
            base.with_suffix(".wav").unlink()
        log.info("prompt_added", name=name, tenant=tenant, language=lang, text_chars=len(text))
        return self._prompt(tenant, lang, name, "text", None, text)

    def remove(self, name: str, *, tenant: str | None = None, language: str | None = None) -> bool:
        """Remove a stored prompt (the generated system prompt, if any, speaks again)."""
        check_name(name)
        _check_tenant(tenant)
        base = self._dir(tenant, _language(language or self.language_of(tenant))) / name
        removed = False
        for suffix in (".wav", ".txt"):
            try:
                base.with_suffix(suffix).unlink()
                removed = True
            except FileNotFoundError:
                pass
        return removed

    def _prompt(
        self,
        tenant: str | None,
        language: str,
        name: str,
        kind: Kind,
        path: Path | None,
        text: str | None = None,
    ) -> Prompt:
        origin: Origin = "system" if tenant is None else "tenant"
        return Prompt(name, language, origin, tenant, kind, path, text)

    # ------------------------------------------------------------------ finding

    def _stored(self, tenant: str | None, language: str, name: str) -> Prompt | None:
        base = self._dir(tenant, language) / name
        wav = base.with_suffix(".wav")
        if wav.is_file():
            return self._prompt(tenant, language, name, "file", wav)
        txt = base.with_suffix(".txt")
        if txt.is_file():
            text = " ".join(txt.read_text("utf-8", errors="replace").split())
            if text:  # an emptied file (edited by hand) says nothing: skip it
                return self._prompt(tenant, language, name, "text", None, text)
        return None

    def resolve(
        self, name: str, *, tenant: str | None = None, language: str | None = None
    ) -> Prompt:
        """The prompt that plays for ``name`` (see the module docstring for the order)."""
        check_name(name)
        _check_tenant(tenant)
        langs = _chain(_language(language or self.language_of(tenant)))
        # then the tenant's default language, the switch's, and English (always complete)
        for fallback in (self.language_of(tenant), self.settings.language, "en"):
            langs += [x for x in _chain(fallback) if x not in langs]
        for lang in langs:
            for owner in (tenant, None) if tenant is not None else (None,):
                found = self._stored(owner, lang, name)
                if found is not None:
                    return found
        for lang in langs:
            rules = rules_for(lang)
            if rules.code == lang.split("-", 1)[0] and name in rules.texts:
                return self._prompt(None, lang, name, "text", None, rules.texts[name])
        raise PromptError(
            f"no prompt {name!r} in {', '.join(langs)}"
            + (f" for tenant {tenant}" if tenant else "")
        )

    def stored(self, tenant: str | None = None) -> list[Prompt]:
        """The stored prompts of a tenant (or the system's), by language and name."""
        _check_tenant(tenant)
        top = self.root / ("system" if tenant is None else f"tenants/{tenant}")
        out: list[Prompt] = []
        if not top.is_dir():
            return out
        for lang_dir in sorted(p for p in top.iterdir() if p.is_dir()):
            seen: set[str] = set()
            for path in sorted(lang_dir.rglob("*")):
                if path.suffix not in (".wav", ".txt") or path.name.startswith("."):
                    continue
                name = path.relative_to(lang_dir).with_suffix("").as_posix()
                if name in seen or not _NAME.fullmatch(name):
                    continue
                seen.add(name)
                found = self._stored(tenant, lang_dir.name, name)
                if found is not None:
                    out.append(found)
        return out

    def generated(self, language: str | None = None) -> dict[str, str]:
        """The system prompts spoken from text in ``language`` (name -> text): every name
        a tenant may replace, beside its own."""
        return dict(rules_for(_language(language or self.settings.language)).texts)

    async def prepare(self, *, tenant: str | None = None, language: str | None = None) -> int:
        """Synthesise every generated system prompt ahead of the first call that needs it
        (``softswitch prompts generate``); the number of prompts now ready."""
        names = self.generated(language or self.language_of(tenant))
        await asyncio.gather(*(self.audio_file(n, tenant=tenant, language=language) for n in names))
        return len(names)

    # ------------------------------------------------------------------ playing

    async def audio_file(
        self, name: str, *, tenant: str | None = None, language: str | None = None
    ) -> Path:
        """An 8 kHz WAV file of the prompt (synthesised and cached if it is text)."""
        prompt = self.resolve(name, tenant=tenant, language=language)
        if prompt.path is not None:
            return prompt.path
        assert prompt.text is not None
        return await self.speak(prompt.text, tenant=tenant, language=prompt.language)

    async def speak(
        self, text: str, *, tenant: str | None = None, language: str | None = None
    ) -> Path:
        """An 8 kHz WAV file of ``text`` in the tenant's voice for ``language``."""
        voice, rate = self.voice_for(tenant, _language(language or self.language_of(tenant)))
        try:
            return await self.synthesiser.speak(text, voice, rate)
        except SpeechError as exc:
            raise PromptError(f"cannot speak {text[:40]!r}: {exc}") from None

    async def render(
        self,
        phrase: Phrase | Sequence[Segment],
        *,
        tenant: str | None = None,
        language: str | None = None,
    ) -> npt.NDArray[np.int16]:
        """The phrase as int16 8 kHz samples, ready for ``MediaEngine.play``."""
        if isinstance(phrase, Phrase):
            language = language or phrase.language
            segments: Sequence[Segment] = phrase.segments
        else:
            segments = phrase
        if not segments:
            raise PromptError("an empty phrase has nothing to say")
        files = await asyncio.gather(*(self._segment_file(s, tenant, language) for s in segments))
        gap = np.zeros(8 * GAP_MS, np.int16)
        parts: list[npt.NDArray[np.int16]] = []
        for path in files:
            try:
                samples = await asyncio.to_thread(load_source, os.fspath(path))
            except ValueError as exc:
                raise PromptError(str(exc)) from None
            parts += [_trim(samples), gap]
        return np.concatenate(parts[:-1]).astype(np.int16)

    async def _segment_file(
        self, segment: Segment, tenant: str | None, language: str | None
    ) -> Path:
        if segment.kind == "prompt":
            return await self.audio_file(segment.value, tenant=tenant, language=language)
        return await self.speak(segment.value, tenant=tenant, language=language)


def _chain(language: str) -> list[str]:
    """``en-gb`` -> [en-gb, en]."""
    base = language.split("-", 1)[0]
    return [language] if base == language else [language, base]


def _trim(samples: npt.NDArray[np.int16], floor: int = 200) -> npt.NDArray[np.int16]:
    """Leading and trailing silence cut (TTS pads each word; a number would drag)."""
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > floor)
    if not len(loud):
        return samples
    start = max(0, int(loud[0]) - 40)
    end = min(len(samples), int(loud[-1]) + 41)
    return samples[start:end]
