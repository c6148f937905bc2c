"""The media state one anchored call keeps: its recordings, the feature-code keys pressed
so far, and each side's quality figures for the CDR."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["CallMedia"]


@dataclass(slots=True)
class CallMedia:
    """The media state of one anchored call."""

    recording: Any = None  # the engine's (or worker pool's) recording handle
    recording_started: float = 0.0
    recordings: list[dict[str, Any]] = field(default_factory=list)
    keys: str = ""  # feature-code keys collected so far
    key_at: float = 0.0
    quality: dict[str, Any] = field(default_factory=dict)
