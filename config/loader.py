"""Load the switch configuration from TOML and report every error at once.

`load_config` never returns a half-valid configuration: either the whole file validates or
`ConfigError` lists each problem as (location, message), e.g.
`("tenants[0].users[3].extension", "must be digits")`.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from config.models import DatabaseSettings, SwitchConfig, format_location

__all__ = [
    "ConfigError",
    "config_from_dict",
    "example_config_path",
    "load_config",
    "located_errors",
]

_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")
_TOML_END = re.compile(r"\s*\(at end of document\)\s*$")


class ConfigError(Exception):
    """An invalid configuration. `errors` holds (location, message) pairs, in file order."""

    def __init__(self, errors: Iterable[tuple[str, str]], source: str | None = None) -> None:
        self.errors: list[tuple[str, str]] = list(errors)
        self.source = source  # the file, when loaded from one
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(f"{loc}: {msg}" for loc, msg in self.errors)


def example_config_path() -> Path:
    """The embedded default configuration shipped with the package."""
    return Path(str(resources.files("config").joinpath("example.toml")))


def load_config(path: str | os.PathLike[str]) -> SwitchConfig:
    """Read, parse and validate a TOML configuration file; raise `ConfigError` if invalid."""
    source = os.fspath(path)
    try:
        raw = Path(source).read_bytes()
    except OSError as exc:
        raise ConfigError([(source, f"cannot read file: {exc.strerror or exc}")], source) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError([(f"line {line}", "not valid UTF-8")], source) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([_toml_error(exc)], source) from None
    try:
        config = _validate(data)
    except ConfigError as exc:
        exc.source = source
        raise
    return _anchor_database(config, Path(source).resolve().parent)


def _anchor_database(config: SwitchConfig, folder: Path) -> SwitchConfig:
    """A relative SQLite path is the file's neighbour, not the working directory's: the
    command line run from anywhere must open the database the running switch uses."""
    path = config.database.sqlite_path
    if path is None or path.is_absolute() or str(path) == ":memory:":
        return config
    database = DatabaseSettings(url=f"sqlite:///{folder / path}")
    return config.model_copy(update={"database": database})


def config_from_dict(data: Mapping[str, Any]) -> SwitchConfig:
    """Validate already-parsed configuration data (as tomllib would return it)."""
    return _validate(data)


def _validate(data: Any) -> SwitchConfig:
    try:
        return SwitchConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_translate(exc)) from None


def _toml_error(exc: tomllib.TOMLDecodeError) -> tuple[str, str]:
    message = str(exc)
    match = _TOML_POSITION.search(message)
    if match:
        return f"line {match[1]}, column {match[2]}", message[: match.start()]
    match = _TOML_END.search(message)
    if match:
        return "end of file", message[: match.start()]
    return "toml", message


def _translate(exc: ValidationError) -> list[tuple[str, str]]:
    return [(format_location(loc) or "config", message) for loc, message in located_errors(exc)]


def located_errors(exc: ValidationError) -> list[tuple[tuple[str | int, ...], str]]:
    """A pydantic error of the configuration models as (location tuple, operator message)
    pairs, multi-location errors expanded: `(("users", 3, "extension"), "must be digits")`."""
    out: list[tuple[tuple[str | int, ...], str]] = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        ctx = err.get("ctx") or {}
        if err["type"] == "switch_config" and "items" in ctx:
            for rel, message in ctx["items"]:
                out.append((loc + tuple(rel), message))
            continue
        out.append((loc, _message(err["type"], err["msg"])))
    return out


def _message(kind: str, msg: str) -> str:
    """Operator wording for pydantic's messages."""
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        return "unknown key"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return "must be a table"
    if kind == "list_type":
        return "must be an array"
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            return msg[len(prefix) :]
    if msg.startswith("Input should be "):
        return "must be " + msg[len("Input should be ") :]
    if msg.startswith("Input should have "):
        return "must have " + msg[len("Input should have ") :]
    if msg.startswith("String should have "):
        return "must have " + msg[len("String should have ") :]
    if msg.startswith("List should have "):
        return "must have " + msg[len("List should have ") :]
    return msg[:1].lower() + msg[1:]
