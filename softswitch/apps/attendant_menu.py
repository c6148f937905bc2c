"""The auto attendant's menu logic, sans-I/O: keys and timeouts in, steps out.

``MenuMachine`` knows nothing of calls, media or clocks. The application
(``softswitch.apps.attendant``) carries out each step it returns (play a prompt, wait for
a key for so many seconds, hand the caller to a destination, hang up) and feeds back what
happened: ``key``, ``timeout``, ``played`` (a prompt finished without a key) and
``returned`` (a destination did not take the call). Tests drive it with plain calls.

Keys and extensions share the keypad, as on every PBX: a key with an action acts at once
unless an extension starts with it, in which case the machine waits the inter-digit
timeout for a second digit; digits that are not a key's action are an extension, ended by
``#``, by ``max_digits``, by a complete extension no longer one starts with, or by the
inter-digit timeout.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from config.attendant import AttendantAction, AutoAttendant, KeyAction, Menu, MenuPrompt
from config.models import Tenant
from routing.timeframes import CompiledFrame, LocalClock, to_timestamp

__all__ = [
    "Connect",
    "HangUp",
    "MenuMachine",
    "Play",
    "Say",
    "Step",
    "Wait",
    "choose_menu",
    "describe_attendant",
    "frames_active",
]


@dataclass(frozen=True, slots=True)
class Play:
    """Play a configured prompt; a key interrupts it when ``barge_in``."""

    prompt: MenuPrompt
    barge_in: bool = True


@dataclass(frozen=True, slots=True)
class Say:
    """Play a system prompt of the library by name (``menu-invalid``...)."""

    name: str
    barge_in: bool = True


@dataclass(frozen=True, slots=True)
class Wait:
    """Wait up to ``seconds`` for a key (then feed ``timeout``)."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Connect:
    """Hand the caller to ``action``'s destination (user, conference, queue, ring group,
    voicemail, voicemail login, outside number, another attendant, the directory)."""

    action: AttendantAction


@dataclass(frozen=True, slots=True)
class HangUp:
    """Say goodbye and hang up."""


Step = Play | Say | Wait | Connect | HangUp


def choose_menu(attendant: AutoAttendant, active: Callable[[str], bool]) -> tuple[str, Menu]:
    """The top menu for now: holidays while that frame is active, business hours while
    that one is (or always, with no frame), else after hours; ``active`` says whether a
    named domain time frame is active now."""
    holidays, holidays_frame = attendant.holidays, attendant.holidays_frame
    if holidays is not None and holidays_frame is not None and active(holidays_frame):
        return "holidays", holidays
    frame = attendant.business_hours_frame
    if frame is None or active(frame) or attendant.after_hours is None:
        return "business_hours", attendant.business_hours
    return "after_hours", attendant.after_hours


def frames_active(tenant: Tenant, at: dt.datetime | float) -> Callable[[str], bool]:
    """Whether a domain time frame of ``tenant`` (by name) is active at ``at``."""
    clock = LocalClock(to_timestamp(at))
    frames = {f.name: f for f in tenant.routing.time_frames if f.owner is None}

    def active(name: str) -> bool:
        frame = frames.get(name)
        return frame is not None and CompiledFrame(frame).match(clock) is not None

    return active


def describe_attendant(tenant: Tenant, extension: str, at: dt.datetime | float) -> list[str]:
    """For ``route explain``: which menu attendant ``extension`` plays at ``at`` and what
    its keys do."""
    attendant = tenant.attendant_by_extension(extension)
    if attendant is None:
        return [f"auto attendant {extension}: none configured (the caller hears 480)"]
    name, menu = choose_menu(attendant, frames_active(tenant, at))
    lines = [f"auto attendant {extension} ({attendant.name!r}) plays its {name} menu:"]
    _describe_menu(menu, 1, lines)
    return lines


def _describe_menu(menu: Menu, depth: int, lines: list[str]) -> None:
    pad = "  " * depth
    for key in sorted(menu.keys, key=lambda k: "0123456789*#".index(k)):
        action = menu.keys[key]
        lines.append(f"{pad}key {key}: {action.describe()}")
        if action.menu is not None:
            _describe_menu(action.menu, depth + 1, lines)
    if menu.dial_by_extension:
        lines.append(f"{pad}dial by extension: up to {menu.max_digits} digits")
    lines.append(
        f"{pad}no key ({menu.timeout:g}s): {menu.no_key.describe()}; unassigned key: "
        f"{menu.unassigned.describe()}; after {menu.max_failures} failures: "
        f"{menu.fallback.describe()}"
    )


class MenuMachine:
    """One caller's way through an attendant's menus; see the module docstring.

    ``extensions``: what the caller may dial by extension (the tenant's users and
    services); ``max_failures`` counts no-keys, wrong keys and destinations that did not
    take the call, in a row per menu.
    """

    def __init__(
        self, menu: Menu, extensions: frozenset[str], greeting: MenuPrompt | None = None
    ) -> None:
        self.stack: list[Menu] = [menu]
        self.extensions = extensions
        self._prefixes = frozenset(e[:i] for e in extensions for i in range(1, len(e)))
        self.greeting = greeting
        self.failures = 0
        self.digits = ""  # an extension (or a key that may start one) being entered
        self.done = False

    @property
    def menu(self) -> Menu:
        return self.stack[-1]

    # ---------------------------------------------------------------- inputs
    def start(self) -> list[Step]:
        """The call is answered: the greeting, then the menu."""
        steps: list[Step] = [Play(self.greeting)] if self.greeting is not None else []
        return steps + self._prompt()

    def played(self) -> list[Step]:
        """The prompt played to its end without a key: wait for one."""
        if self.done:
            return []
        return [Wait(self.menu.inter_digit_timeout if self.digits else self.menu.timeout)]

    def key(self, key: str) -> list[Step]:
        """A key pressed (during a prompt or while waiting)."""
        if self.done:
            return []
        menu = self.menu
        if self.digits:
            if key == "#":
                return self._dialled()
            self.digits += key
            if len(self.digits) >= menu.max_digits or (
                self.digits in self.extensions and self.digits not in self._prefixes
            ):
                return self._dialled()
            return [Wait(menu.inter_digit_timeout)]
        action = menu.keys.get(key)
        can_dial = menu.dial_by_extension and (key.isascii() and key.isdigit())
        if can_dial and (key in self._prefixes or (action is None and key in self.extensions)):
            if key in self.extensions and key not in self._prefixes and action is None:
                self.digits = key
                return self._dialled()
            self.digits = key
            return [Wait(menu.inter_digit_timeout)]
        if action is None:
            return self._failure(menu.unassigned, "menu-invalid")
        return self._act(action)

    def timeout(self) -> list[Step]:
        """No key within the wait."""
        if self.done:
            return []
        if self.digits:
            return self._dialled()
        return self._failure(self.menu.no_key, "menu-no-input")

    def returned(self) -> list[Step]:
        """The destination did not take the call: back to the menu (a failure)."""
        if self.done:
            return []
        self.failures += 1
        if self.failures >= self.menu.max_failures:
            return self._fallback()
        return [Say("menu-try-again"), *self._prompt()]

    # ---------------------------------------------------------------- what keys do
    def _dialled(self) -> list[Step]:
        digits, self.digits = self.digits, ""
        if digits in self.extensions:
            return self._act(AttendantAction(action=KeyAction.USER, target=digits))
        action = self.menu.keys.get(digits) if len(digits) == 1 else None
        if action is not None:
            return self._act(action)  # a key that might have started an extension
        return self._failure(self.menu.unassigned, "menu-invalid")

    def _failure(self, action: AttendantAction, sorry: str) -> list[Step]:
        self.failures += 1
        if self.failures >= self.menu.max_failures:
            return self._fallback()
        if action.action in (KeyAction.REPEAT, KeyAction.BACK):
            return [Say(sorry), *self._act(action)]
        return self._act(action)

    def _fallback(self) -> list[Step]:
        self.failures = 0
        return self._act(self.menu.fallback)

    def _act(self, action: AttendantAction) -> list[Step]:
        kind = action.action
        if kind is KeyAction.REPEAT:
            return self._prompt()
        if kind is KeyAction.MESSAGE:
            assert action.message is not None
            return [Play(action.message), *self._prompt()]
        if kind is KeyAction.SUBMENU:
            assert action.menu is not None
            self.stack.append(action.menu)
            self.failures = 0
            return self._prompt()
        if kind is KeyAction.BACK:
            if len(self.stack) > 1:
                self.stack.pop()
                self.failures = 0
            return self._prompt()
        if kind is KeyAction.HANG_UP:
            self.done = True
            return [Say("menu-goodbye", barge_in=False), HangUp()]
        return [Connect(action)]

    def _prompt(self) -> list[Step]:
        return [Play(self.menu.prompt)]
