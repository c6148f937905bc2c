"""The subscription table (softswitch.sip.subscription, RFC 6665) with a fake clock and no
sockets: create, refresh, unsubscribe, fetch, Expires negotiation (423, max), 489, 406,
481, per-subscriber and total limits, expiry, NOTIFY headers and CSeq, NOTIFY failures."""

from __future__ import annotations

import pytest

from softswitch.sip.address import Address
from softswitch.sip.message import SipRequest, make_request, parse_message
from softswitch.sip.subscription import (
    EventPackage,
    SubscriptionLimits,
    SubscriptionState,
    SubscriptionTable,
)

PEER = Address("UDP", "203.0.113.5", 15062)
CONTACT = "<sip:198.51.100.1:15060;transport=udp>"
VIA = "SIP/2.0/UDP 198.51.100.1:15060;rport"
DIALOG = EventPackage("dialog", "application/dialog-info+xml", default_expires=600)
MWI = EventPackage("message-summary", "application/simple-message-summary")


def table(**limits: int) -> SubscriptionTable:
    return SubscriptionTable([DIALOG, MWI], SubscriptionLimits(**limits))


def subscribe(
    event: str | None = "dialog",
    *,
    expires: int | None = None,
    to_tag: str | None = None,
    call_id: str = "c1",
    cseq: int = 1,
    extra: tuple[tuple[str, str], ...] = (),
) -> SipRequest:
    headers = list(extra)
    if event is not None:
        headers.append(("Event", event))
    if expires is not None:
        headers.append(("Expires", str(expires)))
    to = "<sip:101@pbx.test>" + (f";tag={to_tag}" if to_tag else "")
    request = make_request(
        "SUBSCRIBE",
        "sip:101@pbx.test",
        via="SIP/2.0/UDP 203.0.113.5:15062;rport",
        from_="<sip:100@pbx.test>;tag=phone",
        to=to,
        call_id=call_id,
        cseq=cseq,
        contact="<sip:100@203.0.113.5:15062>",
        headers=headers,
    )
    # Through the parser, as the switch sees it.
    parsed = parse_message(request.to_bytes())
    assert isinstance(parsed, SipRequest)
    return parsed


def new(t: SubscriptionTable, request: SipRequest, now: float = 1000.0, who: str = "sip:100@x"):
    return t.subscribe(
        request, subscriber=who, resource="acme/101", peer=PEER, contact=CONTACT, now=now
    )


def test_subscribe_creates_with_the_package_default_and_notify_says_active() -> None:
    t = table()
    outcome = new(t, subscribe())
    assert (outcome.status, outcome.created) == (200, True)
    assert ("Expires", "600") in outcome.headers
    sub = outcome.subscription
    assert sub is not None and sub.active and len(t) == 1
    assert t.watching("dialog", "acme/101") == [sub]
    notify = t.notify(sub, VIA, b"<x/>", 1100.0)
    assert notify.method == "NOTIFY" and notify.uri == "sip:100@203.0.113.5:15062"
    assert notify.get("Subscription-State") == "active;expires=500"
    assert notify.get("Event") == "dialog"
    assert notify.get("Content-Type") == "application/dialog-info+xml"
    assert notify.to is not None and notify.to.tag == "phone"
    assert notify.from_ is not None and notify.from_.tag == outcome.to_tag
    assert sub.destination() == PEER


def test_cseq_grows_per_dialog_and_version_counts() -> None:
    t = table()
    sub = new(t, subscribe()).subscription
    assert sub is not None
    cseqs = [t.notify(sub, VIA, b"", 1000.0).cseq for _ in range(3)]
    assert [c[0] for c in cseqs if c] == [1, 2, 3]
    assert sub.version == 3
    other = new(t, subscribe(call_id="c2")).subscription
    assert other is not None
    assert t.notify(other, VIA, b"", 1000.0).cseq == (1, "NOTIFY")


def test_unknown_or_missing_event_is_489_with_allow_events() -> None:
    t = table()
    for event in ("presence", None):
        outcome = new(t, subscribe(event))
        assert outcome.status == 489
        assert ("Allow-Events", "dialog, message-summary") in outcome.headers
    assert len(t) == 0


def test_event_id_and_case_are_read() -> None:
    t = table()
    sub = new(t, subscribe("Dialog;id=7")).subscription
    assert sub is not None and sub.event_id == "7"
    assert t.notify(sub, VIA, b"", 1000.0).get("Event") == "dialog;id=7"


def test_accept_that_excludes_the_body_type_is_406() -> None:
    t = table()
    refused = new(t, subscribe(extra=(("Accept", "application/pidf+xml"),)))
    assert refused.status == 406
    ok = new(t, subscribe(extra=(("Accept", "application/pidf+xml, application/*"),)))
    assert ok.status == 200


def test_too_brief_is_423_with_min_expires_and_too_long_is_cut() -> None:
    t = table(min_expires=60, max_expires=1800)
    outcome = new(t, subscribe(expires=30))
    assert outcome.status == 423 and ("Min-Expires", "60") in outcome.headers
    outcome = new(t, subscribe(expires=7200))
    assert outcome.status == 200 and ("Expires", "1800") in outcome.headers


def test_refresh_extends_and_unsubscribe_terminates() -> None:
    t = table()
    created = new(t, subscribe(expires=120))
    sub = created.subscription
    assert sub is not None
    refresh = new(t, subscribe(expires=300, to_tag=created.to_tag, cseq=2), now=1100.0)
    assert (refresh.status, refresh.created, refresh.subscription) == (200, False, sub)
    assert sub.expires_at == 1400.0 and t.get_timer() == 1400.0
    # An old CSeq in the dialog is refused.
    assert new(t, subscribe(to_tag=created.to_tag, cseq=2), now=1100.0).status == 500
    gone = new(t, subscribe(expires=0, to_tag=created.to_tag, cseq=3), now=1200.0)
    assert gone.status == 200 and gone.subscription is sub
    assert sub.state is SubscriptionState.TERMINATED and len(t) == 0
    assert t.get_timer() is None
    notify = t.notify(sub, VIA, b"", 1200.0)
    assert notify.get("Subscription-State") == "terminated;reason=timeout"


def test_refresh_of_unknown_dialog_or_other_subscriber_is_481() -> None:
    t = table()
    created = new(t, subscribe())
    assert new(t, subscribe(to_tag="nope", cseq=2)).status == 481
    other = new(t, subscribe(to_tag=created.to_tag, cseq=2), who="sip:999@x")
    assert other.status == 481
    assert new(t, subscribe("message-summary", to_tag=created.to_tag, cseq=3)).status == 481


def test_fetch_with_expires_zero_gives_one_terminated_notify() -> None:
    t = table()
    outcome = new(t, subscribe(expires=0))
    sub = outcome.subscription
    assert outcome.status == 200 and sub is not None and not sub.active
    assert len(t) == 0
    assert t.notify(sub, VIA, b"", 1000.0).get("Subscription-State") == (
        "terminated;reason=timeout"
    )


def test_expiry_on_the_clock() -> None:
    t = table()
    first = new(t, subscribe(expires=100)).subscription
    second = new(t, subscribe(expires=200, call_id="c2")).subscription
    assert t.get_timer() == 1100.0
    assert t.handle_timer(1099.0) == []
    assert t.handle_timer(1100.0) == [first]
    assert first is not None and first.reason == "timeout" and len(t) == 1
    assert t.get_timer() == 1200.0
    assert t.handle_timer(5000.0) == [second]
    assert len(t) == 0 and t.get_timer() is None


def test_per_subscriber_and_total_limits() -> None:
    t = table(per_subscriber=2, total=3)
    assert new(t, subscribe(call_id="a")).status == 200
    assert new(t, subscribe(call_id="b")).status == 200
    refused = new(t, subscribe(call_id="c"))
    assert (refused.status, refused.reason) == (403, "Too Many Subscriptions")
    assert new(t, subscribe(call_id="d"), who="sip:200@x").status == 200
    assert new(t, subscribe(call_id="e"), who="sip:300@x").status == 403  # total
    # An ended one frees its place.
    sub = t.watching("dialog", "acme/101")[0]
    t.terminate(sub, "noresource")
    assert t.count_of(sub.subscriber) == 1
    assert new(t, subscribe(call_id="f"), who="sip:300@x").status == 200


@pytest.mark.parametrize(
    ("status", "ends"),
    [(200, False), (202, False), (481, True), (408, True), (500, True), (407, False)],
)
def test_notify_outcome(status: int, ends: bool) -> None:
    t = table()
    sub = new(t, subscribe()).subscription
    assert sub is not None
    assert t.notify_ended(sub, status) is ends
    assert (len(t) == 0) is ends
    if ends:
        assert sub.reason == "deactivated"


def test_route_set_decides_the_destination() -> None:
    t = table()
    request = subscribe(extra=(("Record-Route", "<sip:10.0.0.9:5070;lr>"),))
    sub = new(t, request).subscription
    assert sub is not None
    assert sub.destination() == Address("UDP", "10.0.0.9", 5070)
    notify = t.notify(sub, VIA, b"", 1000.0)
    assert notify.get("Route") == "<sip:10.0.0.9:5070;lr>"


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError, match="min_expires"):
        SubscriptionLimits(min_expires=100, max_expires=10)
