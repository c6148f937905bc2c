"""Who the caller is, and how each outbound leg says so.

The B2BUA builds every outbound INVITE afresh, so nothing identity-related crosses from the
caller's leg by accident: P-Asserted-Identity and P-Preferred-Identity from a phone or an
untrusted carrier are simply never copied (RFC 3325 5). What the legs carry is set here:

- the caller identity: an authenticated user, a trusted trunk's P-Asserted-Identity, or (from
  an untrusted trunk) the unverified From;
- privacy (RFC 3323): a caller who withholds their number (Privacy: id, or an anonymous From)
  reaches phones as "Anonymous" with no PAI; a trunk gets an anonymous From, ``Privacy: id``
  and the PAI it needs to bill and route emergency calls;
- forwarded calls: Diversion (RFC 5806) and History-Info (RFC 7044, cause URI parameter of
  RFC 4458) for each forward.
"""

from __future__ import annotations

from dataclasses import dataclass

from config.models import User
from config.trunks import Trunk
from routing.numbers import clean
from routing.plan import DiversionReason, Target
from softswitch.sip.headers import parse_name_addr, quote_display_name
from softswitch.sip.message import SipParseError, SipRequest

__all__ = [
    "ANONYMOUS_FROM",
    "CallerIdentity",
    "diversion_headers",
    "is_withheld",
    "phone_identity",
    "subscriber_caller",
    "trunk_caller",
    "trunk_identity",
]

Header = tuple[str, str]

ANONYMOUS_FROM = '"Anonymous" <sip:anonymous@anonymous.invalid>'
_PRIVACY_HIDING = frozenset({"id", "user", "header"})
_ANONYMOUS_USERS = frozenset({"anonymous", "restricted", "unavailable", "unknown", "private"})

#: RFC 4458 cause of each forward, for History-Info's target URI and Reason.
_CAUSE = {
    DiversionReason.UNCONDITIONAL: 302,
    DiversionReason.BUSY: 486,
    DiversionReason.NO_ANSWER: 408,
    DiversionReason.UNAVAILABLE: 503,
    DiversionReason.DO_NOT_DISTURB: 480,
}


@dataclass(frozen=True, slots=True)
class CallerIdentity:
    """The caller as the switch knows them.

    ``number``: extension or number (what the CDR and routing see). ``asserted``: vouched for
    (an authenticated user, or the PAI of a trusted trunk) rather than merely claimed.
    ``private``: the caller asked for their identity to be withheld from the callee.
    """

    number: str
    name: str
    asserted: bool
    private: bool = False


def is_withheld(request: SipRequest) -> bool:
    """True when the caller withholds their identity: Privacy id/user/header, or an
    anonymous From (RFC 3323)."""
    from_ = request.from_
    if from_ is not None:
        uri = from_.uri
        if (uri.user or "").lower() in _ANONYMOUS_USERS or uri.host == "anonymous.invalid":
            return True
    # Privacy is not a comma list: priv-values are separated by ';' (RFC 3323 4.2).
    return any(
        token.strip().lower() in _PRIVACY_HIDING
        for value in request.get_all("Privacy")
        for token in value.split(";")
    )


def _asserted(request: SipRequest) -> tuple[str, str] | None:
    """(number, display name) of the first usable P-Asserted-Identity (sip, sips or tel)."""
    for value in request.get_all("P-Asserted-Identity"):
        try:
            addr = parse_name_addr(value)
            uri = addr.uri
        except (SipParseError, ValueError):
            continue
        number = clean(uri.user or "") if uri.scheme in ("sip", "sips", "tel") else ""
        if number and number.lower() not in _ANONYMOUS_USERS:
            return number, addr.display_name or ""
    return None


def trunk_caller(request: SipRequest, trunk: Trunk) -> CallerIdentity:
    """The caller of an INVITE from ``trunk``: its PAI if the trunk is trusted, else From."""
    from_ = request.from_
    assert from_ is not None
    private = is_withheld(request)
    if trunk.trust_identity:
        asserted = _asserted(request)
        if asserted is not None:
            number, name = asserted
            return CallerIdentity(number, name or from_.display_name or "", True, private)
    return CallerIdentity(from_.uri.user or "anonymous", from_.display_name or "", False, private)


def subscriber_caller(request: SipRequest, user: User) -> CallerIdentity:
    """The caller of an INVITE an authenticated ``user`` sent."""
    from_ = request.from_
    name = user.display_name or (from_.display_name if from_ is not None else "") or ""
    return CallerIdentity(user.extension, name, True, is_withheld(request))


def _name_addr(name: str, number: str, host: str) -> str:
    display = f"{quote_display_name(name)} " if name else ""
    return f"{display}<sip:{number}@{host}>"


def phone_identity(caller: CallerIdentity, domain: str) -> tuple[str, list[Header]]:
    """(From without tag, extra headers) of a leg to one of our phones. A phone is outside
    the trust domain for privacy: a withheld caller shows as Anonymous, with no PAI."""
    if caller.private:
        return ANONYMOUS_FROM, []
    from_value = _name_addr(caller.name, caller.number, domain)
    return from_value, [("P-Asserted-Identity", from_value)] if caller.asserted else []


def trunk_identity(
    caller: CallerIdentity, user: User | None, trunk: Trunk, host: str
) -> tuple[str, list[Header]]:
    """(From without tag, extra headers) of a leg to a carrier, by the trunk's caller-ID
    policy. The identity we vouch for: the user's caller ID (else the trunk's, else the
    extension); for a caller from outside, their number if a trusted carrier asserted it,
    else the trunk's number."""
    if user is not None:
        own = user.caller_id or trunk.caller_id or caller.number
    elif caller.asserted:
        own = caller.number
    else:
        own = trunk.caller_id or caller.number
    presented = trunk.caller_id if trunk.caller_id_policy == "trunk" else own
    assert presented is not None  # the trunk model requires caller_id for that policy
    headers: list[Header] = []
    if trunk.send_pai:
        headers.append(("P-Asserted-Identity", f"<sip:{own}@{host}>"))
    if caller.private:
        headers.append(("Privacy", "id"))
        return ANONYMOUS_FROM, headers
    return _name_addr(caller.name, presented, host), headers


def diversion_headers(target: Target, domain: str, target_uri: str) -> list[Header]:
    """Diversion (most recent first) and History-Info for a forwarded call, [] otherwise.

    History-Info: the first forwarder is index 1; each forward retargets the entry before
    it (``mp``, RFC 7044 10.2) with the RFC 4458 cause in the new target's URI and the
    cause as the Reason of the entry it left; the last entry is this leg's ``target_uri``.
    """
    hops = target.diversions()
    if not hops:
        return []
    headers: list[Header] = [
        ("Diversion", f"<sip:{who}@{domain}>;reason={reason.value};counter=1")
        for who, reason in reversed(hops)
    ]
    entries = []
    index = "1"
    parent = ""
    cause = 0
    for who, reason in hops:
        entries.append(_hi_entry(f"sip:{who}@{domain}", index, parent, cause, _CAUSE[reason]))
        cause = _CAUSE[reason]
        parent, index = index, index + ".1"
    entries.append(_hi_entry(target_uri, index, parent, cause, 0))
    headers.append(("History-Info", ", ".join(entries)))
    return headers


def _hi_entry(uri: str, index: str, parent: str, cause: int, left: int) -> str:
    """One hi-entry: ``cause`` (why it was reached) as a URI parameter, ``left`` (why it
    was left) as an escaped Reason header in the URI."""
    text = f"{uri};cause={cause}" if cause else uri
    if left:
        text += f"?Reason=SIP%3Bcause%3D{left}"
    entry = f"<{text}>;index={index}"
    return f"{entry};mp={parent}" if parent else entry
