"""SDES key exchange in SDP (RFC 4568 ``a=crypto``) per leg, under an SRTP policy.

Sans-I/O: it reads and writes :class:`media.sdp.MediaDescription` and hands back
:class:`media.srtp.SrtpKeys` for the leg; the media path builds the :class:`SrtpLeg`.

Policy (per tenant and per trunk): ``off`` offers plain RTP/AVP and refuses an offer that
insists on SRTP (RTP/SAVP); ``optional`` offers RTP/AVP with ``a=crypto`` lines (best-effort
SRTP, what most phones and baresip's ``mediaenc=srtp`` speak) and answers SRTP when the
peer offers keys, plain RTP otherwise; ``required`` offers RTP/SAVP and refuses a plain
offer or answer with 488.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Final, Literal

from media.sdp import Attribute, MediaDescription, NegotiationError, SdpError
from media.srtp import SUITES, SrtpKeys, new_master_key, suite_named

__all__ = [
    "PLAIN_PROTO",
    "SECURE_PROTO",
    "CryptoAttribute",
    "SrtpOffer",
    "SrtpPolicy",
    "accept_answer",
    "answer_crypto",
    "offer_crypto",
    "parse_crypto",
]

SrtpPolicy = Literal["off", "optional", "required"]
PLAIN_PROTO: Final = "RTP/AVP"
SECURE_PROTO: Final = "RTP/SAVP"


@dataclass(frozen=True, slots=True)
class CryptoAttribute:
    """One ``a=crypto:<tag> <suite> inline:<key||salt>[|lifetime][|MKI:len] [params]``."""

    tag: int
    suite: str
    key: bytes
    lifetime: str | None = None
    mki: str | None = None
    session_params: str = ""

    def __str__(self) -> str:
        inline = "inline:" + base64.b64encode(self.key).decode("ascii")
        if self.lifetime is not None:
            inline += "|" + self.lifetime
        if self.mki is not None:
            inline += "|" + self.mki
        text = f"{self.tag} {self.suite} {inline}"
        return f"{text} {self.session_params}" if self.session_params else text


def parse_crypto(value: str) -> CryptoAttribute:
    """Parse the value of an ``a=crypto`` attribute; :class:`SdpError` says what is wrong."""
    parts = value.split(None, 3)
    if len(parts) < 3:
        raise SdpError(f"a=crypto needs a tag, a suite and key parameters: {value!r}")
    tag_s, suite, key_params = parts[0], parts[1], parts[2]
    if not (tag_s.isascii() and tag_s.isdigit()) or len(tag_s) > 9:
        raise SdpError(f"a=crypto tag must be 1-9 digits: {tag_s!r}")
    # Several key-params (';'-separated) only serve MKI key rotation; the first is the key.
    method, _, info = key_params.split(";", 1)[0].partition(":")
    if method != "inline":
        raise SdpError(f"a=crypto key method must be inline, not {method!r}")
    key_s, *extra = info.split("|")
    try:
        key = base64.b64decode(key_s, validate=True)
    except (binascii.Error, ValueError):
        raise SdpError(f"a=crypto key is not base64: {key_s!r}") from None
    lifetime = mki = None
    for item in extra:
        if ":" in item:
            mki = item
        else:
            lifetime = item
    return CryptoAttribute(
        int(tag_s), suite, key, lifetime, mki, parts[3].strip() if len(parts) > 3 else ""
    )


def _usable(crypto: CryptoAttribute) -> bool:
    """Whether we can run this offered crypto line: known suite, right key size, no MKI or
    session parameters (libsrtp via pylibsrtp takes neither), lifetime at most 2^48."""
    suite = suite_named(crypto.suite)
    if suite is None or len(crypto.key) != suite.key_length:
        return False
    if crypto.mki is not None or crypto.session_params:
        return False
    if crypto.lifetime is not None:
        lifetime = crypto.lifetime
        if lifetime.startswith("2^"):
            return (lifetime[2:].isascii() and lifetime[2:].isdigit()) and int(lifetime[2:]) <= 48
        return lifetime.isascii() and lifetime.isdigit()
    return True


def _offered(m: MediaDescription) -> list[CryptoAttribute]:
    """The m= section's crypto lines we understand, in the offerer's order of preference;
    unparsable ones are skipped (RFC 4568 section 7.1.1: ignore what is not understood)."""
    out: list[CryptoAttribute] = []
    for value in m.attribute_values("crypto"):
        try:
            crypto = parse_crypto(value)
        except SdpError:
            continue
        if _usable(crypto):
            out.append(crypto)
    return out


def _without_crypto(m: MediaDescription) -> list[Attribute]:
    return [a for a in m.attributes if a.name != "crypto"]


@dataclass(frozen=True, slots=True)
class SrtpOffer:
    """The keys we put in an offer, by tag, to pick from when the answer comes."""

    keys: dict[int, tuple[str, bytes]]  # tag -> (suite, our master key + salt)


def offer_crypto(m: MediaDescription, policy: SrtpPolicy) -> SrtpOffer | None:
    """Make ``m`` (our offer for one audio stream) carry our keys under ``policy``.

    Sets the proto (RTP/SAVP when required, RTP/AVP otherwise) and replaces any
    ``a=crypto`` lines with one per suite we support. Returns None for ``off``.
    """
    m.attributes = _without_crypto(m)
    if policy == "off":
        m.proto = PLAIN_PROTO
        return None
    m.proto = SECURE_PROTO if policy == "required" else PLAIN_PROTO
    keys: dict[int, tuple[str, bytes]] = {}
    for tag, suite in enumerate(SUITES, start=1):
        key = new_master_key(suite)
        keys[tag] = (suite.name, key)
        m.attributes.append(Attribute("crypto", str(CryptoAttribute(tag, suite.name, key))))
    return SrtpOffer(keys)


def answer_crypto(
    offer: MediaDescription, answer: MediaDescription, policy: SrtpPolicy
) -> SrtpKeys | None:
    """Answer one offered audio stream's SRTP under ``policy``, writing ``answer``'s proto
    and ``a=crypto`` line; the leg's keys, or None for plain RTP.

    Raises :class:`NegotiationError` (488) when the policy and the offer cannot meet: a
    plain offer under ``required``, an RTP/SAVP offer under ``off`` or without a usable
    crypto line.
    """
    answer.attributes = _without_crypto(answer)
    secure_proto = offer.proto == SECURE_PROTO
    offered = _offered(offer) if policy != "off" else []
    if not offered:
        if secure_proto:
            reason = "SRTP is off here" if policy == "off" else "no usable a=crypto"
            raise NegotiationError(f"RTP/SAVP offer refused: {reason}")
        if policy == "required":
            raise NegotiationError("SRTP required: the offer has no usable a=crypto")
        answer.proto = PLAIN_PROTO
        return None
    chosen = offered[0]
    suite = suite_named(chosen.suite)
    assert suite is not None  # _usable checked it
    local_key = new_master_key(suite)
    answer.proto = offer.proto
    answer.attributes.append(
        Attribute("crypto", str(CryptoAttribute(chosen.tag, chosen.suite, local_key)))
    )
    return SrtpKeys(chosen.suite, local_key=local_key, remote_key=chosen.key)


def accept_answer(
    sent: SrtpOffer | None, answer: MediaDescription, policy: SrtpPolicy
) -> SrtpKeys | None:
    """The leg's keys from the peer's answer to our offer ``sent``, or None for plain RTP.

    Raises :class:`NegotiationError` (488) when ``required`` and the answer has no
    acceptable crypto line, or when the answer's crypto line names a tag or suite we did
    not offer.
    """
    values = answer.attribute_values("crypto") if sent is not None else []
    if not values:
        if policy == "required":
            raise NegotiationError("SRTP required: the answer has no a=crypto")
        return None
    assert sent is not None
    try:
        crypto = parse_crypto(values[0])
    except SdpError as exc:
        raise NegotiationError(f"bad a=crypto in answer: {exc.reason}") from None
    ours = sent.keys.get(crypto.tag)
    if ours is None or ours[0] != crypto.suite or not _usable(crypto):
        raise NegotiationError(f"answer's a=crypto tag {crypto.tag} does not match the offer")
    return SrtpKeys(crypto.suite, local_key=ours[1], remote_key=crypto.key)
