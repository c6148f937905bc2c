"""Caller identity with SIPp playing carrier and phones: a trusted carrier's
P-Asserted-Identity reaches the phone, an untrusted one's never does; a caller who withholds
their number reaches the carrier anonymous with Privacy: id and the PAI it needs; a call that
a carrier's proxy routes back to the switch in a loop ends with 482 after one round."""

from __future__ import annotations

import hashlib
import re
import socket
import threading
from pathlib import Path

import pytest

from peers.sipp import run_sipp
from peers.switchproc import PhoneUser, SwitchConfigFile, SwitchProcess, free_port
from tests.integration.callkit import (
    BackgroundSipp,
    append_lines,
    caller_injection,
    header_values,
    received_requests,
    register_endpoint,
    trace_messages,
    trunk_lines,
    wait_cdrs,
    wait_until_listening,
)

pytestmark = pytest.mark.integration

USERS = [PhoneUser("100", "pw100", "Alice"), PhoneUser("102", "pw102")]
DID = "+14155550100"
USER_CID = "+14155550111"


def _switch(
    tmp_path: Path, gateways: list[int], routing: str, *, port: int | None = None, **trunk: object
) -> SwitchProcess:
    """A switch whose user 100 has caller ID +14155550111 and whose carrier trunk has
    ``gateways`` and (unless ``trunk`` says otherwise) sends calls in from 127.0.0.0/8."""
    config = SwitchConfigFile(tmp_path / "switch", users=USERS, port=port or free_port())
    path = config.write()
    path.write_text(
        path.read_text().replace(
            'extension = "100"\n', f'extension = "100"\ncaller_id = "{USER_CID}"\n'
        )
    )
    append_lines(
        path,
        [
            "[tenants.routing]",
            routing,
            *trunk_lines("carrier", gateways, **{"inbound_addresses": ["127.0.0.0/8"], **trunk}),
        ],
    )
    return SwitchProcess(path, port=config.port)


DID_TO_102 = f'dids = [{{ number = "{DID}", destination = "102" }}]'


@pytest.mark.parametrize("trusted", [True, False], ids=["trusted", "untrusted"])
def test_carrier_identity_reaches_the_phone_only_from_a_trusted_trunk(
    tmp_path: Path, trusted: bool
) -> None:
    with _switch(tmp_path, [free_port()], DID_TO_102, trust_identity=trusted) as switch:
        port = free_port()
        register_endpoint(tmp_path / "sipp", switch.port, "102", "pw102", port)
        trace = tmp_path / "phone-messages.log"
        phone = BackgroundSipp(
            "call_uas.xml", switch.port, calls=1, local_port=port, extra=trace_messages(trace)
        )
        wait_until_listening()
        carrier = run_sipp(
            "trunk_identity_uac.xml",
            f"127.0.0.1:{switch.port}",
            calls=1,
            rate=1,
            extra=["-s", DID, "-d", "200"],
            timeout=30,
        )
        assert carrier.ok, carrier.errors
        assert phone.result().ok
        (ringing,) = received_requests(trace, "INVITE")
        assert "+16505550177" not in ringing  # P-Preferred-Identity: never passed on
        (cdr,) = wait_cdrs(switch, 1)
    if trusted:
        assert header_values(ringing, "From")[0].startswith('"Carol" <sip:+16505550199@pbx.test>')
        assert header_values(ringing, "P-Asserted-Identity") == [
            '"Carol" <sip:+16505550199@pbx.test>'
        ]
        assert cdr["caller_number"] == "+16505550199"
    else:
        assert "<sip:+16505550123@pbx.test>" in header_values(ringing, "From")[0]
        assert header_values(ringing, "P-Asserted-Identity") == []
        assert "+16505550199" not in ringing
        assert cdr["caller_number"] == "+16505550123"


def test_withheld_caller_reaches_the_carrier_anonymous_with_pai(tmp_path: Path) -> None:
    gateway = free_port()
    # Calls from 127.0.0.1 are the phone's here, not the carrier's.
    with _switch(
        tmp_path, [gateway], DID_TO_102, caller_id=DID, inbound_addresses=["10.99.0.0/16"]
    ) as switch:
        trace = tmp_path / "carrier-messages.log"
        carrier = BackgroundSipp(
            "call_uas.xml", switch.port, calls=1, local_port=gateway, extra=trace_messages(trace)
        )
        wait_until_listening()
        uac = run_sipp(
            "privacy_uac.xml",
            f"127.0.0.1:{switch.port}",
            calls=1,
            rate=1,
            injection=caller_injection(tmp_path / "sipp", "100", "pw100"),
            extra=["-s", "+16505550123", "-d", "200"],
            timeout=30,
        )
        assert uac.ok, uac.errors
        assert carrier.result().ok
        (out,) = received_requests(trace, "INVITE")
        (cdr,) = wait_cdrs(switch, 1)
    assert header_values(out, "From")[0].startswith(
        '"Anonymous" <sip:anonymous@anonymous.invalid>;tag='
    )
    assert header_values(out, "Privacy") == ["id"]
    assert header_values(out, "P-Asserted-Identity") == [f"<sip:{USER_CID}@127.0.0.1>"]
    assert (cdr["disposition"], cdr["caller_number"]) == ("ANSWERED", "100")


class LoopingProxy:
    """A carrier's stateless proxy that routes every number back to the switch (RFC 3261
    16.11): requests from the switch go back to it with this proxy's Via on top; responses
    lose that Via and follow the next one (the switch's)."""

    def __init__(self, switch_port: int, limit: int = 200) -> None:
        self.port = free_port()
        self.forwarded = 0
        self.invites = 0
        self._switch = ("127.0.0.1", switch_port)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", self.port))
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(limit,), daemon=True)
        self._thread.start()

    def _run(self, limit: int) -> None:
        own = f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bKproxy"
        branch = re.compile(r"branch=([^;,\s]+)")
        for _ in range(limit * 20):  # bounded: 0.2 s per idle wait
            if self._stop.is_set() or self.forwarded >= limit:
                return
            try:
                data, _ = self._sock.recvfrom(65535)
            except TimeoutError:
                continue
            head, sep, body = data.decode(errors="replace").partition("\r\n\r\n")
            first, _, rest = head.partition("\r\n")
            lines = rest.split("\r\n")
            if first.startswith("SIP/2.0"):
                ours = next(i for i, line in enumerate(lines) if line.startswith(own))
                _, comma, others = lines[ours].partition(",")
                lines[ours : ours + 1] = [f"Via: {others.strip()}"] if comma else []
            else:
                self.forwarded += 1
                self.invites += first.startswith("INVITE ")
                # Stateless (16.11): the branch follows from the incoming one, so an ACK
                # for a non-2xx gets its INVITE's branch.
                incoming = next(branch.search(line) for line in lines if line.startswith("Via:"))
                digest = hashlib.md5(incoming.group(1).encode() if incoming else b"").hexdigest()
                lines.insert(0, f"{own}{digest[:16]}")
            rest = "\r\n".join(lines)
            self._sock.sendto(f"{first}\r\n{rest}{sep}{body}".encode(), self._switch)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()


def test_a_call_routed_back_in_a_loop_ends_with_482(tmp_path: Path) -> None:
    # Each of two DIDs forwards to the other's number off-net; the carrier routes both
    # numbers back to us. Without loop detection the call would bounce until Max-Forwards
    # ran out, dozens of calls deep.
    switch_port = free_port()
    proxy = LoopingProxy(switch_port)
    other = "+14155550101"
    routing = (
        f'dids = [{{ number = "{DID}", treatment = "offnet", destination = "{other}" }}, '
        f'{{ number = "{other}", treatment = "offnet", destination = "{DID}" }}]'
    )
    try:
        with _switch(tmp_path, [proxy.port], routing, port=switch_port) as switch:
            carrier = run_sipp(
                "trunk_uac.xml",
                f"127.0.0.1:{switch.port}",
                calls=1,
                rate=1,
                extra=["-s", DID],
                timeout=20,
            )
            assert not carrier.ok
            assert "480" in carrier.errors + carrier.screen
            rows = wait_cdrs(switch, 2)
            switch.stop()
            log = (tmp_path / "switch" / "switch.log").read_text()
    finally:
        proxy.close()
    # Round 1 (DID from the carrier) and round 2 (the other number, routed back): the
    # third arrival repeats round 1's routing inputs and is refused before it is a call.
    assert proxy.invites == 2
    assert len(rows) == 2
    statuses = sorted(leg["status"] for row in rows for leg in row["legs"])
    assert statuses == [480, 482]
    assert "loop_detected" in log
