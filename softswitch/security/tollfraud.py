"""The toll-fraud guard: calling permissions and caps on calls to outside numbers.

A stolen password must not run up an international bill. Every call leaving for a trunk
is checked against the permissions and caps of its tenant and of the user responsible for
it (config/calling.py): the caller, or the user whose forward sent it out. Checked twice,
cheaply: at admission on the number as dialled (a refusal is a 403 whose reason phrase and
Reason header name the rule: the caller learns why and no INVITE leaves), and as each
outside leg starts (forwards, simultaneous ring and DID forwards to outside numbers: a
refused leg is not started). Each refusal is a warning event (``toll_fraud_alarm``) and
is counted in the security counters.

Emergency calls (softswitch.security.emergency) pass every check, are never counted
against a cap, and leave by the emergency route; their CDR is marked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import structlog

from config.calling import NumberClass, TenantCalling, UserCalling
from config.models import Tenant, User
from config.routing import TenantRouting
from config.trunks import Trunk
from routing.numbers import clean, normalise_clean
from routing.plan import Target, TargetKind
from softswitch.security.emergency import emergency_route
from softswitch.security.tollfraud_caps import CapTable, UsageFigures
from softswitch.security.tollfraud_classes import Classified, area_code, classify
from storage.cdr import Cdr

__all__ = ["OffNetCall", "Refusal", "TollFraudGuard", "scope_keys"]

log = structlog.get_logger(__name__)

#: The reason phrase of each refusal, by the rule broken.
_PHRASES = {
    "allowed_classes": "{what} Calls Not Permitted",
    "allowed_countries": "Destination Country Not Permitted",
    "blocked_countries": "Destination Country Blocked",
    "max_outbound_calls": "Outbound Call Limit Reached",
    "max_international_per_hour": "International Call Limit Reached",
    "max_minutes_per_day": "Daily Call Minutes Used Up",
}
_CLASS_WORDS = {
    NumberClass.INTERNAL: "Internal",
    NumberClass.LOCAL: "Local",
    NumberClass.NATIONAL: "National",
    NumberClass.MOBILE: "Mobile",
    NumberClass.TOLL_FREE: "Toll-Free",
    NumberClass.SHARED_COST: "Shared-Cost",
    NumberClass.PREMIUM_RATE: "Premium-Rate",
    NumberClass.INTERNATIONAL: "International",
    NumberClass.SATELLITE: "Satellite",
}


class OffNetCall(Protocol):
    """What the guard reads of a call (softswitch.calls.call.Call)."""

    id: str
    tenant: str
    caller_number: str
    dialled: str
    from_trunk: bool
    answered_at: float | None
    ended_at: float | None


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a call may not go out: ``rule`` names the setting (``user 100:
    calling.allowed_classes``), ``phrase`` is the 403's reason phrase."""

    phrase: str
    rule: str
    detail: str
    status: int = 403

    def reason_header(self) -> str:
        """The Reason header (RFC 3326) the refusal carries."""
        text = f"{self.rule}: {self.detail}".replace('"', "'").replace("\\", "/")
        return f'SIP;cause={self.status};text="{text}"'


def scope_keys(tenant: str, user: str | None) -> tuple[tuple[str, ...], ...]:
    """The cap table keys of a call: its tenant's, and its user's when there is one."""
    if user is None:
        return ((tenant,),)
    return ((tenant,), (tenant, user))


@dataclass(frozen=True, slots=True)
class _Numbers:
    """What the checks look up in a routing configuration, as sets."""

    routing: TenantRouting
    extensions: frozenset[str]
    emergency: frozenset[str]
    dids: frozenset[str]


@dataclass(slots=True)
class _OffNet:
    """A call counted against caps: under which keys."""

    keys: tuple[tuple[str, ...], ...]


class TollFraudGuard:
    """Permissions and caps of calls to outside numbers; see the module docstring."""

    def __init__(self, clock: Callable[[], float], counters: dict[str, int]) -> None:
        self.caps = CapTable(clock)
        self.counters = counters  # the security guard's (the metrics read them)
        for key in ("calls_refused_permission", "calls_refused_cap", "emergency_calls"):
            counters.setdefault(key, 0)
        counters.setdefault("alarms", 0)
        self._calls: dict[str, _OffNet] = {}
        # Per routing configuration: (it, its extensions, its emergency numbers, its DIDs).
        self._numbers: dict[int, _Numbers] = {}

    def _known(self, routing: TenantRouting) -> _Numbers:
        """The extensions, emergency numbers and DIDs of ``routing`` (built once per
        configuration object: a call costs set lookups, not set unions or list scans)."""
        hit = self._numbers.get(id(routing))
        if hit is None or hit.routing is not routing:
            if len(self._numbers) >= 256:
                self._numbers.clear()
            hit = self._numbers[id(routing)] = _Numbers(
                routing,
                routing.extensions(),
                routing.emergency(),
                frozenset(d.number for d in routing.dids),
            )
        return hit

    # -- admission: the number as dialled ------------------------------------------------

    def emergency(self, tenant: Tenant, dialled: str) -> bool:
        """Whether a user's call to ``dialled`` is an emergency call (never refused)."""
        return clean(dialled) in self._known(tenant.routing).emergency

    def screen_dial(self, tenant: Tenant, user: User, dialled: str) -> Refusal | None:
        """A user's new call to ``dialled``: the refusal, if its permissions or caps say no
        (emergency numbers are the caller's business to check first: ``emergency``)."""
        text = clean(dialled)
        routing = tenant.routing
        if not text.startswith("+") and text in self._known(routing).extensions:
            return self._internal(tenant, user)
        number = normalise_clean(text, routing.default_region)
        if number is None:
            return None  # not a number: routing answers it (484)
        if number in self._known(routing).dids:
            return self._internal(tenant, user)
        classified = self.classify(tenant, user, number)
        return self._check(tenant, user, classified)

    def _internal(self, tenant: Tenant, user: User) -> Refusal | None:
        if tenant.calling.allowed_classes is None and user.calling.allowed_classes is None:
            return None  # the default classes hold internal calls: the common case, cheaply
        for scope, _, allowed in self._scopes(tenant, user):
            if NumberClass.INTERNAL not in allowed:
                return self._refuse(
                    tenant,
                    user,
                    Refusal(
                        _PHRASES["allowed_classes"].format(what="Internal"),
                        f"{scope}: calling.allowed_classes",
                        "internal calls are not in its allowed classes",
                    ),
                    "permission",
                )
        return None

    # -- outside legs ----------------------------------------------------------------------

    def offnet_route(
        self, call: OffNetCall, target: Target, tenant: Tenant, route: tuple[Trunk, ...]
    ) -> tuple[Trunk, ...]:
        """The trunks ``target`` of ``call`` may go out through: the emergency route for an
        emergency call, ``route`` when permissions and caps allow (the call is then
        counted against the caps), nothing when they do not."""
        if target.kind is TargetKind.EMERGENCY:
            if call.id not in self._calls:
                self._calls[call.id] = _OffNet(())
                self.counters["emergency_calls"] += 1
                log.warning(
                    "emergency_call",
                    tenant=tenant.name,
                    caller=call.caller_number,
                    dialled=target.ref,
                    route=[t.name for t in emergency_route(tenant)],
                )
            return emergency_route(tenant)
        user = self._responsible(call, target, tenant)
        number = normalise_clean(clean(target.ref), tenant.routing.default_region)
        classified = self.classify(tenant, user, number or target.ref)
        refusal = self._check(tenant, user, classified, call_id=call.id)
        if refusal is not None:
            return ()
        keys = scope_keys(tenant.name, user.extension if user is not None else None)
        international = NumberClass.INTERNATIONAL in classified.classes
        for key in keys:
            self.caps.start(key, call.id, call, international)
        if call.id not in self._calls:
            self._calls[call.id] = _OffNet(keys)
        return route

    def _responsible(self, call: OffNetCall, target: Target, tenant: Tenant) -> User | None:
        """The user who sends ``target`` out: the last user who forwarded the call there,
        else the caller when a user (a DID's or disaster plan's forward: the tenant)."""
        for who in reversed(target.diverted_by):
            user = tenant.user_by_extension(who)
            if user is not None:
                return user
        if target.diverted_by or call.from_trunk:
            return None
        return tenant.user_by_extension(call.caller_number)

    # -- the end of a call -----------------------------------------------------------------

    def call_ended(self, call: OffNetCall, tenant: Tenant | None, cdr: Cdr | None) -> None:
        """Release ``call``'s caps (its answered time counts towards the day's minutes);
        mark its CDR when it was an emergency call."""
        if (
            cdr is not None
            and tenant is not None
            and not call.from_trunk
            and self.emergency(tenant, call.dialled)
        ):
            cdr.emergency = True
        counted = self._calls.pop(call.id, None)
        if counted is None:
            return
        answered = call.answered_at
        seconds = 0.0
        if answered is not None and call.ended_at is not None:
            seconds = max(0.0, call.ended_at - answered)
        for key in counted.keys:
            self.caps.end(key, call.id, seconds)

    # -- the checks ------------------------------------------------------------------------

    def classify(self, tenant: Tenant, user: User | None, number: str) -> Classified:
        """The classes of outside number ``number`` called by ``user`` (or the tenant)."""
        home = user.caller_id if user is not None and user.caller_id else None
        if home is None:
            home = next((t.caller_id for t in tenant.outbound_route() if t.caller_id), None)
        return classify(number, tenant.routing.default_region, area_code(home) if home else None)

    def _scopes(
        self, tenant: Tenant, user: User | None
    ) -> list[tuple[str, TenantCalling | UserCalling, frozenset[NumberClass]]]:
        allowed = tenant.calling.allowed()
        scopes: list[tuple[str, TenantCalling | UserCalling, frozenset[NumberClass]]] = [
            (f"tenant {tenant.name}", tenant.calling, allowed)
        ]
        if user is not None:
            scopes.append((f"user {user.extension}", user.calling, user.calling.classes(allowed)))
        return scopes

    def _check(
        self,
        tenant: Tenant,
        user: User | None,
        classified: Classified,
        call_id: str = "",
    ) -> Refusal | None:
        scopes = self._scopes(tenant, user)
        number = classified.number
        for scope, settings, allowed in scopes:
            missing = [c for c in sorted(classified.classes) if c not in allowed]
            if missing:
                what = _CLASS_WORDS[classified.main if classified.main in missing else missing[0]]
                refusal = Refusal(
                    _PHRASES["allowed_classes"].format(what=what),
                    f"{scope}: calling.allowed_classes",
                    f"{number} is {' and '.join(c.value for c in missing)}, not allowed",
                )
                return self._refuse(tenant, user, refusal, "permission", call_id)
            region = classified.region
            if region in settings.blocked_countries:
                refusal = Refusal(
                    _PHRASES["blocked_countries"],
                    f"{scope}: calling.blocked_countries",
                    f"{number} is in {region}",
                )
                return self._refuse(tenant, user, refusal, "permission", call_id)
            if (
                settings.allowed_countries
                and NumberClass.INTERNATIONAL in classified.classes
                and region not in settings.allowed_countries
            ):
                refusal = Refusal(
                    _PHRASES["allowed_countries"],
                    f"{scope}: calling.allowed_countries",
                    f"{number} is in {region or 'no known country'}",
                )
                return self._refuse(tenant, user, refusal, "permission", call_id)
        international = NumberClass.INTERNATIONAL in classified.classes
        keys = scope_keys(tenant.name, user.extension if user is not None else None)
        for (scope, settings, _), key in zip(scopes, keys, strict=True):
            rule = self.caps.over(key, settings, international)
            if rule is not None:
                refusal = Refusal(
                    _PHRASES[rule],
                    f"{scope}: calling.{rule}",
                    f"cap {getattr(settings, rule)} reached calling {number}",
                )
                return self._refuse(tenant, user, refusal, "cap", call_id)
        return None

    def _refuse(
        self, tenant: Tenant, user: User | None, refusal: Refusal, kind: str, call_id: str = ""
    ) -> Refusal:
        self.counters[f"calls_refused_{kind}"] += 1
        self.counters["alarms"] += 1
        log.warning(
            "toll_fraud_alarm",
            tenant=tenant.name,
            user=user.extension if user is not None else None,
            rule=refusal.rule,
            detail=refusal.detail,
            call=call_id or None,
        )
        return refusal

    # -- what the CLI and the store see -----------------------------------------------------

    def figures(self, key: tuple[str, ...]) -> UsageFigures:
        return self.caps.figures(key)
