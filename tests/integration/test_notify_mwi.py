"""Message-waiting lamps with a real phone: baresip (its ``mwi`` module subscribes to
``message-summary`` for its own account, RFC 3842) registered as 101 on a switch whose
mailbox directory is a test double gets the counts on subscribe and a NOTIFY with
"Messages-Waiting: yes" and 1 new message when a message is left; and, once the real
voicemail is wired into the switch, the same end to end with a message a caller leaves."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from config.loader import load_config
from config.voicemail import EmailNotification
from peers.baresip import BaresipPhone
from peers.switchproc import PhoneUser, SwitchConfigFile
from softswitch.server import Switch
from softswitch.voicemail.events import MailboxAddress, MessageCounts, VoiceMessage
from tests.integration.voicemailkit import LEAD, speech

pytestmark = pytest.mark.integration

USERS = [PhoneUser("101", "pw101"), PhoneUser("102", "pw102")]


class Mailboxes:
    """A MailboxDirectory test double: user 101's mailbox, counts set by the test."""

    def __init__(self) -> None:
        self.box = MailboxAddress("test", "101")
        self.now = MessageCounts()

    def mailbox_of(self, tenant: str, user: str) -> MailboxAddress | None:
        return self.box if user == "101" else None

    def counts(self, box: MailboxAddress) -> MessageCounts:
        return self.now

    def has_new(self, tenant: str, mailbox: str) -> bool:
        return mailbox == "101" and self.now.waiting

    def lamp_users(self, box: MailboxAddress) -> tuple[str, ...]:
        return ("101",)

    def email(self, box: MailboxAddress) -> EmailNotification | None:
        return None

    def new_messages(self, box: MailboxAddress) -> tuple[VoiceMessage, ...]:
        return ()

    async def delete(self, box: MailboxAddress, message_id: str) -> None:
        return None


@pytest.fixture
async def switch(tmp_path: Path) -> AsyncIterator[tuple[Switch, SwitchConfigFile]]:
    config = SwitchConfigFile(tmp_path / "switch", users=USERS, media_anchor="never")
    instance = Switch(load_config(config.write()))
    await instance.start()
    yield instance, config
    await instance.stop()


@pytest.fixture
async def anchored_switch(tmp_path: Path) -> AsyncIterator[tuple[Switch, SwitchConfigFile]]:
    """A switch with media anchored: voicemail answers calls itself."""
    config = SwitchConfigFile(tmp_path / "switch", users=USERS, media_anchor="always")
    instance = Switch(load_config(config.write()))
    await instance.start()
    yield instance, config
    await instance.stop()


def phone(tmp_path: Path, port: int) -> BaresipPhone:
    account = f"<sip:101@pbx.test>;auth_pass=pw101;outbound=sip:127.0.0.1:{port};regint=600"
    return BaresipPhone(tmp_path / "phone", account, extra_config=["module_app mwi.so"])


async def mwi_body(phone: BaresipPhone, text: str, timeout: float = 15.0) -> str:
    """The body of the first MWI NOTIFY baresip reports that contains ``text``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        try:
            event = await asyncio.to_thread(phone.wait_event, "MWI_NOTIFY", 1.0)
        except TimeoutError:
            continue
        body = str(event.get("param", ""))
        if text in body:
            return body
    raise AssertionError(f"no MWI NOTIFY with {text!r}; events {phone.events[-5:]}")


async def test_baresip_lamp_lights_when_a_message_is_left(
    switch: tuple[Switch, SwitchConfigFile], tmp_path: Path
) -> None:
    instance, config = switch
    assert instance.notifications is not None
    mailboxes = Mailboxes()
    listener = instance.notifications.attach_mailboxes(mailboxes)
    with phone(tmp_path, config.port) as desk:
        idle = await mwi_body(desk, "Messages-Waiting: no")
        assert "Voice-Message: 0/0" in idle
        mailboxes.now = MessageCounts(new=1)
        message = VoiceMessage(
            "m1", "102", "Bob", dt.datetime.now(dt.UTC), 4.0, False, tmp_path / "m1.wav"
        )
        listener.message_left(mailboxes.box, message, mailboxes.now)
        lit = await mwi_body(desk, "Messages-Waiting: yes")
        assert "Voice-Message: 1/0 (0/0)" in lit
        assert "Message-Account: sip:101@pbx.test" in lit
        mailboxes.now = MessageCounts(old=1)
        listener.counts_changed(mailboxes.box, mailboxes.now)
        heard = await mwi_body(desk, "Voice-Message: 0/1")
        assert "Messages-Waiting: no" in heard


async def test_end_to_end_with_the_real_voicemail(
    anchored_switch: tuple[Switch, SwitchConfigFile], tmp_path: Path
) -> None:
    """A caller leaves a message for 101; 101's baresip lights its lamp with 1 new message
    (the switch's own mailboxes are the notifier's directory)."""
    instance, config = anchored_switch
    assert instance.notifications is not None
    assert instance.notifications.mailboxes is instance.voicemail
    caller_account = f"<sip:102@pbx.test>;auth_pass=pw102;outbound=sip:127.0.0.1:{config.port}"
    with phone(tmp_path, config.port) as desk:
        await mwi_body(desk, "Messages-Waiting: no")
        # 101 does not answer: the call goes to 101's voicemail (unanswered -> mailbox).
        # LEAD seconds of silence while the greeting plays, then the message.
        message, voiced = speech(tmp_path, "Hello, this is a message for one oh one.")
        with BaresipPhone(tmp_path / "caller", caller_account, audio_source=message) as caller:
            await asyncio.sleep(1.0)  # registered
            caller.command("dial", "sip:101@pbx.test")
            await asyncio.to_thread(desk.wait_event, "CALL_INCOMING", 15)
            desk.command("hangup")  # busy: to the mailbox
            await asyncio.to_thread(caller.wait_event, "CALL_ESTABLISHED", 40)
            await asyncio.sleep(LEAD + voiced + 1.5)  # the greeting, then the message
            caller.command("hangup")
        lit = await mwi_body(desk, "Messages-Waiting: yes", timeout=30)
        assert "Voice-Message: 1/0" in lit
