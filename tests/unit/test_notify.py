"""The notifier (softswitch.notify) over the call kit's SIP layers with a fake clock:
SUBSCRIBE challenged and authenticated, 489/404/403, busy lamps following a call through
the call manager, one NOTIFY in flight per subscription, NOTIFY 481 ending it, expiry;
message-summary from a MailboxDirectory test double, with unsolicited NOTIFYs to the
lamp users' phones that do not subscribe."""

from __future__ import annotations

import datetime as dt
import itertools
import xml.etree.ElementTree as ET
from pathlib import Path

from config.smtp import SubscriptionSettings
from config.voicemail import EmailNotification
from softswitch.notify.lamps import LampBoard, LampDialog, dialog_info
from softswitch.notify.mwi import MessageWaiting, message_summary
from softswitch.notify.subscriptions import Notifier
from softswitch.sip.address import Address
from softswitch.sip.auth import build_authorization
from softswitch.sip.message import SipRequest, SipResponse, make_response, parse_message
from softswitch.sip.transaction import RequestReceived, ResponseReceived, deliver
from softswitch.voicemail.events import MailboxAddress, MessageCounts, VoiceMessage
from tests.unit.callkit import CALLER, Net, answer, place_call

WATCHER = Address("UDP", "203.0.113.7", 5060)
NS = "{urn:ietf:params:xml:ns:dialog-info}"
BRANCHES = itertools.count()


class Mailboxes:
    """A MailboxDirectory test double: mailbox 102 lights the lamps of 102 and 200."""

    def __init__(self) -> None:
        self.box = MailboxAddress("t", "102")
        self.now = MessageCounts()
        self.deleted: list[str] = []

    def mailbox_of(self, tenant: str, user: str) -> MailboxAddress | None:
        return self.box if (tenant, user) == ("t", "102") else None

    def counts(self, box: MailboxAddress) -> MessageCounts:
        return self.now if box == self.box else MessageCounts()

    def has_new(self, tenant: str, mailbox: str) -> bool:
        return (tenant, mailbox) == ("t", "102") and self.now.waiting

    def lamp_users(self, box: MailboxAddress) -> tuple[str, ...]:
        return ("102", "200") if box == self.box else ()

    def email(self, box: MailboxAddress) -> EmailNotification | None:
        return None

    def new_messages(self, box: MailboxAddress) -> tuple[VoiceMessage, ...]:
        return ()

    async def delete(self, box: MailboxAddress, message_id: str) -> None:
        self.deleted.append(message_id)


def harness(window: float = 0.0, **settings: int) -> tuple[Net, Notifier, LampBoard]:
    net = Net()
    notifier = Notifier(
        net.layer,
        directory=net.mgr.admission.directory,
        authenticator=net.mgr.auth,
        tenants=net.mgr.tenants,
        settings=SubscriptionSettings(**settings),
        clock=lambda: net.now,
        schedule=net._schedule,
        local=lambda dest: ("192.0.2.1", 5060),
        server_header="test",
    )
    lamps = LampBoard(notifier, window)
    notifier.serve(lamps)
    lamps.follow(net.mgr.observers)
    return net, notifier, lamps


def subscribe_request(
    target: str,
    event: str = "dialog",
    *,
    cseq: int = 1,
    auth: str | None = None,
    to_tag: str | None = None,
    expires: int = 600,
    user: str = "200",
    call_id: str = "sub-1",
) -> SipRequest:
    headers = [
        ("Via", f"SIP/2.0/UDP {WATCHER.host}:5060;branch=z9hG4bKsub{next(BRANCHES)}"),
        ("Max-Forwards", "70"),
        ("From", f"<sip:{user}@pbx.test>;tag=watcher"),
        ("To", f"<sip:{target}@pbx.test>" + (f";tag={to_tag}" if to_tag else "")),
        ("Call-ID", call_id),
        ("CSeq", f"{cseq} SUBSCRIBE"),
        ("Contact", f"<sip:{user}@{WATCHER.host}:5060>"),
        ("Event", event),
        ("Expires", str(expires)),
    ]
    if auth:
        headers.append(("Proxy-Authorization", auth))
    return SipRequest("SUBSCRIBE", f"sip:{target}@pbx.test", headers)


def send_subscribe(net: Net, notifier: Notifier, request: SipRequest) -> SipResponse:
    net.layer.receive_message(parse_message(request.to_bytes()), WATCHER, net.now)
    event = net.layer.next_event()
    assert isinstance(event, RequestReceived) and event.transaction is not None
    notifier.on_subscribe(event.request, WATCHER, event.transaction)
    net._pump()
    responses = [m for m, d in net.out if isinstance(m, SipResponse) and d == WATCHER]
    net.out = [(m, d) for m, d in net.out if not isinstance(m, SipResponse)]
    assert responses
    return responses[-1]


def subscribe(
    net: Net,
    notifier: Notifier,
    target: str,
    event: str = "dialog",
    *,
    user: str = "200",
    expires: int = 600,
) -> SipResponse:
    """SUBSCRIBE, 407, SUBSCRIBE with credentials: the final answer."""
    call_id = f"sub-{next(BRANCHES)}"
    challenge = send_subscribe(
        net,
        notifier,
        subscribe_request(target, event, user=user, expires=expires, call_id=call_id),
    )
    assert challenge.status == 407
    value = challenge.get("Proxy-Authenticate")
    assert value is not None
    auth = build_authorization(value, "SUBSCRIBE", f"sip:{target}@pbx.test", user, f"pw{user}")
    request = subscribe_request(
        target, event, cseq=2, auth=auth, user=user, expires=expires, call_id=call_id
    )
    return send_subscribe(net, notifier, request)


def notifies(net: Net, dest: Address = WATCHER) -> list[SipRequest]:
    """NOTIFYs sent to ``dest`` since the last look (retransmissions counted once)."""
    net._pump()  # what the layer queued since
    seen: dict[str, SipRequest] = {}
    for m in net.take(dest):
        if isinstance(m, SipRequest) and m.method == "NOTIFY" and m.top_via is not None:
            seen.setdefault(m.top_via.branch or "", m)
    return list(seen.values())


def reply(net: Net, notify: SipRequest, status: int = 200) -> None:
    """The watcher's answer to a NOTIFY, handed to the transaction's owner."""
    net.layer.receive_message(
        parse_message(make_response(notify, status).to_bytes()), WATCHER, net.now
    )
    event = net.layer.next_event()
    assert isinstance(event, ResponseReceived)
    owner = event.transaction.owner
    assert owner is not None
    deliver(event, owner)
    net._pump()


def lamp_states(notify: SipRequest) -> tuple[int, list[str]]:
    root = ET.fromstring(notify.body)
    states = [d.findtext(f"{NS}state") or "" for d in root.findall(f"{NS}dialog")]
    return int(root.get("version", "-1")), states


# ------------------------------------------------------------------------- SUBSCRIBE


def test_unknown_package_is_489_before_any_challenge() -> None:
    net, notifier, _ = harness()
    response = send_subscribe(net, notifier, subscribe_request("102", "presence"))
    assert response.status == 489
    assert response.get("Allow-Events") == "dialog"


def test_unknown_and_known_extensions_are_challenged_alike() -> None:
    net, notifier, _ = harness()
    for target in ("102", "999"):
        response = send_subscribe(net, notifier, subscribe_request(target, call_id=target))
        assert response.status == 407 and response.get("Proxy-Authenticate")
    assert subscribe(net, notifier, "999").status == 404
    assert notifier.counters["challenged"] == 3


def test_wrong_password_is_403() -> None:
    net, notifier, _ = harness()
    challenge = send_subscribe(net, notifier, subscribe_request("102"))
    value = challenge.get("Proxy-Authenticate")
    assert value is not None
    auth = build_authorization(value, "SUBSCRIBE", "sip:102@pbx.test", "200", "wrong")
    response = send_subscribe(net, notifier, subscribe_request("102", cseq=2, auth=auth))
    assert response.status == 403


def test_per_subscriber_limit_from_settings() -> None:
    net, notifier, _ = harness(per_subscriber=1)
    assert subscribe(net, notifier, "102").status == 200
    assert subscribe(net, notifier, "100").status == 403


# ------------------------------------------------------------------------- busy lamps


def test_lamp_follows_a_call_through_the_call_manager() -> None:
    net, notifier, _ = harness()
    assert subscribe(net, notifier, "102").status == 200
    first = notifies(net)
    assert [lamp_states(n) for n in first] == [(0, [])]  # idle
    reply(net, first[0])
    phone = net.register("102", "203.0.113.20")
    request = place_call(net)
    invite = net.requests(phone, "INVITE")[0]
    answer(net, invite, 180, phone, "ph")
    ringing = notifies(net)
    assert [lamp_states(n) for n in ringing] == [(1, ["early"])]
    root = ET.fromstring(ringing[0].body)
    dialog = root.find(f"{NS}dialog")
    assert dialog is not None and dialog.get("direction") == "recipient"
    assert root.get("entity") == "sip:102@pbx.test" and root.get("state") == "full"
    reply(net, ringing[0])
    answer(net, invite, 200, phone, "ph", b"v=0\r\n")
    confirmed = notifies(net)
    assert [lamp_states(n) for n in confirmed] == [(2, ["confirmed"])]
    reply(net, confirmed[0])
    assert request.call_id is not None
    # The callee hangs up.
    bye = SipRequest(
        "BYE",
        "sip:192.0.2.1:5060",
        [
            ("Via", "SIP/2.0/UDP 203.0.113.20:5060;branch=z9hG4bKbye"),
            ("Max-Forwards", "70"),
            ("From", invite.get("To") + ";tag=ph"),  # type: ignore[operator]
            ("To", invite.get("From") or ""),
            ("Call-ID", invite.call_id or ""),
            ("CSeq", "1 BYE"),
        ],
    )
    net.deliver(bye, phone)
    ended = notifies(net)
    assert [lamp_states(n) for n in ended] == [(3, ["terminated"])]
    reply(net, ended[0])
    # Nothing more on the lamp: idle again for a new subscriber.
    assert notifier.sources["dialog"].state_of("t", "102") == []  # type: ignore[attr-defined]


def test_a_user_nobody_watches_gets_no_lamp_and_a_later_watch_sees_the_call_in_progress() -> None:
    net, notifier, lamps = harness()
    phone = net.register("102", "203.0.113.20")
    place_call(net)
    invite = net.requests(phone, "INVITE")[0]
    answer(net, invite, 180, phone, "ph")
    # Nobody subscribes to 102 (nor to the caller): the call layer told no observer.
    assert lamps.state_of("t", "102") == [] and notifies(net) == []
    assert net.mgr.observers._live == {}
    # A key lit while 102 rings shows the ringing call at once, then follows it.
    assert subscribe(net, notifier, "102").status == 200
    first = notifies(net)
    assert [lamp_states(n) for n in first] == [(0, ["early"])]
    reply(net, first[0])
    answer(net, invite, 200, phone, "ph", b"v=0\r\n")
    confirmed = notifies(net)
    assert [lamp_states(n) for n in confirmed] == [(1, ["confirmed"])]
    reply(net, confirmed[0])
    # A second watcher of the same user is not told the leg twice.
    assert subscribe(net, notifier, "102").status == 200
    assert [lamp_states(n) for n in notifies(net)] == [(0, ["confirmed"])]
    assert next(iter(net.mgr.observers._live.values()))[1] == [lamps]


def test_one_notify_in_flight_then_the_latest_state() -> None:
    net, notifier, lamps = harness()
    subscribe(net, notifier, "102")
    first = notifies(net)
    lamps.show("t", "102", LampDialog("a", "early"))
    lamps.show("t", "102", LampDialog("a", "confirmed"))
    assert notifies(net) == []  # the first NOTIFY is not answered yet
    reply(net, first[0])
    latest = notifies(net)
    assert [lamp_states(n) for n in latest] == [(1, ["confirmed"])]


def test_notify_481_ends_the_subscription() -> None:
    net, notifier, lamps = harness()
    subscribe(net, notifier, "102")
    reply(net, notifies(net)[0], 481)
    assert len(notifier.table) == 0
    lamps.show("t", "102", LampDialog("a", "early"))
    assert notifies(net) == []


def test_expiry_sends_the_terminating_notify() -> None:
    net, notifier, _ = harness(min_expires=1)
    subscribe(net, notifier, "102", expires=5)
    reply(net, notifies(net)[0])
    net.advance(6)
    last = notifies(net)
    assert [n.get("Subscription-State") for n in last] == ["terminated;reason=timeout"]
    assert len(notifier.table) == 0


def test_named_resource_shows_and_goes() -> None:
    net, notifier, lamps = harness()
    lamps.add_resource("t", "park701")
    assert subscribe(net, notifier, "park701").status == 200
    reply(net, notifies(net)[0])
    lamps.show("t", "park701", LampDialog("p1", "confirmed", remote="sip:555@pbx.test"))
    shown = notifies(net)
    assert [lamp_states(n) for n in shown] == [(1, ["confirmed"])]
    reply(net, shown[0])
    lamps.remove_resource("t", "park701")
    assert [n.get("Subscription-State") for n in notifies(net)] == ["terminated;reason=noresource"]


def test_changes_within_the_window_go_out_as_one_notify_per_watcher() -> None:
    net, notifier, lamps = harness(window=0.05)
    lamps.add_resource("t", "park701")
    for _ in range(2):  # two keys on the same orbit
        assert subscribe(net, notifier, "park701").status == 200
    for notify in notifies(net):
        reply(net, notify)
    # Rings and is answered at once: one NOTIFY each, of the state at the window's end.
    lamps.show("t", "park701", LampDialog("p1", "early"))
    lamps.show("t", "park701", LampDialog("p1", "confirmed"))
    assert notifies(net) == []
    net.advance(0.1)
    shown = notifies(net)
    assert [lamp_states(n) for n in shown] == [(1, ["confirmed"])] * 2
    for notify in shown:
        reply(net, notify)
    # A dialog that ends is still shown once as terminated, then forgotten.
    lamps.clear("t", "park701", "p1")
    net.advance(0.1)
    ended = notifies(net)
    assert [lamp_states(n) for n in ended] == [(2, ["terminated"])] * 2
    assert lamps.state_of("t", "park701") == []


def test_dialog_info_escapes_and_parses() -> None:
    body = dialog_info('sip:a"b@x', 4, [LampDialog("1<2", "early", remote="sip:<x>@y")])
    root = ET.fromstring(body)
    assert root.get("entity") == 'sip:a"b@x' and root.get("version") == "4"
    assert root.find(f"{NS}dialog") is not None


# ------------------------------------------------------------------------- message waiting


def mwi_harness() -> tuple[Net, Notifier, MessageWaiting, Mailboxes]:
    net, notifier, _ = harness()
    mailboxes = Mailboxes()
    mwi = MessageWaiting(notifier, net.location, mailboxes)
    notifier.serve(mwi)
    return net, notifier, mwi, mailboxes


def test_message_summary_body() -> None:
    body = message_summary(MessageCounts(2, 1, 1, 0), "sip:102@pbx.test")
    assert body == (
        b"Messages-Waiting: yes\r\nMessage-Account: sip:102@pbx.test\r\n"
        b"Voice-Message: 2/1 (1/0)\r\n"
    )
    assert b"Messages-Waiting: no" in message_summary(MessageCounts(0, 3), "sip:x@y")


def test_mwi_subscription_gets_counts_on_subscribe_and_on_every_change() -> None:
    net, notifier, mwi, mailboxes = mwi_harness()
    assert subscribe(net, notifier, "102", "message-summary", user="102").status == 200
    first = notifies(net)
    assert [n.body for n in first] == [message_summary(MessageCounts(), "sip:102@pbx.test")]
    assert first[0].get("Content-Type") == "application/simple-message-summary"
    reply(net, first[0])
    mailboxes.now = MessageCounts(1, 0)
    message = VoiceMessage(
        "m1", "100", "Alice", dt.datetime.now(dt.UTC), 3.0, False, Path("/nonexistent.wav")
    )
    mwi.message_left(mailboxes.box, message, mailboxes.now)
    left = notifies(net)
    assert len(left) == 1 and b"Messages-Waiting: yes" in left[0].body
    assert b"Voice-Message: 1/0 (0/0)" in left[0].body
    reply(net, left[0])
    mailboxes.now = MessageCounts(0, 1)
    mwi.counts_changed(mailboxes.box, mailboxes.now)
    heard = notifies(net)
    assert len(heard) == 1 and b"Voice-Message: 0/1 (0/0)" in heard[0].body


def test_mwi_only_for_own_or_lamp_mailboxes() -> None:
    net, notifier, _, _ = mwi_harness()
    assert subscribe(net, notifier, "102", "message-summary", user="200").status == 200  # lamp
    assert subscribe(net, notifier, "102", "message-summary", user="100").status == 403
    assert subscribe(net, notifier, "100", "message-summary", user="100").status == 404


def test_unsolicited_notify_to_lamp_phones_that_do_not_subscribe() -> None:
    net, notifier, mwi, mailboxes = mwi_harness()
    desk = net.register("102", "203.0.113.20")
    other = net.register("200", "203.0.113.30")
    subscriber = net.register("200", WATCHER.host)  # 200's second phone subscribes itself
    assert subscriber == WATCHER
    subscribe(net, notifier, "102", "message-summary", user="200")
    reply(net, notifies(net)[0])
    mailboxes.now = MessageCounts(1, 0)
    mwi.counts_changed(mailboxes.box, mailboxes.now)
    net._pump()
    to_desk, to_other, in_dialog = notifies(net, desk), notifies(net, other), notifies(net)
    assert len(to_desk) == len(to_other) == len(in_dialog) == 1  # WATCHER: its subscription only
    unsolicited = to_desk[0]
    assert unsolicited.uri == "sip:102@203.0.113.20:5060"
    assert unsolicited.to is not None and unsolicited.to.tag is None
    assert unsolicited.get("Event") == "message-summary"
    assert b"Messages-Waiting: yes" in unsolicited.body
    assert in_dialog[0].to is not None and in_dialog[0].to.tag == "watcher"
    assert mwi.unsolicited_sent == 2
    assert CALLER not in (desk, other)


def test_a_phone_that_registers_gets_the_lamp_state_once() -> None:
    net, _, mwi, mailboxes = mwi_harness()
    mailboxes.now = MessageCounts(2, 0)
    desk = net.register("102", "203.0.113.20")
    assert mwi.phone_registered("t", "pbx.test", "102") == 1
    told = notifies(net, desk)
    assert len(told) == 1 and b"Voice-Message: 2/0" in told[0].body
    assert mwi.phone_registered("t", "pbx.test", "102") == 0  # a re-REGISTER: nothing new
    second = net.register("102", "203.0.113.21")
    assert mwi.phone_registered("t", "pbx.test", "102") == 1
    assert len(notifies(net, second)) == 1
    assert mwi.phone_registered("t", "pbx.test", "100") == 0  # no mailbox


def test_garbage_expires_is_400_not_a_crash() -> None:
    net, notifier, _ = harness()
    challenge = send_subscribe(net, notifier, subscribe_request("102", call_id="g"))
    value = challenge.get("Proxy-Authenticate")
    assert value is not None
    auth = build_authorization(value, "SUBSCRIBE", "sip:102@pbx.test", "200", "pw200")
    request = subscribe_request("102", cseq=2, auth=auth, call_id="g")
    request.set("Expires", "soon")
    assert send_subscribe(net, notifier, request).status == 400
    assert len(notifier.table) == 0
