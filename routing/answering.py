"""Answering rules: which rule is active, and the admin operations on rules and frames.

The active rule is the top-most enabled rule whose time frame is enabled and active now; the
default rule applies otherwise. The toggle/reorder operations are pure: they return a new
``TenantRouting`` (validated) and leave the input untouched.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from config.answering import AnsweringRule, UserRouting
from config.routing import TenantRouting
from routing.blocklist import CompiledBlockList
from routing.timeframes import CompiledFrame, LocalClock

#: Remembered (rule, reason) pairs per user before the memo is emptied.
_FOUND_LIMIT = 4096


class RoutingConfigError(ValueError):
    """An admin operation that cannot be applied (unknown user, rule, frame...)."""


@dataclass(frozen=True, slots=True)
class ActiveRule:
    """The rule in force: ``index`` 1-based, 0 for the default rule; ``why`` for explain."""

    index: int
    rule: AnsweringRule
    frame: str | None
    why: str


class CompiledUser:
    """A user's rules with their frames resolved (owned frame first, then the domain's)."""

    __slots__ = ("_by_index", "_default", "_found", "_live", "block", "extension", "rules", "user")

    def __init__(
        self,
        extension: str,
        user: UserRouting,
        frames: dict[tuple[str | None, str], CompiledFrame],
    ) -> None:
        self.extension = extension
        self.user = user
        self.block = CompiledBlockList(user.block, f"user {extension}")
        rules = []
        for i, rule in enumerate(user.rules, 1):
            name = rule.time_frame
            assert name is not None  # the model refuses frameless non-default rules
            frame = frames.get((extension, name)) or frames.get((None, name))
            if frame is None:  # the model checks references; stay total anyway
                continue
            rules.append((i, rule, frame))
        self.rules = tuple(rules)
        self._live = tuple(
            (i, frame.zone, frame.matcher)
            for i, rule, frame in rules
            if rule.enabled and frame.enabled
        )
        self._by_index = {i: (rule, frame) for i, rule, frame in rules}
        # (rule index, matcher reason) -> ActiveRule: reasons come from a finite set fixed by
        # the configuration, and building a frozen dataclass costs more than the lookup.
        self._found: dict[tuple[int, str], ActiveRule] = {}
        self._default = ActiveRule(0, user.default_rule, None, "no rule above is active")

    def active_rule(self, clock: LocalClock, skipped: list[str] | None = None) -> ActiveRule:
        """The rule in force at ``clock``; ``skipped`` collects why earlier rules were not."""
        if skipped is None:
            return self._active_fast(clock)
        for index, rule, frame in self.rules:
            if not rule.enabled:
                if skipped is not None:
                    skipped.append(f"rule {index} ({frame.label}) is disabled")
                continue
            why = frame.match(clock)
            if why is not None:
                return ActiveRule(index, rule, frame.name, f"time frame {frame.label}: {why}")
            if skipped is not None:
                state = "switched off" if not frame.enabled else "not active now"
                skipped.append(f"rule {index}: time frame {frame.label} {state}")
        return self._default

    def _active_fast(self, clock: LocalClock) -> ActiveRule:
        # The hot path: frame lookups inlined, rules whose rule or frame is off pre-filtered.
        zones = clock.zones
        for index, zone, matcher in self._live:
            local = zones.get(zone)
            why = matcher(local if local is not None else clock.local(zone))
            if why is not None:
                found = self._found.get((index, why))
                if found is None:
                    if len(self._found) >= _FOUND_LIMIT:  # bound it whatever the matchers say
                        self._found.clear()
                    rule, frame = self._by_index[index]
                    found = self._found[index, why] = ActiveRule(
                        index, rule, frame.name, f"time frame {frame.label}: {why}"
                    )
                return found
        return self._default


# -- admin operations (pure) ------------------------------------------------------------------


def _replace_user(routing: TenantRouting, extension: str, user: UserRouting) -> TenantRouting:
    users = dict(routing.users)
    users[extension] = user
    return TenantRouting.model_validate({**_shallow(routing), "users": users})


def _shallow(routing: TenantRouting) -> dict[str, object]:
    return {name: getattr(routing, name) for name in TenantRouting.model_fields}


def _user(routing: TenantRouting, extension: str) -> UserRouting:
    user = routing.users.get(extension)
    if user is None:
        raise RoutingConfigError(f"no user with extension {extension!r}")
    return user


def set_time_frame_enabled(
    routing: TenantRouting, name: str, enabled: bool, owner: str | None = None
) -> TenantRouting:
    """Switch a time frame on or off (``owner`` None = the domain frame)."""
    frames = list(routing.time_frames)
    for i, frame in enumerate(frames):
        if frame.name == name and frame.owner == owner:
            frames[i] = frame.model_copy(update={"enabled": enabled})
            return TenantRouting.model_validate({**_shallow(routing), "time_frames": tuple(frames)})
    scope = "domain" if owner is None else f"user {owner}"
    raise RoutingConfigError(f"no time frame {name!r} for {scope}")


def bulk_toggle(
    routing: TenantRouting, frame: str, extensions: Iterable[str], enabled: bool
) -> TenantRouting:
    """Enable or disable, for each user, every answering rule that uses ``frame``.

    A user without such a rule is an error (named), and nothing is changed.
    """
    users = dict(routing.users)
    for ext in extensions:
        user = _user(routing, ext)
        rules = list(user.rules)
        hits = [i for i, r in enumerate(rules) if r.time_frame == frame]
        if not hits:
            raise RoutingConfigError(f"user {ext} has no answering rule using time frame {frame!r}")
        for i in hits:
            rules[i] = rules[i].model_copy(update={"enabled": enabled})
        users[ext] = user.model_copy(update={"rules": tuple(rules)})
    return TenantRouting.model_validate({**_shallow(routing), "users": users})


def move_rule(routing: TenantRouting, extension: str, index: int, to: int) -> TenantRouting:
    """Reprioritise: move rule ``index`` to position ``to`` (both 1-based)."""
    user = _user(routing, extension)
    rules = list(user.rules)
    if not (1 <= index <= len(rules) and 1 <= to <= len(rules)):
        raise RoutingConfigError(f"user {extension} has rules 1..{len(rules)}")
    rules.insert(to - 1, rules.pop(index - 1))
    return _replace_user(routing, extension, user.model_copy(update={"rules": tuple(rules)}))


def set_rule_enabled(
    routing: TenantRouting, extension: str, index: int, enabled: bool
) -> TenantRouting:
    """Enable or disable one rule (1-based)."""
    user = _user(routing, extension)
    rules = list(user.rules)
    if not 1 <= index <= len(rules):
        raise RoutingConfigError(f"user {extension} has rules 1..{len(rules)}")
    rules[index - 1] = rules[index - 1].model_copy(update={"enabled": enabled})
    return _replace_user(routing, extension, user.model_copy(update={"rules": tuple(rules)}))
