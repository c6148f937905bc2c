"""What the `softswitch` sub-commands share: ending a command with a message and an exit
status, quiet logs, the configuration loaded with a clear error, the store around a piece of
async work.

Exit statuses the commands use: 0 done, 1 refused, 2 bad configuration or arguments,
3 database unavailable.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog

from config import ConfigError, SwitchConfig, load_config
from storage import StorageError, Store, open_store

__all__ = [
    "CommandError",
    "guarded",
    "load_checked_config",
    "load_config_or_exit",
    "quiet_logs",
    "with_store",
]

_T = TypeVar("_T")


class CommandError(Exception):
    """Ends a command with a message on stderr and an exit status."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def guarded(
    func: Callable[[argparse.Namespace], int], *also: type[Exception], prefix: str = "softswitch: "
) -> Callable[[argparse.Namespace], int]:
    """`func` as a command: a CommandError (or one of `also`, status 1) becomes its message
    on stderr, after `prefix`, and the exit status."""

    def run(args: argparse.Namespace) -> int:
        try:
            return int(func(args))
        except CommandError as exc:
            print(f"{prefix}{exc}", file=sys.stderr)
            return exc.status
        except also as exc:
            print(f"{prefix}{exc}", file=sys.stderr)
            return 1

    return run


def quiet_logs() -> None:
    """Only warnings, on stderr: a command's results go to stdout, and the store's info
    events (migrations) would mix into them."""
    structlog.configure(
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
    )


def load_checked_config(path: str, database: str | None = None) -> SwitchConfig:
    """The configuration file at `path`, its database URL replaced by `database` if given.

    Raises CommandError (status 2) naming the file and its errors.
    """
    try:
        config = load_config(path)
    except ConfigError as error:
        raise CommandError(f"{path}: configuration has errors:\n{error}", 2) from None
    if database:
        config = config.model_copy(
            update={"database": config.database.model_copy(update={"url": database})}
        )
    return config


def load_config_or_exit(path: str, database: str | None = None) -> SwitchConfig:
    """load_checked_config for the commands that print errors bare: the message on stderr,
    then SystemExit(2)."""
    try:
        return load_checked_config(path, database)
    except CommandError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(exc.status) from None


def with_store(config: SwitchConfig, work: Callable[[Store], Awaitable[_T]]) -> _T:
    """Run `work` on the configuration's database, opened and closed around it, logs quiet.

    A bad database URL raises CommandError status 2, an unavailable database status 3.
    """
    quiet_logs()

    async def run() -> _T:
        try:
            store = open_store(config.database.url)
        except ValueError as exc:
            raise CommandError(f"database: {exc}", 2) from None
        await store.open()
        try:
            return await work(store)
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except StorageError as exc:
        raise CommandError(f"database: {exc}", 3) from None
