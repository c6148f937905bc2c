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

from config.routing import FeatureCode

__all__ = [
    "PROMPT_NAME",
    "RECORD_KIND",
    "PromptSettings",
    "TenantPrompts",
    "canonical_language",
]

#: A prompt's name: lower-case words joined by ``-`` or ``_``, ``/`` between groups.
PROMPT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}(/[a-z0-9][a-z0-9_-]{0,63}){0,3}")
#: The routing target kind of the record-a-prompt feature code (routing.plan.TargetKind).
RECORD_KIND = "prompt_record"
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
    # synthesise the generated system prompts at start-up, in a child at the lowest CPU
    # priority (softswitch/prompts/warm.py), so that a fresh install's first caller need
    # not wait for them
    warm_at_start: bool = True

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
    """``[tenants.prompts]``: a tenant's default language, voices and speaking rate, and
    who may record prompts by phone.

    ``recorders`` (extensions) dial ``record_code`` and then a prompt number and ``#``, or
    ``record_code`` followed at once by one of ``slots`` (``*951``): the number names the
    prompt, or ``slots`` maps it to a name (``"1" = "welcome"``) so an attendant's
    ``prompt = "welcome"`` plays the recording. No recorders: the code is not routed.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    language: str | None = None  # None: [prompts] language
    voices: dict[str, str] = Field(default_factory=dict)  # over [prompts] voices
    rate: int | None = Field(default=None, ge=80, le=450)
    record_code: str = Field(default="*95", pattern=r"\*[0-9]{1,4}")
    recorders: tuple[str, ...] = ()
    slots: dict[str, str] = Field(default_factory=dict)  # prompt number -> prompt name
    max_record_seconds: int = Field(default=120, ge=5, le=600)

    @field_validator("slots")
    @classmethod
    def _slots(cls, value: dict[str, str]) -> dict[str, str]:
        for number, name in value.items():
            if not (number.isascii() and number.isdigit() and 1 <= len(number) <= 4):
                raise ValueError(f"slot {number!r}: a prompt number is 1 to 4 digits")
            if not PROMPT_NAME.fullmatch(name):
                raise ValueError(f"slot {number}: {name!r} is not a prompt name")
        return value

    def prompt_name(self, number: str) -> str | None:
        """The prompt a phone recording under ``number`` is stored as (None: not a number)."""
        if not (number.isascii() and number.isdigit() and 1 <= len(number) <= 4):
            return None
        return self.slots.get(number, number)

    def feature_codes(self) -> dict[str, FeatureCode]:
        """The record code (asks for the number) and one code per slot (routing's)."""
        if not self.recorders:
            return {}
        codes = {self.record_code: FeatureCode(kind=RECORD_KIND)}
        for number, name in self.slots.items():
            codes[self.record_code + number] = FeatureCode(kind=RECORD_KIND, ref=name)
        return codes

    def problems(self, users: set[str], taken: set[str]) -> list[tuple[tuple[str | int, ...], str]]:
        """Cross-references against the tenant: (location under prompts, message);
        ``taken`` are the tenant's other feature codes."""
        out: list[tuple[tuple[str | int, ...], str]] = []
        for i, ext in enumerate(self.recorders):
            if ext not in users:
                out.append((("recorders", i), f"{ext!r} is not a user of this tenant"))
        if self.recorders:
            clash = sorted(taken.intersection(self.feature_codes()))
            if clash:
                out.append((("record_code",), f"{', '.join(clash)} already a feature code"))
        return out

    @field_validator("language")
    @classmethod
    def _language(cls, value: str | None) -> str | None:
        return None if value is None else canonical_language(value)

    @field_validator("voices")
    @classmethod
    def _check_voices(cls, value: dict[str, str]) -> dict[str, str]:
        return _voices(value)
