"""The dialog layer (softswitch.sip.dialog_layer) driven with a fake clock and no sockets:
2xx retransmission until the ACK, ACK matching, session timers (RFC 4028), 481, CSeq
order, in-dialog OPTIONS, target refresh, glare, and the UAC side with forking."""

from __future__ import annotations

import random

import pytest

from softswitch.sip.address import Address
from softswitch.sip.dialog import DialogState
from softswitch.sip.dialog_layer import DialogLayer
from softswitch.sip.message import (
    SipRequest,
    SipResponse,
    make_request,
    make_response,
    parse_message,
    via_value,
)
from softswitch.sip.session import (
    AckReceived,
    DialogEnded,
    InDialogRequest,
    InDialogResponse,
    InviteReceived,
    InviteSession,
    LegAnswered,
    LegFailed,
    LegProgress,
)
from softswitch.sip.transaction import RequestReceived, TimerSettings, TransactionLayer

PEER = Address("UDP", "203.0.113.5", 15062)
LOCAL = ("198.51.100.1", 15060)
CONTACT = "<sip:198.51.100.1:15060;transport=udp>"
T1 = 0.5


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0


def layer_and_clock() -> tuple[DialogLayer, Clock]:
    transactions = TransactionLayer(TimerSettings(t1=T1, t2=4.0, t4=5.0))
    return DialogLayer(transactions, local=lambda dest: LOCAL, server_header="test"), Clock()


def run_until(layer: DialogLayer, clock: Clock, until: float) -> None:
    """Advance the fake clock to ``until``, firing every timer on the way."""
    while True:
        deadline = layer.get_timer()
        if deadline is None or deadline > until:
            break
        clock.now = max(clock.now, deadline)
        layer.handle_timer(clock.now)
    clock.now = until


def drain(layer: DialogLayer) -> list[object]:
    out: list[object] = []
    while (event := layer.next_event()) is not None:
        out.append(event)
    return out


def sent(layer: DialogLayer, clock: Clock) -> list[SipRequest | SipResponse]:
    return [parse_message(data) for data, _ in layer.datagrams_to_send(clock.now)]


def statuses(messages: list[SipRequest | SipResponse]) -> list[int | str]:
    return [m.status if isinstance(m, SipResponse) else m.method for m in messages]


def request(
    method: str,
    *,
    cseq: int = 1,
    to_tag: str | None = None,
    branch: str | None = None,
    call_id: str = "call-1",
    headers: tuple[tuple[str, str], ...] = (),
    contact: str | None = "<sip:alice@203.0.113.5:15062>",
) -> SipRequest:
    """A request from the peer (alice, From tag ``a1``) to us."""
    to = "<sip:bob@198.51.100.1>" + (f";tag={to_tag}" if to_tag else "")
    built = make_request(
        method,
        "sip:bob@198.51.100.1:15060",
        via=via_value("UDP", PEER.host, PEER.port),
        branch=branch,
        from_="<sip:alice@example.com>;tag=a1",
        to=to,
        call_id=call_id,
        cseq=cseq,
        contact=contact if method != "ACK" else None,
        headers=headers,
    )
    reparsed = parse_message(built.to_bytes())
    assert isinstance(reparsed, SipRequest)
    return reparsed


def answered_call(
    layer: DialogLayer, clock: Clock, headers: tuple[tuple[str, str], ...] = ()
) -> tuple[InviteSession, SipRequest, str]:
    """An INVITE received and answered 200 (not yet ACKed): the session, the INVITE and our
    To tag."""
    invite = request("INVITE", branch="z9hG4bKinv1", headers=headers)
    layer.receive_message(invite, PEER, clock.now)
    (event,) = drain(layer)
    assert isinstance(event, InviteReceived)
    assert statuses(sent(layer, clock)) == [100]
    ok = make_response(invite, 200, "OK", to_tag="b1", headers=(("Contact", CONTACT),))
    session = layer.answer(event.transaction, ok, clock.now, app_data="leg")
    assert session is not None and session.app_data == "leg"
    return session, invite, "b1"


def ack_for(invite: SipRequest, tag: str, cseq: int = 1) -> SipRequest:
    return request("ACK", cseq=cseq, to_tag=tag, branch="z9hG4bKack" + str(cseq))


def test_one_call_2xx_retransmission_ack_session_expiry_then_481() -> None:
    """The whole story in one dialog, on a fake clock."""
    layer, clock = layer_and_clock()
    timer = (("Session-Expires", "90"), ("Supported", "timer"))
    session, invite, tag = answered_call(layer, clock, timer)
    answered = clock.now  # the session timer runs from our 2xx
    assert statuses(sent(layer, clock)) == [200]
    run_until(layer, clock, clock.now + T1 + 2 * T1 + 0.01)
    assert statuses(sent(layer, clock)) == [200, 200]  # retransmitted, no ACK yet
    layer.receive_message(ack_for(invite, tag), PEER, clock.now)
    (acked,) = drain(layer)
    assert isinstance(acked, AckReceived) and acked.session is session
    run_until(layer, clock, answered + 60 - 0.01)  # 90 - min(32, 90/3) = 60 s of silence
    assert sent(layer, clock) == []
    run_until(layer, clock, answered + 60 + 0.01)
    (ended,) = drain(layer)
    assert isinstance(ended, DialogEnded) and ended.reason == "session_expired"
    assert statuses(sent(layer, clock)) == ["BYE"]
    layer.receive_message(request("BYE", cseq=2, to_tag=tag), PEER, clock.now)
    assert drain(layer) == []
    assert statuses(sent(layer, clock)) == [481]


def test_a_2xx_is_retransmitted_with_back_off_until_its_ack_then_never_again() -> None:
    layer, clock = layer_and_clock()
    session, invite, tag = answered_call(layer, clock)
    assert statuses(sent(layer, clock)) == [200]
    assert session.awaiting_ack and session.state is DialogState.CONFIRMED
    start = clock.now
    # T1, 2*T1, 4*T1 after the answer: one retransmission each, nothing in between
    for gap in (T1, 2 * T1, 4 * T1):
        run_until(layer, clock, clock.now + gap - 0.01)
        assert sent(layer, clock) == []
        run_until(layer, clock, clock.now + 0.01)
        assert statuses(sent(layer, clock)) == [200]
    # an ACK with the wrong CSeq matches nothing; the right one stops the retransmission
    layer.receive_message(ack_for(invite, tag, cseq=7), PEER, clock.now)
    assert drain(layer) == []
    layer.receive_message(ack_for(invite, tag), PEER, clock.now)
    (event,) = drain(layer)
    assert isinstance(event, AckReceived) and event.session is session
    assert not session.awaiting_ack
    run_until(layer, clock, start + 64 * T1 + 1)
    assert sent(layer, clock) == []
    # the ACK retransmitted is absorbed, the dialog lives on
    layer.receive_message(ack_for(invite, tag), PEER, clock.now)
    assert drain(layer) == []
    assert layer.find("call-1", "b1", "a1") is session


def test_no_ack_in_64_t1_ends_the_dialog_with_a_bye() -> None:
    layer, clock = layer_and_clock()
    session, _, _ = answered_call(layer, clock)
    sent(layer, clock)
    run_until(layer, clock, clock.now + 64 * T1 + 0.01)
    messages = sent(layer, clock)
    assert messages[-1].method == "BYE"  # type: ignore[union-attr]
    assert set(statuses(messages[:-1])) == {200}
    (event,) = drain(layer)
    assert isinstance(event, DialogEnded) and event.reason == "ack_timeout"
    assert session.state is DialogState.TERMINATED and len(layer) == 0


def test_requests_in_no_known_dialog_get_481() -> None:
    layer, clock = layer_and_clock()
    layer.receive_message(request("BYE", cseq=2, to_tag="nosuch"), PEER, clock.now)
    assert drain(layer) == []
    assert statuses(sent(layer, clock)) == [481]
    # and once a dialog ended with BYE, its next request is in no dialog either
    session, invite, tag = answered_call(layer, clock)
    layer.receive_message(ack_for(invite, tag), PEER, clock.now)
    drain(layer)
    sent(layer, clock)
    layer.receive_message(request("BYE", cseq=2, to_tag=tag), PEER, clock.now)
    (event,) = drain(layer)
    assert isinstance(event, DialogEnded) and event.reason == "bye"
    assert statuses(sent(layer, clock)) == [200]
    layer.receive_message(request("INFO", cseq=3, to_tag=tag), PEER, clock.now)
    assert drain(layer) == []
    assert statuses(sent(layer, clock)) == [481]
    assert session.state is DialogState.TERMINATED


def test_cseq_order_in_dialog_options_and_target_refresh() -> None:
    layer, clock = layer_and_clock()
    session, invite, tag = answered_call(layer, clock)
    layer.receive_message(ack_for(invite, tag), PEER, clock.now)
    drain(layer)
    sent(layer, clock)
    layer.receive_message(request("OPTIONS", cseq=2, to_tag=tag), PEER, clock.now)
    assert drain(layer) == []
    (answer,) = sent(layer, clock)
    assert isinstance(answer, SipResponse) and answer.status == 200 and answer.get("Allow")
    layer.receive_message(request("INFO", cseq=2, to_tag=tag), PEER, clock.now)
    assert statuses(sent(layer, clock)) == [500]
    moved = "<sip:alice@203.0.113.77:15070>"
    reinvite = request("INVITE", cseq=3, to_tag=tag, contact=moved)
    layer.receive_message(reinvite, PEER, clock.now)
    (event,) = drain(layer)
    assert isinstance(event, InDialogRequest) and event.session is session
    assert session.dialog.remote_target == "sip:alice@203.0.113.77:15070"
    # a second re-INVITE while the first is unanswered: 500 with Retry-After (14.2)
    layer.receive_message(request("INVITE", cseq=4, to_tag=tag), PEER, clock.now)
    assert statuses(sent(layer, clock))[-1] == 500


def test_session_timer_expiry_ends_the_call_unless_refreshed() -> None:
    layer, clock = layer_and_clock()
    timer = (("Session-Expires", "120"), ("Supported", "timer"))
    session, invite, tag = answered_call(layer, clock, timer)
    (ok,) = sent(layer, clock)
    assert ok.get("Session-Expires") == "120;refresher=uac" and ok.get("Require") == "timer"
    assert session.session_interval == 120 and not session.refresher
    layer.receive_message(ack_for(invite, tag), PEER, clock.now)
    drain(layer)
    # the caller refreshes with UPDATE at half-time: the expiry moves on
    run_until(layer, clock, clock.now + 60)
    update = request("UPDATE", cseq=2, to_tag=tag, headers=timer)
    layer.receive_message(update, PEER, clock.now)
    (event,) = drain(layer)
    assert isinstance(event, InDialogRequest)
    layer.answer(event.transaction, make_response(update, 200, "OK"), clock.now)
    assert statuses(sent(layer, clock)) == [200]
    refreshed = clock.now
    run_until(layer, clock, refreshed + 120 - 32 - 0.01)
    assert drain(layer) == [] and sent(layer, clock) == []
    # then silence: BYE before the interval runs out (RFC 4028 10)
    run_until(layer, clock, refreshed + 120 - 32 + 0.01)
    (event,) = drain(layer)
    assert isinstance(event, DialogEnded) and event.reason == "session_expired"
    assert statuses(sent(layer, clock)) == ["BYE"]
    assert len(layer) == 0


def test_a_session_interval_below_min_se_gets_422() -> None:
    layer, clock = layer_and_clock()
    invite = request("INVITE", headers=(("Session-Expires", "30"), ("Supported", "timer")))
    layer.receive_message(invite, PEER, clock.now)
    assert drain(layer) == []
    messages = sent(layer, clock)
    assert statuses(messages) == [100, 422]  # the 100 Trying is the transaction layer's
    assert messages[1].get("Min-SE") == "90"


def test_requests_outside_dialogs_pass_through() -> None:
    layer, clock = layer_and_clock()
    register = request("REGISTER")
    layer.receive_message(register, PEER, clock.now)
    (event,) = drain(layer)
    assert isinstance(event, RequestReceived) and event.request.method == "REGISTER"


# ------------------------------------------------------------------------------ UAC side


def outgoing_invite(layer: DialogLayer, clock: Clock) -> SipRequest:
    invite = make_request(
        "INVITE",
        "sip:carol@203.0.113.9:15080",
        via=via_value("UDP", *LOCAL),
        from_="<sip:bob@198.51.100.1>;tag=u1",
        to="<sip:carol@203.0.113.9>",
        call_id="out-1",
        cseq=1,
        contact=CONTACT,
    )
    return invite


def from_callee(response: SipResponse) -> SipResponse:
    reparsed = parse_message(response.to_bytes())
    assert isinstance(reparsed, SipResponse)
    return reparsed


def test_uac_progress_answer_ack_and_a_retransmitted_2xx() -> None:
    layer, clock = layer_and_clock()
    invite = outgoing_invite(layer, clock)
    dest = Address("UDP", "203.0.113.9", 15080)
    outgoing = layer.send_invite(invite, dest, clock.now, app_data="leg-1")
    assert statuses(sent(layer, clock)) == ["INVITE"]
    callee_contact = (("Contact", "<sip:carol@203.0.113.9:15080>"),)
    ringing = from_callee(
        make_response(invite, 180, "Ringing", to_tag="c1", headers=callee_contact)
    )
    layer.receive_message(ringing, dest, clock.now)
    (event,) = drain(layer)
    assert isinstance(event, LegProgress) and event.invite is outgoing
    assert event.session is not None and event.session.state is DialogState.EARLY
    ok_headers = (*callee_contact, ("Session-Expires", "90;refresher=uac"))
    ok = from_callee(make_response(invite, 200, "OK", to_tag="c1", headers=ok_headers))
    layer.receive_message(ok, dest, clock.now)
    (event,) = drain(layer)
    assert isinstance(event, LegAnswered) and event.session.app_data == "leg-1"
    session = event.session
    assert session.state is DialogState.CONFIRMED and session.refresher
    (ack,) = sent(layer, clock)
    assert isinstance(ack, SipRequest) and ack.method == "ACK" and ack.cseq == (1, "ACK")
    layer.receive_message(ok, dest, clock.now)  # the 200 again: ACK again, no event
    assert drain(layer) == []
    assert statuses(sent(layer, clock)) == ["ACK"]
    # we are the refresher: an UPDATE half-way through the interval
    run_until(layer, clock, clock.now + 45.01)
    (update,) = sent(layer, clock)
    assert isinstance(update, SipRequest) and update.method == "UPDATE"
    assert update.get("Session-Expires") == "90;refresher=uac"
    # the callee hangs up
    bye = make_request(
        "BYE",
        "sip:bob@198.51.100.1:15060",
        via=via_value("UDP", dest.host, dest.port),
        from_="<sip:carol@203.0.113.9>;tag=c1",
        to="<sip:bob@198.51.100.1>;tag=u1",
        call_id="out-1",
        cseq=5,
    )
    layer.receive_message(parse_message(bye.to_bytes()), dest, clock.now)
    (event,) = drain(layer)
    assert isinstance(event, DialogEnded) and event.session is session
    assert statuses(sent(layer, clock)) == [200]


def test_uac_failure_and_in_dialog_481_ends_the_dialog() -> None:
    layer, clock = layer_and_clock()
    dest = Address("UDP", "203.0.113.9", 15080)
    invite = outgoing_invite(layer, clock)
    layer.send_invite(invite, dest, clock.now)
    sent(layer, clock)
    busy = from_callee(make_response(invite, 486, "Busy Here", to_tag="c9"))
    layer.receive_message(busy, dest, clock.now)
    (event,) = drain(layer)
    assert isinstance(event, LegFailed) and event.status == 486
    assert statuses(sent(layer, clock)) == ["ACK"]  # the transaction layer's ACK
    assert len(layer) == 0
    # another call, answered; our INFO gets 481: the dialog is gone (12.2.1.2)
    invite = outgoing_invite(layer, clock)
    invite.set("Call-ID", "out-2")
    layer.send_invite(invite, dest, clock.now)
    layer.receive_message(
        from_callee(make_response(invite, 200, "OK", to_tag="c2")), dest, clock.now
    )
    (answered,) = drain(layer)
    assert isinstance(answered, LegAnswered)
    session = answered.session
    tx = layer.request(session, "INFO", clock.now, app_data="relay-1")
    sent(layer, clock)
    info = tx.request
    layer.receive_message(
        from_callee(make_response(info, 481, "Call/Transaction Does Not Exist")), dest, clock.now
    )
    outcome, ended = drain(layer)
    assert isinstance(outcome, InDialogResponse) and outcome.status == 481
    assert outcome.app_data == "relay-1"
    assert isinstance(ended, DialogEnded) and ended.reason == "terminated"
    assert len(layer) == 0


def test_reinvite_glare_gets_491() -> None:
    layer, clock = layer_and_clock()
    session, invite, tag = answered_call(layer, clock)
    layer.receive_message(ack_for(invite, tag), PEER, clock.now)
    drain(layer)
    layer.request(session, "INVITE", clock.now)
    sent(layer, clock)
    layer.receive_message(request("INVITE", cseq=2, to_tag=tag), PEER, clock.now)
    assert drain(layer) == []
    assert statuses(sent(layer, clock)) == [100, 491]


def test_a_bye_waits_for_the_ack_of_our_2xx() -> None:
    layer, clock = layer_and_clock()
    session, invite, tag = answered_call(layer, clock)
    sent(layer, clock)
    layer.bye(session, clock.now)  # RFC 3261 15: not before the ACK
    assert sent(layer, clock) == []
    layer.receive_message(request("INFO", cseq=2, to_tag=tag), PEER, clock.now)
    assert statuses(sent(layer, clock)) == [481]  # the dialog is on its way out
    layer.receive_message(ack_for(invite, tag), PEER, clock.now)
    assert drain(layer) == []
    assert statuses(sent(layer, clock)) == ["BYE"]
    assert session.state is DialogState.TERMINATED and len(layer) == 0


# ---------------------------------------------------------------- random runs drain to zero


def _random_run(seed: int) -> None:
    """Random peer requests (right and wrong tags and CSeqs), TU answers and hang-ups and
    clock jumps; then the TU hangs up what is left and the clock runs on: the dialog table,
    its timers and the transaction table must all be empty."""
    rng = random.Random(seed)
    layer, clock = layer_and_clock()
    invites: list[tuple[SipRequest, str]] = []
    pending: list[InviteReceived | InDialogRequest] = []
    for step in range(120):
        op = rng.choices(range(6), weights=(1, 3, 2, 3, 1, 2))[0]
        if op == 0:
            headers: tuple[tuple[str, str], ...] = ()
            if rng.random() < 0.5:
                headers = (
                    ("Session-Expires", str(rng.choice((60, 90, 120)))),
                    ("Supported", "timer"),
                )
            invite = request(
                "INVITE", call_id=f"c{seed}-{step}", branch=f"z9hG4bKi{step}", headers=headers
            )
            layer.receive_message(invite, PEER, clock.now)
        elif op == 1 and invites:
            invite, tag = rng.choice(invites)
            method = rng.choice(("BYE", "INFO", "OPTIONS", "UPDATE", "INVITE", "REFER"))
            in_dialog = request(
                method,
                cseq=rng.randrange(1, 6),
                to_tag=tag if rng.random() < 0.8 else "stale",
                call_id=invite.call_id or "",
                branch=f"z9hG4bKd{step}",
            )
            layer.receive_message(in_dialog, PEER, clock.now)
        elif op == 2 and invites:
            invite, tag = rng.choice(invites)
            ack = request(
                "ACK", cseq=rng.choice((1, 1, 2, 3)), to_tag=tag, call_id=invite.call_id or ""
            )
            layer.receive_message(ack, PEER, clock.now)
        elif op == 3 and pending:
            event = pending.pop(rng.randrange(len(pending)))
            tx = event.transaction
            if tx.terminated or tx.state.value in ("Completed", "Accepted", "Confirmed"):
                continue
            status = rng.choice((200, 200, 486, 180))
            tag = f"t{step}"
            answer = make_response(
                event.request, status, None, to_tag=tag, headers=(("Contact", CONTACT),)
            )
            layer.answer(tx, answer, clock.now)
            if isinstance(event, InviteReceived) and status == 200:
                invites.append((event.request, tag))
        elif op == 4:
            live = [layer.find(r.call_id or "", t, "a1") for r, t in invites]
            choices = [s for s in live if s is not None]
            if choices:
                layer.bye(rng.choice(choices), clock.now)
        else:
            run_until(layer, clock, clock.now + rng.choice((0.1, 1.0, 5.0, 40.0)))
        layer.datagrams_to_send(clock.now)
        for handed_up in drain(layer):
            if isinstance(handed_up, InviteReceived | InDialogRequest):
                pending.append(handed_up)
    for request_, tag in invites:
        session = layer.find(request_.call_id or "", tag, "a1")
        if session is not None:
            layer.bye(session, clock.now)
    run_until(layer, clock, clock.now + 3600)
    drain(layer)
    assert len(layer) == 0
    assert layer.timer_count == 0
    assert layer.transactions.transaction_count == 0


@pytest.mark.parametrize("seed", range(40))
def test_random_runs_drain_to_zero(seed: int) -> None:
    _random_run(seed)


def test_cancel_waits_for_a_provisional_then_the_invite_fails_487() -> None:
    layer, clock = layer_and_clock()
    dest = Address("UDP", "203.0.113.9", 15080)
    invite = outgoing_invite(layer, clock)
    outgoing = layer.send_invite(invite, dest, clock.now)
    sent(layer, clock)
    layer.cancel(outgoing, clock.now, (("Reason", "SIP;cause=200"),))
    assert sent(layer, clock) == []  # RFC 3261 9.1: nothing heard yet, no CANCEL
    layer.receive_message(from_callee(make_response(invite, 180, None, to_tag="c1")), dest, 0)
    assert drain(layer) == []
    (cancel,) = sent(layer, clock)
    assert isinstance(cancel, SipRequest) and cancel.method == "CANCEL"
    assert cancel.cseq == (1, "CANCEL") and cancel.get("Reason") == "SIP;cause=200"
    assert cancel.top_via == invite.top_via  # the INVITE's branch
    layer.receive_message(from_callee(make_response(cancel, 200, "OK", to_tag="c1")), dest, 0)
    assert drain(layer) == []
    terminated = from_callee(make_response(invite, 487, None, to_tag="c1"))
    layer.receive_message(terminated, dest, clock.now)
    (event,) = drain(layer)
    assert isinstance(event, LegFailed) and event.status == 487 and event.invite is outgoing
    assert statuses(sent(layer, clock)) == ["ACK"]
    assert len(layer) == 0


def test_a_reinvite_nobody_answered_does_not_block_the_next() -> None:
    layer, clock = layer_and_clock()
    session, invite, tag = answered_call(layer, clock)
    layer.receive_message(ack_for(invite, tag), PEER, clock.now)
    drain(layer)
    layer.receive_message(request("INVITE", cseq=2, to_tag=tag), PEER, clock.now)
    (first,) = drain(layer)
    assert isinstance(first, InDialogRequest)
    # the TU never answers: the transaction layer's guard closes it with 408
    run_until(layer, clock, clock.now + layer.timers.proceeding_guard + 1)
    drain(layer)
    sent(layer, clock)
    layer.receive_message(request("INVITE", cseq=3, to_tag=tag), PEER, clock.now)
    (second,) = drain(layer)
    assert isinstance(second, InDialogRequest) and second.session is session


def test_requests_in_no_known_dialog_go_up_when_the_tu_answers_them() -> None:
    transactions = TransactionLayer(TimerSettings(t1=T1, t2=4.0, t4=5.0))
    layer = DialogLayer(transactions, local=lambda dest: LOCAL, answer_no_dialog=False)
    clock = Clock()
    layer.receive_message(request("BYE", cseq=2, to_tag="nosuch"), PEER, clock.now)
    (event,) = drain(layer)
    assert isinstance(event, RequestReceived) and event.request.method == "BYE"
    assert sent(layer, clock) == []
    # a new INVITE is still the layer's
    layer.receive_message(request("INVITE", branch="z9hG4bKnew"), PEER, clock.now)
    (event,) = drain(layer)
    assert isinstance(event, InviteReceived)


def test_a_refresh_that_names_no_interval_keeps_the_dialogs() -> None:
    layer, clock = layer_and_clock()
    timer = (("Session-Expires", "120"), ("Supported", "timer"))
    session, invite, tag = answered_call(layer, clock, timer)
    layer.receive_message(ack_for(invite, tag), PEER, clock.now)
    drain(layer)
    sent(layer, clock)
    run_until(layer, clock, clock.now + 60)
    update = request("UPDATE", cseq=2, to_tag=tag)  # no Session-Expires, no Supported
    layer.receive_message(update, PEER, clock.now)
    (event,) = drain(layer)
    assert isinstance(event, InDialogRequest)
    layer.answer(event.transaction, make_response(update, 200, "OK"), clock.now)
    (ok,) = sent(layer, clock)
    assert ok.get("Session-Expires") == "120;refresher=uac" and ok.get("Require") == "timer"
    assert session.session_interval == 120
    refreshed = clock.now
    run_until(layer, clock, refreshed + 120 - 32 - 0.01)
    assert drain(layer) == []
    run_until(layer, clock, refreshed + 120 - 32 + 0.01)
    (ended,) = drain(layer)
    assert isinstance(ended, DialogEnded) and ended.reason == "session_expired"


def test_a_2xx_retransmitted_after_its_dialog_ended_is_only_acked_again() -> None:
    layer, clock = layer_and_clock()
    invite = outgoing_invite(layer, clock)
    dest = Address("UDP", "203.0.113.9", 15080)
    outgoing = layer.send_invite(invite, dest, clock.now, app_data="leg-1", auto_ack=False)
    sent(layer, clock)
    contact = (("Contact", "<sip:carol@203.0.113.9:15080>"),)
    ok = from_callee(make_response(invite, 200, "OK", to_tag="c1", headers=contact))
    layer.receive_message(ok, dest, clock.now)
    (event,) = drain(layer)
    assert isinstance(event, LegAnswered)
    assert outgoing.transaction is None  # done: no invite <-> transaction cycle left
    layer.ack(event.session, clock.now)
    layer.bye(event.session, clock.now)
    first_ack, bye = sent(layer, clock)
    assert isinstance(bye, SipRequest) and bye.method == "BYE" and len(layer) == 0
    layer.receive_message(ok, dest, clock.now)  # the 2xx again, after our BYE
    assert drain(layer) == [] and len(layer) == 0
    (again,) = sent(layer, clock)
    assert again.to_bytes() == first_ack.to_bytes()
