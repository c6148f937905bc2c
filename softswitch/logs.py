"""structlog set-up: key/value events to a file (and standard error for `make run`)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TextIO

import structlog

from config.models import LoggingSettings


def configure_logging(settings: LoggingSettings, *, also_stderr: bool = True) -> Path | None:
    """Route structlog events to the configured file; returns the log file path, if any."""
    level = logging.getLevelNamesMapping()[settings.level]
    streams: list[TextIO] = []
    path = settings.file
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        streams.append(path.open("a", encoding="utf-8", buffering=1))
    if also_stderr or not streams:
        streams.append(sys.stderr)
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if settings.format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        # Below the level a log call is a no-op method: nothing is formatted on hot paths.
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=lambda *args: _TeeLogger(streams),
        cache_logger_on_first_use=True,
    )
    return path


class _TeeLogger:
    """Writes each rendered event line to every stream."""

    def __init__(self, streams: list[TextIO]):
        self._streams = streams

    def msg(self, message: str) -> None:
        for stream in self._streams:
            stream.write(message + "\n")

    debug = info = warning = warn = error = critical = exception = fatal = log = msg
