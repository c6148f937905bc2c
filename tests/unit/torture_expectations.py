"""What the server (not the message layer) must do with the RFC 4475 / RFC 5118 torture cases.

The message layer decides a case when ``parse_message`` raises a status for it, when
``check_request`` returns one, or when the case is a plain well-formed message (category
"valid", expect_class "accept"). Every other case parses into something the server can
answer (or, for the ones marked silence/no-crash here where the parser found nothing
usable, a SipParseError whose ``message`` is None) and the outcome depends on the server:
unsolicited responses absorbed silently, 420 for Require, registrar and proxy behaviour,
liberal acceptance of RFC 4475 "invalid" messages, ...

Values are the manifests' ``expect_class`` (see tests/data/sip-torture/README.md):
an exact status, ``accept``, ``any-final``, ``silence``, ``no-crash`` or ``A-or-B``.
tests/unit/test_torture.py checks this table against the manifests.
"""

from __future__ import annotations

from pathlib import Path

# The corpus is part of the repository: tests/data/sip-torture.
TORTURE_CORPUS = Path(__file__).resolve().parents[1] / "data" / "sip-torture"

TORTURE_SERVER_EXPECTATIONS: dict[str, str] = {
    # RFC 4475 3.1.1: valid responses sent unsolicited: no transaction matches, absorb them.
    "unreason": "silence",
    "noreason": "silence",
    # RFC 4475 3.1.2: invalid, but parsed liberally by the message layer.
    "scalarlg": "silence",  # response with overlarge values: drop
    "lwsstart": "any-final",  # extra SP in the Request-Line, tolerated
    "trws": "any-final",  # trailing SP after SIP/2.0, tolerated
    "baddate": "any-final",  # non-GMT Date: the layer never reads Date
    "regbadct": "any-final",  # Contact addr-spec with ?Route=: registrar decides
    "badaspec": "any-final",  # LWS inside < >, tolerated
    "baddn": "any-final",  # unquoted display name with a comma, tolerated
    "bigcode": "silence",  # status 4294967301: SipParseError, message None
    # RFC 4475 3.2: transaction layer.
    "badbranch": "any-final",  # branch=z9hG4bK with nothing after the cookie
    # RFC 4475 3.3: application layer.
    "unksm2": "any-final",  # isbn:/http:/name: URIs; a registrar answers 400
    "bext01": "420",  # Require/Proxy-Require with unknown option tags
    "invut": "any-final",  # unknown body type: 415 from an endpoint
    "regaut01": "any-final",  # unknown Authorization scheme: 401/405/...
    "bcast": "silence",  # response whose 2nd Via is broadcast: drop
    "zeromf": "any-final",  # Max-Forwards 0: 483 from a proxy, normal answer from a UAS
    "cparam01": "accept",  # REGISTER: unknownparam is a contact-param
    "cparam02": "accept",  # REGISTER: unknownparam is a URI parameter
    "regescrt": "accept",  # REGISTER: keep the escaped Route URI header in the binding
    "sdp01": "any-final",  # Accept without application/sdp: 406 or 400
    # RFC 4475 3.4: backward compatibility.
    "inv2543": "any-final",  # RFC 2543 INVITE: no branch, no tags, no Max-Forwards
    # The unreferenced file of the RFC 4475 archive.
    "test": "no-crash",  # no SIP-Version: SipParseError, message None
}

# expect_class_tcp overrides of the manifests, for server tests over TCP. clerr, ncl and
# mcl01 are parser-level over UDP; over TCP the stream framer decides them.
TORTURE_TCP_OVERRIDES: dict[str, str] = {
    "clerr": "400-or-silence",
    "ncl": "error-or-silence",
    "mcl01": "error-or-silence",
    "inv2543": "no-crash",
}
