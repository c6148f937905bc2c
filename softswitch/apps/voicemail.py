"""The voicemail application: leaving a message, and the inbox by phone.

Leaving a message (a callflow's VOICEMAIL node: no answer, busy, do not disturb, a forward,
a DID, a spam treatment): the mailbox's greeting (temporary if set, else busy when the call
reached voicemail on busy, else unavailable; without a recording or a text, "the person at
extension 1 0 1 is not available" or the recorded name), then a tone and the recording.
During the greeting ``#`` skips it, ``0`` hands the caller to the mailbox's operator and
``*`` logs in to the mailbox. The recording ends with ``#`` (then 1 sends, ``*`` marks it
urgent, 3 records again), the caller hanging up, or the mailbox's maximum length. A full
mailbox says so and takes nothing.

The inbox (the tenant's ``check_code``, ``*97``, from the user's own phone; ``access_code``,
``*98``, asks for the mailbox): the PIN, then :class:`~softswitch.voicemail.menu.InboxMenu`
drives the menus and this module carries out its actions.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt
import structlog

from config.voicemail import Greeting
from media.players import AudioSource
from routing.plan import Outcome, Target, TargetKind
from softswitch.apps.recording import (
    BEEP,
    KEY_TIMEOUT,
    next_key,
    pressed,
    record_by_phone,
    wait_key,
)
from softswitch.apps.session import (
    AppSession,
    collect_digits,
    flush_digits,
    play,
    play_when_ready,
)
from softswitch.prompts import Phrase, PromptError, PromptLibrary
from softswitch.voicemail import menu as m
from softswitch.voicemail.mailboxes import (
    Box,
    Mailboxes,
    PinCheck,
    VoicemailError,
)

if TYPE_CHECKING:
    from softswitch.calls.call import Call
    from softswitch.calls.registry import ApplicationRegistry

__all__ = ["VoicemailApp"]

log = structlog.get_logger(__name__)

DIGIT_TIMEOUT = 5.0  # seconds between the digits of a PIN or mailbox number
GREETING_SECONDS = 120
_RENDERED = 256  # phrases kept rendered


class _Connecting(Protocol):
    async def connect(self, destination: Any, *, timeout: float | None = None) -> Any: ...


class VoicemailApp:
    """Builds the voicemail applications of a switch over its mailboxes and prompts."""

    def __init__(self, boxes: Mailboxes, library: PromptLibrary) -> None:
        self.boxes = boxes
        self.library = library
        self._rendered: OrderedDict[tuple[str, tuple[object, ...]], npt.NDArray[np.int16]]
        self._rendered = OrderedDict()

    # ------------------------------------------------------------------ entry points

    def attach(self, applications: ApplicationRegistry[Call]) -> None:
        """Run voicemail for the callflows' VOICEMAIL nodes and the inbox's feature-code
        nodes (VOICEMAIL_INBOX: the caller's own mailbox, or asked for)."""
        applications.register(TargetKind.VOICEMAIL, self._node)
        applications.register(TargetKind.VOICEMAIL_INBOX, self._inbox_node)

    def _node(self, call: Call, target: Target) -> Any:
        # Busy greeting when the callflow came here because the user was busy.
        busy = call.flow.last_outcome is Outcome.BUSY
        return self.leave(call.tenant, target.ref, busy=busy)

    def _inbox_node(self, call: Call, target: Target) -> Any:
        # Routing made this node of a feature code dialled by one of the tenant's users.
        return self.check(call.tenant, target.ref or None)

    def leave(self, tenant: str, extension: str, *, busy: bool = False) -> Any:
        """The application leaving a message in ``extension``'s mailbox (None: no box)."""
        box = self.boxes.box(tenant, extension)
        if box is None:
            return None

        async def run(session: AppSession) -> None:
            await self._leave(session, box, busy)

        return run

    def check(self, tenant: str, extension: str | None) -> Any:
        """The inbox: ``extension``'s mailbox (the caller's own), or asked for (None)."""
        if extension is not None and self.boxes.box(tenant, extension) is None:
            return None

        async def run(session: AppSession) -> None:
            box = self.boxes.box(tenant, extension) if extension is not None else None
            await self._login(session, box)

        return run

    # ------------------------------------------------------------------ audio helpers

    async def _render(self, session: AppSession, phrase: Phrase) -> npt.NDArray[np.int16]:
        key = (session.tenant, tuple(phrase.segments))
        audio = self._rendered.get(key)
        if audio is None:
            audio = await self.library.render(phrase, tenant=session.tenant)
            self._rendered[key] = audio
            while len(self._rendered) > _RENDERED:
                self._rendered.popitem(last=False)
        else:
            self._rendered.move_to_end(key)
        return audio

    async def _say(self, session: AppSession, phrase: Phrase, *, barge_in: bool = True) -> str:
        # A key pressed while the phrase is still synthesised is acted on at once (the
        # synthesis finishes in the background, for the next caller).
        try:
            return await play_when_ready(session, self._render(session, phrase), barge_in=barge_in)
        except PromptError as exc:
            log.warning("voicemail_prompt_failed", call=session.call_id, error=str(exc))
            return "failed"

    def _phrase(self, session: AppSession) -> Phrase:
        return Phrase(self.library.language_of(session.tenant))

    async def _greeting_source(self, session: AppSession, found: Path | str) -> AudioSource:
        if isinstance(found, Path):
            return str(found)
        return str(await self.library.speak(found, tenant=session.tenant))

    # ------------------------------------------------------------------ leaving a message

    async def _leave(self, session: AppSession, box: Box, busy: bool) -> None:
        if self.boxes.full(box):
            log.info("voicemail_full", call=session.call_id, mailbox=box.address.mailbox)
            await self._say(
                session, self._phrase(session).prompt("vm-mailbox-full"), barge_in=False
            )
            return
        key = await self._greet(session, box, busy)
        if key == "*":
            await self._login(session, box)
            return
        if key == "0" and box.operator and await self._operator(session, box):
            return
        while not session.ended.is_set():
            again = await self._record_message(session, box)
            if not again:
                break

    async def _greet(self, session: AppSession, box: Box, busy: bool) -> str:
        """Play the greeting; the key that interrupted it ("" when none did)."""
        flush_digits(session.endpoint)
        kinds = [Greeting.TEMPORARY, Greeting.BUSY if busy else Greeting.UNAVAILABLE]
        chosen = next((k for k in kinds if self.boxes.greeting(box, k) is not None), None)
        found = self.boxes.greeting(box, chosen) if chosen is not None else None
        log.info(
            "voicemail_greeting",
            call=session.call_id,
            mailbox=box.address.mailbox,
            greeting=(chosen or kinds[1]).value,
            recorded=found is not None,
        )
        parts: list[AudioSource | Phrase] = []
        if found is not None:
            parts.append(await self._greeting_source(session, found))
        else:
            tail = "vm-is-busy" if busy else "vm-is-not-available"
            name = self.boxes.greeting(box, Greeting.NAME)
            if name is not None:
                parts += [await self._greeting_source(session, name)]
                parts.append(self._phrase(session).prompt(tail))
            elif box.name:
                parts.append(self._phrase(session).text(box.name).prompt(tail))
            else:
                p = self._phrase(session).prompt("vm-extension").digits(box.address.mailbox)
                parts.append(p.prompt(tail))
        parts.append(self._phrase(session).prompt("vm-record-after-tone"))
        for part in parts:
            if isinstance(part, Phrase):
                ended = await self._say(session, part)
            else:
                ended = await play(session, part, barge_in=True)
            if ended == "hangup":
                return ""
            key = pressed(session)
            if key in ("#", "0", "*"):
                return key
        return ""

    async def _operator(self, session: AppSession, box: Box) -> bool:
        """Hand the caller to the mailbox's operator; True when that took the call."""
        connect = getattr(session, "connect", None)
        if connect is None or box.operator is None:
            return False
        result = await connect(box.operator, timeout=30)
        log.info("voicemail_operator", call=session.call_id, answered=result.answered)
        return bool(result.answered) or session.ended.is_set()

    async def _record_message(self, session: AppSession, box: Box) -> bool:
        """Record one message and file it; True when the caller wants to record it again."""
        rec = self.boxes.begin_message(box, session.caller_number, session.caller_name)
        await play(session, BEEP)
        flush_digits(session.endpoint)
        handle = session.engine.record(session.endpoint, None, rec.path)
        log.info("voicemail_recording", call=session.call_id, mailbox=box.address.mailbox)
        try:
            await wait_key(session, "#", box.max_seconds)
        finally:
            session.engine.stop_recording(handle)
            with contextlib.suppress(Exception):
                await handle.wait_closed()
        if not session.ended.is_set():
            choice = await self._review(session)
            if choice == "3":
                await self.boxes.discard(rec)
                return True
            if choice == "*":
                self.boxes.mark_urgent(rec)
        stored = await self.boxes.file_message(rec)
        if not session.ended.is_set():
            p = self._phrase(session)
            if stored is not None:
                p.prompt("vm-message-saved")
            await self._say(session, p.prompt("vm-goodbye"), barge_in=False)
        return False

    async def _review(self, session: AppSession) -> str:
        for _ in range(2):
            await self._say(session, self._phrase(session).prompt("vm-review"))
            key = await next_key(session, KEY_TIMEOUT)
            if key in ("1", "3", "*") or not key:
                if key == "*":
                    await self._say(session, self._phrase(session).prompt("vm-marked-urgent"))
                return key
        return "1"

    # ------------------------------------------------------------------ logging in

    async def _login(self, session: AppSession, box: Box | None) -> None:
        tenant = session.tenant
        for _ in range(3):
            if box is not None or session.ended.is_set():
                break
            await self._say(session, self._phrase(session).prompt("vm-enter-mailbox"))
            number = await collect_digits(session, 8, DIGIT_TIMEOUT)
            box = self.boxes.box(tenant, number) if number else None
            if box is None:
                await self._say(session, self._phrase(session).prompt("vm-no-mailbox"))
        if box is None:
            return
        if not await self.boxes.has_pin(box):
            # No PIN anywhere: only the owner's own phone gets in.
            if session.user is None or session.user != box.owner:
                await self._say(session, self._phrase(session).prompt("vm-goodbye"))
                return
        elif not await self._pin(session, box):
            return
        log.info(
            "voicemail_login", call=session.call_id, tenant=tenant, mailbox=box.address.mailbox
        )
        await self.boxes.reload(box.address)
        try:
            await self._inbox(session, box)
        finally:
            await self.boxes.purge_deleted(box.address)

    async def _pin(self, session: AppSession, box: Box) -> bool:
        if await self.boxes.locked(box):
            await self._say(session, self._phrase(session).prompt("vm-locked"), barge_in=False)
            return False
        while not session.ended.is_set():
            await self._say(session, self._phrase(session).prompt("vm-enter-password"))
            entered = await collect_digits(session, 12, DIGIT_TIMEOUT)
            if session.ended.is_set():
                return False
            result = await self.boxes.check_pin(box, entered)
            if result is PinCheck.OK:
                return True
            if result is PinCheck.LOCKED:
                log.warning(
                    "voicemail_pin_locked", call=session.call_id, mailbox=box.address.mailbox
                )
                await self._say(session, self._phrase(session).prompt("vm-locked"), barge_in=False)
                return False
            await self._say(session, self._phrase(session).prompt("vm-incorrect"))
        return False

    # ------------------------------------------------------------------ the inbox

    async def _inbox(self, session: AppSession, box: Box) -> None:
        tenant = self.boxes.tenant(session.tenant)
        assert tenant is not None
        menu = m.InboxMenu(
            keys=tenant.voicemail.keys,
            messages=self.boxes.messages(box.address, "new", "saved"),
            newest_first=box.settings.newest_first,
            language=self.library.language_of(session.tenant),
            zone=tenant.voicemail.timezone,
            temporary=self.boxes.greeting(box, Greeting.TEMPORARY) is not None,
        )
        actions = menu.intro()
        while not session.ended.is_set():
            if not await self._carry_out(session, box, actions):
                return
            key = await next_key(session, KEY_TIMEOUT)
            if session.ended.is_set():
                return
            actions = menu.key(key) if key else menu.timeout()

    async def _carry_out(self, session: AppSession, box: Box, actions: list[m.Action]) -> bool:
        """Do what the menu said; False when the call is over. Audio after a key press is
        skipped (the caller is ahead of the prompts), the rest is still done."""
        skipped = ""  # a message not played because the caller typed ahead: still new
        for action in actions:
            if session.ended.is_set():
                return False
            if isinstance(action, m.Say | m.PlayMessage):
                if not session.endpoint.digits.empty():
                    if isinstance(action, m.PlayMessage):
                        skipped = action.message.id
                    continue
                if isinstance(action, m.Say):
                    await self._say(session, action.phrase)
                else:
                    await play(session, str(self.boxes.audio_path(action.message)), barge_in=True)
            elif isinstance(action, m.Move):
                if action.message_id == skipped and action.folder == "saved":
                    continue
                await self.boxes.move(box.address, action.message_id, action.folder)
            elif isinstance(action, m.Forward):
                await self._forward(session, action.message)
            elif isinstance(action, m.CallBack):
                connect = getattr(session, "connect", None)
                if connect is not None:
                    result = await connect(action.number, timeout=60)
                    if result.answered or session.ended.is_set():
                        return False
            elif isinstance(action, m.RecordGreeting):
                await self._record_greeting(session, box, action.kind)
            elif isinstance(action, m.RemoveGreeting):
                self.boxes.remove_greeting(box.address, action.kind)
            elif isinstance(action, m.ChangePin):
                await self._change_pin(session, box)
            elif isinstance(action, m.Hangup):
                await self._say(session, self._phrase(session).prompt("vm-goodbye"), barge_in=False)
                return False
        return True

    async def _forward(self, session: AppSession, message: Any) -> None:
        await self._say(session, self._phrase(session).prompt("vm-forward-to"))
        number = await collect_digits(session, 8, DIGIT_TIMEOUT)
        target = self.boxes.box(session.tenant, number) if number else None
        if target is None:
            await self._say(session, self._phrase(session).prompt("vm-no-mailbox"))
            return
        try:
            await self.boxes.copy(message, target)
        except VoicemailError:
            await self._say(session, self._phrase(session).prompt("vm-mailbox-full"))
            return
        await self._say(session, self._phrase(session).prompt("vm-forwarded"))

    async def _record_greeting(self, session: AppSession, box: Box, kind: Greeting) -> None:
        async def say(name: str) -> str:
            return await self._say(session, self._phrase(session).prompt(name))

        async def keep(mono: Path) -> bool:
            try:
                await self.boxes.set_greeting(box.address, kind, mono)
            except VoicemailError as exc:
                log.warning("voicemail_greeting_failed", error=str(exc))
                return False
            return True

        folder = self.boxes.greeting_file(box.address, kind).parent
        if await record_by_phone(session, say, folder, GREETING_SECONDS, keep):
            await say("record-saved")

    async def _change_pin(self, session: AppSession, box: Box) -> None:
        await self._say(session, self._phrase(session).prompt("vm-enter-new-password"))
        first = await collect_digits(session, 12, DIGIT_TIMEOUT)
        await self._say(session, self._phrase(session).prompt("vm-reenter-password"))
        second = await collect_digits(session, 12, DIGIT_TIMEOUT)
        if first != second or not ((first.isascii() and first.isdigit()) and 4 <= len(first) <= 12):
            await self._say(session, self._phrase(session).prompt("vm-passwords-differ"))
            return
        await self.boxes.change_pin(box.address, first)
        await self._say(session, self._phrase(session).prompt("vm-password-changed"))
