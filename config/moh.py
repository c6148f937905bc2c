"""Music on hold: the playlists of tenants, users and queues, and which one a held call hears.

A playlist is songs (played in order, or shuffled anew for every hold), an optional
introduction played once when the call is put on hold, and messages played between songs
once ``message_interval`` seconds of music have passed since the last message (or since
the hold began).  The most specific playlist wins as a whole: queue, then user, then
tenant; nothing configured means the media engine's default.

Every file is checked when the configuration is loaded (16-bit PCM WAV; see
:mod:`config.audio`), so a bad file is reported by its place in the configuration.
Relative paths are taken from the working directory, like the other files the
configuration names.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from config.audio import check_playable
from config.locations import Loc, config_error

__all__ = ["MusicOnHold"]


class MusicOnHold(BaseModel):
    """One music-on-hold playlist (see the module docstring for how it plays)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    songs: tuple[Path, ...]
    intro: Path | None = None
    messages: tuple[Path, ...] = ()
    # seconds of music between the end of one message and the start of the next
    message_interval: int = Field(default=30, ge=15, le=120)
    randomise: bool = False

    @field_validator("songs")
    @classmethod
    def _some_songs(cls, value: tuple[Path, ...]) -> tuple[Path, ...]:
        if not value:
            raise ValueError("must list at least one song")
        return value

    @model_validator(mode="after")
    def _files_play(self) -> MusicOnHold:
        items: list[tuple[Loc, str]] = []
        for loc, path in self.files():
            try:
                check_playable(path)
            except ValueError as exc:
                items.append((loc, str(exc)))
        if items:
            raise config_error(items)
        return self

    def files(self) -> list[tuple[Loc, Path]]:
        """Every file of the playlist with its location in the configuration."""
        out: list[tuple[Loc, Path]] = [(("intro",), self.intro)] if self.intro else []
        out += [(("songs", i), p) for i, p in enumerate(self.songs)]
        out += [(("messages", i), p) for i, p in enumerate(self.messages)]
        return out
