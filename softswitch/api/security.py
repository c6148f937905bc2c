"""Secrets of the admin API: password hashes (argon2id), bearer tokens, TOTP codes.

Passwords are hashed with argon2id (memory-hard). Token secrets are 256 random bits, so a
plain SHA-256 of them is as good as a slow hash and keeps each request cheap; the token
string carries its id so that lookup needs no scan: ``ss_<id>_<secret>``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = [
    "NewToken",
    "hash_password",
    "hash_secret",
    "new_token",
    "new_totp_secret",
    "parse_token",
    "totp_uri",
    "verify_password",
    "verify_secret",
    "verify_totp",
]

_HASHER = PasswordHasher()
_PREFIX = "ss_"
# Verifying against this keeps a login with an unknown name as slow as a wrong password.
_DUMMY_HASH = _HASHER.hash(secrets.token_hex(16))


def hash_password(password: str) -> str:
    """The argon2id hash (PHC string, salt and parameters included) of ``password``."""
    return _HASHER.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """True when ``password`` matches ``stored``; a login without a password never matches
    (the work is done anyway, so timing does not tell which names exist)."""
    try:
        return _HASHER.verify(stored or _DUMMY_HASH, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True, slots=True)
class NewToken:
    """A freshly made token: ``text`` is shown once, only ``secret_hash`` is stored."""

    id: str
    text: str
    secret_hash: str


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_token() -> NewToken:
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return NewToken(token_id, f"{_PREFIX}{token_id}_{secret}", hash_secret(secret))


def parse_token(text: str) -> tuple[str, str] | None:
    """(id, secret) of a token string, or None when it is not one of ours."""
    if not text.startswith(_PREFIX):
        return None
    token_id, sep, secret = text[len(_PREFIX) :].partition("_")
    if not sep or len(token_id) != 16 or not secret:
        return None
    return token_id, secret


def verify_secret(stored_hash: str, secret: str) -> bool:
    return hmac.compare_digest(stored_hash, hash_secret(secret))


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(secret: str, name: str, issuer: str = "softswitch") -> str:
    """The otpauth:// URI an authenticator app scans (as a QR code)."""
    return pyotp.TOTP(secret).provisioning_uri(name=name, issuer_name=issuer)


def verify_totp(secret: str, code: str | None) -> bool:
    """A current six-digit code (one step of clock drift either way is accepted)."""
    if not code or not (code.isascii() and code.isdigit()):
        return False
    return pyotp.TOTP(secret).verify(code, valid_window=1)
