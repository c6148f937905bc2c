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

# Over TCP (tests/integration/test_torture_tcp.py, tests/unit/test_framing.py): what the
# connection does after each message a stream does not frame as exactly one message; every
# other case frames exactly, is answered and leaves the connection open. The manifests'
# expect_class_tcp (TORTURE_TCP_OVERRIDES) gives the status side of these cases.
CLOSED = "closed"  # answered if it can be, then the connection closes: the stream's
# framing is lost, since only Content-Length says where a message ends on a stream.
WAITS = "waits"  # the message is not complete on a stream: the switch waits for the rest
# and closes, unanswered, at the peer's EOF (no probe is sent: it would become that rest).

TORTURE_STREAM: dict[str, str] = {
    # A REGISTER, then an INVITE whose body runs 5 octets past its Content-Length ("C" and
    # CRLF CRLF): on a datagram the RFC wants the extra octets ignored; on a stream both
    # requests are answered, and the 5 octets are a header block that is no message.
    "dblreq": CLOSED,
    # Content-Length 9999 with a 150-byte body: framed on a datagram by its end, on a
    # stream the body simply has not all arrived yet. Nothing tells the switch otherwise.
    "clerr": WAITS,
    # Content-Length -999: no length, no framing: 400 and close.
    "ncl": CLOSED,
    # Two different Content-Length values: which one frames the stream is a guess; 400.
    "mcl01": CLOSED,
    # RFC 2543 INVITE without Content-Length: a stream requires one (RFC 3261 18.3), as
    # the body's end is known by nothing else: 400 and close.
    "inv2543": CLOSED,
    # The header block never ends (the message lacks its blank line): on a datagram the
    # datagram's end ends it; on a stream the rest of the header block has not arrived.
    "baddn": WAITS,
}


# Cases carrying more than one request, each answered on the stream.
TORTURE_STREAM_REQUESTS: dict[str, int] = {"dblreq": 2}
