"""Auto attendants (IVR menus) of a tenant.

An attendant is reached by its extension, its optional direct number (DID) or a forward.
It answers with an intro greeting and a menu chosen by the tenant's time frames: the
``holidays`` menu while the holiday frame is active, the ``business_hours`` menu while the
business-hours frame is, else ``after_hours`` (a menu left out falls back to business
hours). Each menu maps keys 0-9, ``*`` and ``#`` to an action; a caller may also dial an
extension (digits with an inter-digit timeout), and the menu says what happens on no key,
on a key with no action, and after too many failures.

Cross-checks that need the rest of the tenant (extensions not taken, targets that exist,
frames that exist) are done by ``check_attendants``, which the tenant model calls.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from config.locations import Loc
from config.numbers import E164

if TYPE_CHECKING:
    from config.routing import TenantRouting

__all__ = [
    "MENU_KEYS",
    "AttendantAction",
    "AutoAttendant",
    "KeyAction",
    "Menu",
    "MenuPrompt",
    "attendant_problems",
    "routable_attendants",
    "tenant_attendant_problems",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid")

#: The keys a menu may map.
MENU_KEYS = frozenset("0123456789*#")

#: Deepest sub-menu nesting accepted (a bound on configuration size, not a design limit).
MAX_MENU_DEPTH = 16


class KeyAction(StrEnum):
    """What a key (or no key, an unassigned key, too many failures) does."""

    USER = "user"  # ring a user with their answering rules (target: extension)
    CONFERENCE = "conference"  # target: a conference bridge's extension
    QUEUE = "queue"  # target: a queue's extension
    RING_GROUP = "ring_group"  # target: a ring group's extension (it rings its members)
    DIRECTORY = "directory"  # dial by name
    VOICEMAIL = "voicemail"  # leave a message in a mailbox (target: its extension)
    VOICEMAIL_LOGIN = "voicemail_login"  # voicemail management (the caller logs in)
    EXTERNAL = "external"  # an outside number (target: E.164) through the trunks
    ATTENDANT = "attendant"  # another attendant (target: its extension)
    MESSAGE = "message"  # play ``message``, then the menu again
    REPEAT = "repeat"  # the menu prompt again
    SUBMENU = "submenu"  # ``menu``
    BACK = "back"  # the menu above (the top menu: repeat)
    HANG_UP = "hang_up"  # say goodbye and hang up


#: Actions whose ``target`` names something.
TARGETED = frozenset(
    {
        KeyAction.USER,
        KeyAction.CONFERENCE,
        KeyAction.QUEUE,
        KeyAction.RING_GROUP,
        KeyAction.VOICEMAIL,
        KeyAction.EXTERNAL,
        KeyAction.ATTENDANT,
    }
)


class MenuPrompt(BaseModel):
    """What the caller hears: ``text`` spoken by text-to-speech, or ``prompt``, the name
    of a prompt in the tenant's library (an upload, or a recording made by phone)."""

    model_config = _FROZEN
    text: str | None = Field(default=None, min_length=1, max_length=2000)
    prompt: str | None = Field(default=None, min_length=1, max_length=120)

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, data: Any) -> Any:
        return {"text": data} if isinstance(data, str) else data  # `greeting = "Welcome"`

    @model_validator(mode="after")
    def _one(self) -> MenuPrompt:
        if (self.text is None) == (self.prompt is None):
            raise ValueError("give exactly one of text (spoken) or prompt (a library name)")
        return self


class AttendantAction(BaseModel):
    """One action: ``action`` with its ``target``, ``message`` or sub-``menu``."""

    model_config = _FROZEN
    action: KeyAction
    target: str | None = None
    message: MenuPrompt | None = None
    menu: Menu | None = None

    @field_validator("target", mode="before")
    @classmethod
    def _target_text(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)  # TOML `target = 101`
        return value

    @model_validator(mode="after")
    def _shape(self) -> AttendantAction:
        kind = self.action
        if kind in TARGETED:
            if not self.target:
                raise ValueError(f"{kind.value} needs a target")
            if kind is KeyAction.EXTERNAL:
                from config.numbers import NumberError, to_e164

                try:
                    object.__setattr__(self, "target", to_e164(self.target))
                except NumberError as error:
                    raise ValueError(f"target: {error}") from None
            elif not (self.target.isascii() and self.target.isdigit()):
                raise ValueError(f"{kind.value} target must be an extension (digits)")
        elif self.target is not None:
            raise ValueError(f"{kind.value} takes no target")
        if (kind is KeyAction.MESSAGE) != (self.message is not None):
            raise ValueError("message goes with (and only with) action = 'message'")
        if (kind is KeyAction.SUBMENU) != (self.menu is not None):
            raise ValueError("menu goes with (and only with) action = 'submenu'")
        return self

    def describe(self) -> str:
        if self.target:
            return f"{self.action.value} {self.target}"
        return self.action.value


def _repeat() -> AttendantAction:
    return AttendantAction(action=KeyAction.REPEAT)


def _hang_up() -> AttendantAction:
    return AttendantAction(action=KeyAction.HANG_UP)


class Menu(BaseModel):
    """A menu: its prompt, its keys and how it deals with no key and wrong keys.

    ``timeout``: seconds waited for a first key once the prompt has played; then
    ``no_key`` runs. ``inter_digit_timeout``: seconds between the digits of an extension
    (``dial_by_extension``; at most ``max_digits``; ``#`` ends it early). A key without an
    action, or an extension that is no destination, runs ``unassigned``. After
    ``max_failures`` no-keys and wrong keys in a row, ``fallback`` runs.
    """

    model_config = _FROZEN
    prompt: MenuPrompt
    keys: dict[str, AttendantAction] = Field(default_factory=dict)
    dial_by_extension: bool = True
    timeout: float = Field(default=5.0, gt=0, le=60)
    inter_digit_timeout: float = Field(default=3.0, gt=0, le=30)
    max_digits: int = Field(default=5, ge=1, le=15)
    max_failures: int = Field(default=3, ge=1, le=10)
    no_key: AttendantAction = Field(default_factory=_repeat)
    unassigned: AttendantAction = Field(default_factory=_repeat)
    fallback: AttendantAction = Field(default_factory=_hang_up)

    @field_validator("keys", mode="before")
    @classmethod
    def _key_names(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): v for k, v in value.items()}
        return value

    @field_validator("keys")
    @classmethod
    def _known_keys(cls, value: dict[str, AttendantAction]) -> dict[str, AttendantAction]:
        bad = sorted(k for k in value if k not in MENU_KEYS)
        if bad:
            raise ValueError(f"keys must be 0-9, * or #: {', '.join(map(repr, bad))}")
        return value

    @model_validator(mode="after")
    def _fallback_ends(self) -> Menu:
        for name in ("no_key", "unassigned", "fallback"):
            action: AttendantAction = getattr(self, name)
            if action.action is KeyAction.SUBMENU:
                raise ValueError(f"{name} cannot open a sub-menu")
        if self.fallback.action in (KeyAction.REPEAT, KeyAction.BACK, KeyAction.MESSAGE):
            raise ValueError("fallback must end the menu (a destination or hang_up)")
        return self

    def depth(self) -> int:
        """Levels of sub-menus below this menu (0: none)."""
        subs = [a.menu.depth() + 1 for a in self.keys.values() if a.menu is not None]
        return max(subs, default=0)

    def actions(self, loc: Loc = ()) -> list[tuple[Loc, AttendantAction]]:
        """Every action of this menu and its sub-menus, with where it is."""
        found: list[tuple[Loc, AttendantAction]] = []
        for key, action in self.keys.items():
            found.append(((*loc, "keys", key), action))
            if action.menu is not None:
                found += action.menu.actions((*loc, "keys", key, "menu"))
        for name in ("no_key", "unassigned", "fallback"):
            found.append(((*loc, name), getattr(self, name)))
        return found


class AutoAttendant(BaseModel):
    """One auto attendant; see the module docstring."""

    model_config = _FROZEN
    name: str = Field(min_length=1, max_length=64)
    extension: str
    did: E164 | None = None
    greeting: MenuPrompt | None = None  # played once when the call is answered
    business_hours: Menu
    after_hours: Menu | None = None
    holidays: Menu | None = None
    business_hours_frame: str | None = Field(default=None, min_length=1, max_length=80)
    holidays_frame: str | None = Field(default=None, min_length=1, max_length=80)
    language: str | None = None  # of its spoken texts; None: the tenant's
    # Dial by name: first, last or either name matched against the keys entered.
    directory_by: str = Field(default="last", pattern="^(first|last|either)$")

    @field_validator("extension", mode="before")
    @classmethod
    def _extension(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            value = str(value)
        if not isinstance(value, str) or not value.isascii() or not value.isdigit():
            raise ValueError("must be digits")
        if not 1 <= len(value) <= 15:
            raise ValueError("must be 1 to 15 digits")
        return value

    @model_validator(mode="after")
    def _frames(self) -> AutoAttendant:
        if self.after_hours is not None and self.business_hours_frame is None:
            raise ValueError("after_hours needs business_hours_frame (when business hours are)")
        if self.holidays is not None and self.holidays_frame is None:
            raise ValueError("holidays needs holidays_frame")
        for menu in self.menus().values():
            if menu.depth() > MAX_MENU_DEPTH:
                raise ValueError(f"sub-menus nested deeper than {MAX_MENU_DEPTH}")
        return self

    def menus(self) -> dict[str, Menu]:
        """The configured top menus by name."""
        menus = {"business_hours": self.business_hours}
        if self.after_hours is not None:
            menus["after_hours"] = self.after_hours
        if self.holidays is not None:
            menus["holidays"] = self.holidays
        return menus


AttendantAction.model_rebuild()


def attendant_problems(
    attendants: list[AutoAttendant], routing: TenantRouting, taken: set[str]
) -> list[tuple[Loc, str]]:
    """What is wrong with a tenant's attendants given the rest of it: duplicate names,
    extensions or DIDs, an extension already ``taken`` (users, bridges), a target or a
    time frame that does not exist. Locations are relative to the tenant."""
    items: list[tuple[Loc, str]] = []
    seen: dict[tuple[str, str], int] = {}
    frames = {f.name for f in routing.time_frames if f.owner is None}
    for i, attendant in enumerate(attendants):
        for field in ("name", "extension", "did"):
            value = getattr(attendant, field)
            if value is None:
                continue
            first = seen.setdefault((field, str(value)), i)
            if first != i:
                where: Loc = ("auto_attendants", i, field)
                items.append((where, f"duplicate {field} {value!r} (first at {first})"))
        if attendant.extension in taken:
            items.append((("auto_attendants", i, "extension"), "extension already taken"))
        for field in ("business_hours_frame", "holidays_frame"):
            frame = getattr(attendant, field)
            if frame is not None and frame not in frames:
                items.append((("auto_attendants", i, field), f"no domain time frame {frame!r}"))
        for name, menu in attendant.menus().items():
            for loc, action in menu.actions(("auto_attendants", i, name)):
                kind = _CHECKED.get(action.action)
                if kind is not None and action.target is not None:
                    problem = routing.destination_problem(kind, action.target)
                    if problem is not None:
                        items.append((loc, problem))
    return items


#: Actions whose target routing can check.
_CHECKED = {
    KeyAction.USER: "user",
    KeyAction.CONFERENCE: "conference",
    KeyAction.QUEUE: "queue",
    KeyAction.RING_GROUP: "ring_group",
    KeyAction.VOICEMAIL: "voicemail",
    KeyAction.ATTENDANT: "auto_attendant",
}


def routable_attendants(data: Any) -> Any:
    """The tenant's raw data with each attendant's extension in ``routing.auto_attendants``
    and its direct number in ``routing.dids`` (treatment ``auto_attendant``), so that they
    route without being repeated under routing (as conference bridges do). Anything
    malformed is left for validation to name. The derived DIDs come first: numbers added
    to the file later keep their place at the end (``numbers import --apply``)."""
    if not isinstance(data, dict) or not isinstance(data.get("auto_attendants"), list):
        return data
    from config.numbers import Treatment
    from config.routable import add_routable, entry_targets

    extensions, dids = entry_targets(data["auto_attendants"], AutoAttendant)
    return add_routable(
        data, "auto_attendants", extensions, dids, Treatment.AUTO_ATTENDANT, dids_first=True
    )


def tenant_attendant_problems(tenant: Any) -> list[tuple[Loc, str]]:
    """``attendant_problems`` for a validated tenant (``config.models.Tenant``)."""
    taken = {u.extension for u in tenant.users} | {b.extension for b in tenant.conferences}
    return attendant_problems(tenant.auto_attendants, tenant.routing, taken)
