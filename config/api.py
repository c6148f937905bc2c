"""The `[api]` section: where the admin REST API listens and how it treats logins."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["ApiSettings"]


class ApiSettings(BaseModel):
    """The admin API (softswitch/api), served by the switch process when ``enabled``.

    TLS when ``tls_certificate`` is given (``tls_private_key`` when the key is not in the
    certificate file). A password login gets a session token valid ``session_lifetime``
    seconds; ``max_login_failures`` failed logins of one name or from one address within
    ``login_failure_window`` seconds refuse further attempts (429) until the window passes.
    The events WebSocket samples the switch's state every ``events_interval`` seconds, and
    only while someone listens.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    tls_certificate: Path | None = None
    tls_private_key: Path | None = None
    session_lifetime: float = Field(default=43_200, ge=60, le=30 * 86_400)
    max_login_failures: int = Field(default=5, ge=1, le=1000)
    login_failure_window: float = Field(default=900, ge=1, le=86_400)
    events_interval: float = Field(default=0.25, ge=0.05, le=10)

    @field_validator("host")
    @classmethod
    def _bare_host(cls, value: str) -> str:
        host = value.strip()
        if not host or any(c.isspace() for c in host):
            raise ValueError("must be a host name or IP address")
        return host[1:-1] if host.startswith("[") and host.endswith("]") else host

    @model_validator(mode="after")
    def _key_needs_certificate(self) -> Any:
        if self.tls_private_key is not None and self.tls_certificate is None:
            raise ValueError("tls_private_key given without tls_certificate")
        return self
