"""Media settings: whether calls are anchored in the media engine and where it binds."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from config.audio import check_playable

__all__ = ["MediaSettings"]


def _ip(value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("must be an IP address")
    try:
        return str(ipaddress.ip_address(value.strip().strip("[]")))
    except ValueError:
        raise ValueError("must be an IP address") from None


class MediaSettings(BaseModel):
    """``[media]``: anchoring and the RTP port range.

    ``anchor = "always"`` puts the switch in the media path of every call (NAT traversal by
    symmetric RTP, music on hold, *98/*99 recording, DTMF, quality in the CDR);
    ``"never"`` passes SDP through and the phones talk to each other directly.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    anchor: Literal["always", "never"] = "always"
    address: str = "0.0.0.0"  # IP the RTP sockets bind to
    # IP written in SDP; default: the address, or for 0.0.0.0 the host's primary address
    advertised_address: str | None = None
    port_min: int = Field(default=20000, ge=1024, le=65534)
    port_max: int = Field(default=29999, ge=1025, le=65535)
    hold_music: Path | None = None  # WAV a held party hears; None = silence
    recordings_dir: Path = Path("data/recordings")
    # In-band (Goertzel) DTMF detection: "auto" on legs whose phone did not offer RFC 4733
    # telephone-event, "always" on every leg (phones that send tones in the audio whatever
    # they negotiate; costs a decode per leg), "never".
    inband_dtmf: Literal["auto", "always", "never"] = "auto"
    feature_codes: bool = True  # *98 starts and *99 stops a recording mid-call

    @field_validator("address", mode="before")
    @classmethod
    def _address(cls, value: Any) -> Any:
        return _ip(value)

    @field_validator("advertised_address", mode="before")
    @classmethod
    def _advertised(cls, value: Any) -> Any:
        return _ip(value)

    @field_validator("hold_music", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("hold_music")
    @classmethod
    def _music_plays(cls, value: Path | None) -> Path | None:
        if value is not None:
            check_playable(value)  # ValueError naming the file and what is wrong
        return value

    @model_validator(mode="after")
    def _range(self) -> MediaSettings:
        if self.port_max - self.port_min < 1:
            raise ValueError("port_max must be above port_min (at least one RTP/RTCP pair)")
        return self
