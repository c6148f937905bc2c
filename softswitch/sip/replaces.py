"""The Replaces header (RFC 3891), sans-I/O: parse and format it, and find it inside a
Refer-To URI, where an attended transfer carries it as an escaped URI header
(``<sip:c@host?Replaces=call-id%3Bto-tag%3D1%3Bfrom-tag%3D2>``, RFC 3891 section 7.2).

``to_tag`` and ``from_tag`` are named as RFC 3891 names them: the receiver of the
Replaces matches ``to_tag`` against its own (local) tag and ``from_tag`` against the
remote tag of its dialog (section 3).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from softswitch.sip.headers import is_token, parse_params
from softswitch.sip.message import SipParseError
from softswitch.sip.uri import SipUri, unescape

__all__ = ["Replaces", "escape_for_uri", "format_replaces", "parse_replaces", "refer_to_replaces"]

# The characters RFC 3261's hvalue allows unescaped in a URI header value, besides
# unreserved ones; ';', '=', '@' and '%' of the Replaces value must be escaped.
_HVALUE_SAFE = "[]/?:+$-_.!~*'()"


@dataclass(frozen=True, slots=True)
class Replaces:
    """The dialog a new INVITE replaces: ``call_id`` with ``to_tag`` (the receiver's local
    tag) and ``from_tag`` (the receiver's remote tag); ``early_only`` refuses a confirmed
    dialog."""

    call_id: str
    to_tag: str
    from_tag: str
    early_only: bool = False


def _bad(reason: str) -> SipParseError:
    return SipParseError(400, f"Bad Replaces: {reason}")


def parse_replaces(text: str) -> Replaces:
    """Parse a Replaces header value (``callid;to-tag=..;from-tag=..[;early-only]``).

    Raises SipParseError (400) naming what is wrong: no Call-ID, a tag missing, empty or
    given twice, or a malformed parameter."""
    value = text.strip()
    call_id, semi, param_text = value.partition(";")
    call_id = call_id.strip()
    if not call_id or any(c in call_id for c in ' \t,"<>'):
        raise _bad("Call-ID")
    if not semi:
        raise _bad("no to-tag and from-tag")
    names = [item.partition("=")[0].strip().lower() for item in param_text.split(";")]
    if len(names) != len(set(names)):
        raise _bad("repeated parameter")
    try:
        params = parse_params(param_text, "Replaces parameter")
    except SipParseError as exc:
        raise _bad("parameter") from exc
    to_tag = params.get("to-tag")
    from_tag = params.get("from-tag")
    if not to_tag or not is_token(to_tag):
        raise _bad("to-tag")
    if not from_tag or not is_token(from_tag):
        raise _bad("from-tag")
    if "early-only" in params and params["early-only"] is not None:
        raise _bad("early-only takes no value")
    return Replaces(call_id, to_tag, from_tag, "early-only" in params)


def format_replaces(replaces: Replaces) -> str:
    """The Replaces header value of ``replaces``."""
    text = f"{replaces.call_id};to-tag={replaces.to_tag};from-tag={replaces.from_tag}"
    return text + ";early-only" if replaces.early_only else text


def refer_to_replaces(uri: SipUri) -> Replaces | None:
    """The Replaces a Refer-To URI carries as a URI header, or None when it has none.

    Raises SipParseError (400) when the URI carries a malformed or repeated Replaces."""
    found = [value for name, value in uri.headers.items() if name.lower() == "replaces"]
    if not found:
        return None
    if len(found) > 1:
        raise _bad("given twice in Refer-To")
    return parse_replaces(unescape(found[0]))


def escape_for_uri(replaces: Replaces) -> str:
    """``replaces`` escaped as a URI header value (for a Refer-To the switch builds)."""
    return quote(format_replaces(replaces), safe=_HVALUE_SAFE)
