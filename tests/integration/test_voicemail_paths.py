"""Voicemail's other ways in and out, with baresip phones on one switch for the module:
``0`` during the greeting reaches the mailbox's operator; call back from the inbox; a
greeting recorded by phone is what the next caller hears (FFT); do-not-disturb and a
forward reach voicemail; and a message deleted with ``softswitch voicemail delete`` beside
the running switch turns the subscribed phone's lamp off."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from media.wav import load_wav, write_wav
from peers.baresip import BaresipPhone
from peers.sipp import run_sipp
from peers.switchproc import PhoneUser, SwitchConfigFile, SwitchProcess
from storage import open_store
from storage.voicemail import StoredMessage
from tests.integration.audiokit import heard, tone, windows
from tests.integration.ivrkit import carrier_scenario
from tests.integration.voicemailkit import RATE, cli, log, phone

pytestmark = pytest.mark.integration

GREETING_HZ = 1200.0
TENANT_TOML = """
[tenants.voicemail]
default_pin = "1234"
min_message_seconds = 1.0
[tenants.voicemail.mailboxes.101]
operator = "102"
[tenants.voicemail.mailboxes.500]
name = "Sales"
[tenants.routing.users.103]
default_rule = { dnd = "voicemail" }
[tenants.routing.users.104]
default_rule = { forward = { always = { kind = "voicemail", target = "500" } } }
[tenants.routing.users.102]
block = { spam = "voicemail" }
[tenants.routing.users.105]
block = { spam = "screen" }
[tenants.routing]
dids = [
    { number = "+14155550112", treatment = "user", destination = "102" },
    { number = "+14155550115", treatment = "user", destination = "105" },
]
[[tenants.trunks]]
name = "carrier"
inbound_addresses = ["127.0.0.2/32"]  # not the phones' 127.0.0.1
[[tenants.trunks.gateways]]
host = "127.0.0.1"
port = 10999
"""


@dataclass
class Office:
    cfg: SwitchConfigFile
    switch: SwitchProcess
    work: Path

    def mark(self) -> int:
        """Where the switch's log ends now (wait_log looks only after it)."""
        return len(log(self.cfg))

    def wait_log(self, text: str, mark: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in log(self.cfg)[mark:]:
            assert time.monotonic() < deadline, f"no {text!r} in the switch's log"
            time.sleep(0.3)

    def dial(self, caller: BaresipPhone, number: str) -> None:
        caller.command("dial", f"sip:{number}@127.0.0.1:{self.cfg.port}")
        caller.wait_event("CALL_ESTABLISHED", timeout=20)

    def add_message(self, mailbox: str, message_id: str, caller: str) -> None:
        """A message put in the Store beside the running switch, with 2 s of audio."""
        audio = f"test/{mailbox}/{message_id}.wav"
        path = self.cfg.directory / "data/voicemail" / audio
        path.parent.mkdir(parents=True, exist_ok=True)
        write_wav(path, (3000 * np.sin(np.arange(2 * RATE) * 0.3)).astype(np.int16))
        message = StoredMessage(
            message_id, "test", mailbox, "new", caller, "", time.time(), 2.0, False, audio
        )

        async def add() -> None:
            store = open_store(f"sqlite:///{self.cfg.directory / 'switch.db'}")
            await store.open()
            try:
                await store.add_voice_message(message)
            finally:
                await store.close()

        asyncio.run(add())


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Office]:
    work = tmp_path_factory.mktemp("vmpaths")
    users = [PhoneUser(ext, f"pw{ext}") for ext in ("101", "102", "103", "104", "105")]
    cfg = SwitchConfigFile(work / "switch", users=users, tenant_toml=TENANT_TOML)
    cfg.write()
    with SwitchProcess(cfg.directory / "switch.toml", port=cfg.port) as switch:
        yield Office(cfg, switch, work)


def _mwi(desk: BaresipPhone, text: str, timeout: float = 15.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            event = desk.wait_event("MWI_NOTIFY", 1.0)
        except TimeoutError:
            continue
        if text in str(event.get("param", "")):
            return str(event["param"])
    raise AssertionError(f"no MWI NOTIFY with {text!r}; events {desk.events[-5:]}")


def test_a_delete_beside_the_switch_turns_the_lamp_off(office: Office) -> None:
    cfg = office.cfg
    account = f"<sip:102@pbx.test>;auth_pass=pw102;outbound=sip:127.0.0.1:{cfg.port};regint=600"
    mark = office.mark()
    with BaresipPhone(office.work / "mwi", account, extra_config=["module_app mwi.so"]) as desk:
        # (its first NOTIFY may come before our control connection sees events)
        office.wait_log("package=message-summary resource=test/102", mark)
        office.add_message("102", "beside1", "+15551230000")  # written by another process
        assert "Voice-Message: 1/0" in _mwi(desk, "Messages-Waiting: yes")
        cli(cfg.directory, "delete", "test", "102", "beside1")
        assert "Voice-Message: 0/0" in _mwi(desk, "Messages-Waiting: no")


def test_zero_in_the_greeting_reaches_the_operator(office: Office) -> None:
    work = office.work / "operator"
    work.mkdir()
    with (
        phone(work, "102", office.cfg.port, manual=True) as operator,
        phone(work, "103", office.cfg.port) as caller,
    ):
        office.switch.wait_registrations(lambda rows: len(rows) >= 2)
        mark = office.mark()
        office.dial(caller, "101")  # 101 is not registered: its voicemail answers
        office.wait_log("voicemail_greeting", mark)
        time.sleep(1.0)
        caller.send_dtmf("05")  # "0" goes when "5" starts (baresip holds a burst's last key)
        operator.wait_event("CALL_INCOMING", timeout=20)
        operator.command("accept")
        operator.wait_event("CALL_ESTABLISHED", timeout=10)
        caller.command("hangup")
        caller.wait_event("CALL_CLOSED", timeout=15)


def test_call_back_from_the_inbox(office: Office) -> None:
    office.add_message("101", "cb1", "102")
    work = office.work / "callback"
    work.mkdir()
    with (
        phone(work, "101", office.cfg.port) as owner,
        phone(work, "102", office.cfg.port, manual=True) as bob,
    ):
        office.switch.wait_registrations(lambda rows: len(rows) >= 2)
        mark = office.mark()
        office.dial(owner, "*97")
        time.sleep(1.0)
        owner.send_dtmf("12341")  # the PIN (ends after the digit timeout); "1" held
        office.wait_log("voicemail_login", mark)
        owner.send_dtmf("2")  # "1" arrives: new messages, the message plays
        # As a user would: during the first message's announcement, while its prompts are
        # still synthesised (the tts cache is new); the key is acted on, not the prompts.
        time.sleep(1.0)
        owner.send_dtmf("5")  # "2" arrives: call back 102
        bob.wait_event("CALL_INCOMING", timeout=20)
        bob.command("hangup")
        owner.command("hangup")
        owner.wait_event("CALL_CLOSED", timeout=15)


def test_greeting_recorded_by_phone_is_what_callers_hear(office: Office) -> None:
    work = office.work / "greeting"
    work.mkdir()
    hum = tone(work / "hum.wav", GREETING_HZ, 90.0)
    with phone(work, "101", office.cfg.port, hum) as owner:
        office.switch.wait_registrations(lambda rows: len(rows) >= 1)
        mark = office.mark()
        office.dial(owner, "*97")
        time.sleep(1.0)
        owner.send_dtmf("12340")  # the PIN; "0" (options) held
        office.wait_log("voicemail_login", mark)
        owner.send_dtmf("1")  # "0" arrives: options; "1" (unavailable greeting) held
        time.sleep(2.0)
        owner.send_dtmf("#")  # "1" arrives: record; "#" held
        office.wait_log("phone_recording ", mark)
        time.sleep(3.0)  # 3 s of the tone recorded
        owner.send_dtmf("1")  # "#" arrives: done; "1" (keep) held
        office.wait_log("phone_recording_review", mark)
        time.sleep(1.0)
        owner.send_dtmf("5")  # "1" arrives: kept
        deadline = time.monotonic() + 20
        while "voicemail_greeting_set" not in log(office.cfg) and time.monotonic() < deadline:
            time.sleep(0.3)
        owner.command("hangup")
        owner.wait_event("CALL_CLOSED", timeout=15)
    greeting = office.cfg.directory / "data/voicemail/test/101/greetings/unavailable.wav"
    assert greeting.is_file(), log(office.cfg)[-3000:]

    listener = office.work / "greeting-caller"
    listener.mkdir()
    with phone(listener, "103", office.cfg.port) as caller:
        office.switch.wait_registrations(lambda rows: len(rows) >= 1)
        office.dial(caller, "101")
        time.sleep(len(load_wav(greeting)) / RATE + 1.0)
        caller.command("hangup")
        caller.wait_event("CALL_CLOSED", timeout=15)
    assert re.search(r"voicemail_greeting .*mailbox=101 .*recorded=True", log(office.cfg))
    pitches = windows(load_wav(heard(listener / "p103")))
    assert sum(abs(p - GREETING_HZ) < 30 for p in pitches) >= 4, pitches


@pytest.mark.parametrize(("callee", "mailbox"), [("103", "103"), ("104", "500")])
def test_do_not_disturb_and_forward_reach_voicemail(
    office: Office, callee: str, mailbox: str
) -> None:
    work = office.work / f"to-vm-{callee}"
    work.mkdir()
    with (
        phone(work, callee, office.cfg.port, manual=True) as desk,
        phone(work, "102", office.cfg.port) as caller,
    ):
        office.switch.wait_registrations(lambda rows: len(rows) >= 2)
        before = log(office.cfg).count(f"mailbox={mailbox} ")
        office.dial(caller, callee)
        deadline = time.monotonic() + 20
        while log(office.cfg).count(f"mailbox={mailbox} ") == before:
            assert time.monotonic() < deadline, log(office.cfg)[-2000:]
            time.sleep(0.3)
        caller.command("hangup")
        caller.wait_event("CALL_CLOSED", timeout=15)
        assert not [e for e in desk.poll_events(0.5) if e.get("type") == "CALL_INCOMING"]
        assert not [e for e in desk.events if e.get("type") == "CALL_INCOMING"]
    assert re.search(rf"voicemail_greeting .*mailbox={mailbox} ", log(office.cfg))


def _spam_call(office: Office, number: str, name: str) -> None:
    """The carrier calls ``number`` saying the caller failed STIR/SHAKEN verification, and
    hangs up after 12 s."""
    work = office.work / name
    scenario = carrier_scenario(work / "carrier.xml", [("pause", 12000)])
    text = scenario.read_text().replace(
        "<sip:+16505550123@carrier.test>",
        "<sip:+16505550123;verstat=TN-Validation-Failed@carrier.test;user=phone>",
    )
    scenario.write_text(text)
    result = run_sipp(
        scenario,
        f"127.0.0.1:{office.cfg.port}",
        calls=1,
        rate=1,
        extra=["-s", number, "-mi", "127.0.0.2"],
        timeout=60,
        workdir=work,
        local_ip="127.0.0.2",
    )
    assert result.ok, result.errors + log(office.cfg)[-2000:]


def test_spam_treatment_voicemail(office: Office) -> None:
    work = office.work / "spam-vm-phone"
    work.mkdir()
    with phone(work, "102", office.cfg.port, manual=True) as desk:
        office.switch.wait_registrations(lambda rows: len(rows) >= 1)
        mark = office.mark()
        _spam_call(office, "+14155550112", "spam-vm")
        assert re.search(r"voicemail_greeting .*mailbox=102 ", log(office.cfg)[mark:])
        desk.poll_events(0.5)
        assert not [e for e in desk.events if e.get("type") == "CALL_INCOMING"]


def test_spam_treatment_screen(office: Office) -> None:
    work = office.work / "spam-screen-phone"
    work.mkdir()
    with phone(work, "105", office.cfg.port) as desk:  # answers, never presses 1
        office.switch.wait_registrations(lambda rows: len(rows) >= 1)
        mark = office.mark()
        _spam_call(office, "+14155550115", "spam-screen")
        assert re.search(r"confirmation_asked .*kind=screen", log(office.cfg)[mark:])
        assert desk.events or desk.poll_events(0.5)
