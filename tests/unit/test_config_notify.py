"""[smtp] and [subscriptions]: what is accepted and the errors that name the field."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from config.models import SwitchConfig
from config.smtp import SmtpSettings, SubscriptionSettings


def test_smtp_defaults_and_secret() -> None:
    smtp = SmtpSettings(host="smtp.example.com", from_address="vm@example.com")
    assert (smtp.port, smtp.security, smtp.retries) == (587, "starttls", 5)
    with_login = SmtpSettings.model_validate(
        {
            "host": "h",
            "from_address": "vm@example.com",
            "username": "u",
            "password": "s3cr3t-pw",
        }
    )
    assert with_login.password is not None and "s3cr3t-pw" not in repr(with_login)


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"from_address": "not an address"}, "from_address"),
        ({"username": "u"}, "password go together"),
        ({"security": "ssl"}, "security"),
        ({"port": 0}, "port"),
        ({"timeout": 0}, "timeout"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_smtp_errors_name_the_field(values: dict[str, object], field: str) -> None:
    data: dict[str, object] = {"host": "h", "from_address": "vm@example.com", **values}
    with pytest.raises(ValidationError, match=field):
        SmtpSettings.model_validate(data)


def test_subscriptions_in_the_switch_config() -> None:
    config = SwitchConfig.model_validate(
        {
            "subscriptions": {"min_expires": 30, "max_expires": 600},
            "smtp": {"host": "h", "from_address": "vm@example.com"},
        }
    )
    assert config.subscriptions.min_expires == 30 and config.smtp is not None
    assert SwitchConfig().smtp is None
    with pytest.raises(ValidationError, match="max_expires"):
        SubscriptionSettings(min_expires=100, max_expires=10)
