"""Prompts: where the prompt library lives, how text is spoken, and each tenant's language.

``[prompts]`` holds the switch-wide settings (the library's directory, the upload size
limit, the espeak-ng command, voices, speaking rate, timeout and cache bound);
``[tenants.prompts]`` a tenant's default language and its own voices and rate.  A voice is
an espeak-ng voice name (``en-us``, ``de``, ``fr+f3``); a language without a voice listed
is spoken by the espeak-ng voice of the same name.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["PromptSettings", "TenantPrompts", "canonical_language"]

_LANGUAGE = re.compile(r"[a-z]{2,3}(-[a-z0-9]{2,8})*")
_VOICE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_+./-]{0,63}")


def canonical_language(tag: str) -> str:
    """A BCP 47 tag in lower case with hyphens (``en_US`` -> ``en-us``); ValueError if bad."""
    value = tag.strip().replace("_", "-").lower()
    if not _LANGUAGE.fullmatch(value):
        raise ValueError(f"not a language tag: {tag!r} (e.g. en, en-us, de, fr-ca)")
    return value


def _voices(value: dict[str, str]) -> dict[str, str]:
    out = {}
    for language, voice in value.items():
        if not _VOICE.fullmatch(voice) or ".." in voice:
            raise ValueError(f"{language}: not an espeak-ng voice name: {voice!r}")
        out[canonical_language(language)] = voice
    return out


class PromptSettings(BaseModel):
    """``[prompts]``: the prompt library and text-to-speech."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # system/<language>/ and tenants/<tenant>/<language>/ hold the prompts, tts-cache/ the
    # synthesised speech
    directory: Path = Path("data/prompts")
    language: str = "en"  # of system prompts, and of tenants that name none
    max_upload_mb: int = Field(default=50, ge=1, le=1024)
    tts_command: str = "espeak-ng"
    voices: dict[str, str] = Field(default_factory=lambda: {"en": "en-us"})
    rate: int = Field(default=160, ge=80, le=450)  # words per minute
    tts_timeout: float = Field(default=10.0, gt=0, le=120)  # seconds per utterance
    tts_cache_mb: int = Field(default=200, ge=1, le=100_000)

    @field_validator("language")
    @classmethod
    def _language(cls, value: str) -> str:
        return canonical_language(value)

    @field_validator("voices")
    @classmethod
    def _check_voices(cls, value: dict[str, str]) -> dict[str, str]:
        return _voices(value)

    @field_validator("tts_command")
    @classmethod
    def _command(cls, value: str) -> str:
        if not value.strip() or any(c.isspace() for c in value):
            raise ValueError("must be one program name or path (no arguments)")
        return value


class TenantPrompts(BaseModel):
    """``[tenants.prompts]``: a tenant's default language, voices and speaking rate."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    language: str | None = None  # None: [prompts] language
    voices: dict[str, str] = Field(default_factory=dict)  # over [prompts] voices
    rate: int | None = Field(default=None, ge=80, le=450)

    @field_validator("language")
    @classmethod
    def _language(cls, value: str | None) -> str | None:
        return None if value is None else canonical_language(value)

    @field_validator("voices")
    @classmethod
    def _check_voices(cls, value: dict[str, str]) -> dict[str, str]:
        return _voices(value)
