"""The admin API's control channel (softswitch.api.control, .channel): frames split and
joined anywhere decode to the same messages; a bad frame, a foreign object or an unknown
operation is a ProtocolError; a request's answer or refusal reaches its caller."""

from __future__ import annotations

import asyncio
import pickle
import struct

import pytest

from softswitch.api.channel import RemoteLive
from softswitch.api.control import (
    Events,
    Feed,
    Message,
    MessageDecoder,
    ProtocolError,
    Ready,
    Refused,
    Reply,
    Request,
    Stop,
    encode,
)
from softswitch.api.events import Event
from softswitch.api.live import CallRow, LegRow, LiveError
from softswitch.api.registrations import RegistrationRows
from softswitch.api.roles import Area
from storage.base import Binding


def _binding() -> Binding:
    return Binding(
        aor="sip:100@acme.test",
        contact="sip:100@127.0.0.1:20000",
        expires_at=2e9,
        q=None,
        call_id="c1",
        cseq=1,
        instance_id=None,
        reg_id=None,
        path=[],
        received=None,
        transport="udp",
        user_agent="phone",
        registered_at=1e9,
    )


def _call() -> CallRow:
    leg = LegRow("caller", "sip:100@127.0.0.1", "answered", 200, 1.0, True)
    return CallRow(
        "c1", "acme", "answered", "internal", "100", "", "200", "200", "200", "", 1.0, 2.0, (leg,)
    )


def test_messages_survive_any_split_of_the_stream() -> None:
    ended = Event("call.ended", "acme", Area.CALLS, {"id": "c1"}, ("100", "200"), at=3.0)
    messages: list[Message] = [
        Ready(42),
        Request(1, "registrations", ("acme", 1.0, frozenset({"100"}), None, None, None, 50)),
        Reply(1, RegistrationRows(1, [("100", _binding())], None)),
        Reply(2, [_call()]),
        Refused(3, "not_found", "call 'x' not found"),
        Feed(True),
        Events((ended,)),
        Stop(),
    ]
    stream = b"".join(encode(m) for m in messages)
    for size in (1, 7, len(stream)):
        decoder = MessageDecoder()
        got = []
        for at in range(0, len(stream), size):
            got += decoder.feed(stream[at : at + size])
        assert got == messages


def test_a_foreign_object_or_an_unknown_operation_is_refused() -> None:
    body = pickle.dumps({"op": "calls"})
    with pytest.raises(ProtocolError, match="unexpected dict"):
        MessageDecoder().feed(struct.pack("!I", len(body)) + body)
    with pytest.raises(ProtocolError, match="unknown operation"):
        MessageDecoder().feed(encode(Request(1, "__init__", ())))
    with pytest.raises(ProtocolError, match="exceeds"):
        MessageDecoder().feed(struct.pack("!I", 1 << 30))


async def test_a_request_gets_its_answer_or_its_refusal() -> None:
    sent: list[bytes] = []

    class _Channel:
        open = True

        def send(self, message: Request) -> None:
            sent.append(encode(message))

    live = RemoteLive()
    live.channel = _Channel()  # type: ignore[assignment]
    calls = asyncio.ensure_future(live.calls("acme", None))
    hang_up = asyncio.ensure_future(live.hang_up("x"))
    await asyncio.sleep(0)
    first, second = (MessageDecoder().feed(frame)[0] for frame in sent)
    assert isinstance(first, Request) and first.op == "calls" and first.args == ("acme", None)
    assert isinstance(second, Request) and second.args == ("x",)
    live.answered(Refused(second.id, "not_found", "call 'x' not found"))
    live.answered(Reply(first.id, [_call()]))
    assert await calls == [_call()]
    with pytest.raises(LiveError) as refused:
        await hang_up
    assert refused.value.code == "not_found"
    waiting = asyncio.ensure_future(live.metrics())
    await asyncio.sleep(0)
    live.lost("channel closed")  # the switch is gone: nothing waits for ever
    with pytest.raises(LiveError, match="the switch is gone"):
        await waiting
