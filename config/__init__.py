"""config package: pydantic models of the switch configuration and their TOML loader."""

from config.loader import ConfigError, config_from_dict, example_config_path, load_config
from config.models import (
    DIGEST_ALGORITHMS,
    AuthSettings,
    DatabaseSettings,
    Listener,
    LoggingSettings,
    RegistrarSettings,
    Settings,
    SipSettings,
    SipTimers,
    SwitchConfig,
    Tenant,
    User,
    hold_music_for,
)
from config.moh import MusicOnHold

__all__ = [
    "DIGEST_ALGORITHMS",
    "AuthSettings",
    "ConfigError",
    "DatabaseSettings",
    "Listener",
    "LoggingSettings",
    "MusicOnHold",
    "RegistrarSettings",
    "Settings",
    "SipSettings",
    "SipTimers",
    "SwitchConfig",
    "Tenant",
    "User",
    "config_from_dict",
    "example_config_path",
    "hold_music_for",
    "load_config",
]
