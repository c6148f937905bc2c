"""The routing engine: ``plan_call(config, facts) -> Callflow``, pure and synchronous.

Order of decisions for a call:
0. a user's call to an emergency number (911, 112, 999, the tenant's ``emergency_numbers``)
   goes to the emergency route, before anything else (no plan, list or rule may stop it);
1. an enabled disaster plan holding the dialled number forwards it, before anything else;
2. from inside, a monitor code and extension (``*51`` + ``101``) makes a monitor node;
   else the dialled number's DID treatment (or the dialled extension; or, from inside, an
   outside number);
3. the tenant's and the first user's block/allow lists and spam treatment;
4. the user's active answering rule: do-not-disturb, forward always / on active / when
   offline, else a ring node (simultaneous ring) whose busy / no-answer / unreachable /
   offline branches are the rule's forwards, ending in voicemail or a 480 hang-up.

Forwarding to a user follows that user's rules, recursively; a forward back to a user already
on the path (A -> B -> A) or beyond ``max_forward_depth`` is cut and the branch ends in the
forwarding user's voicemail (or 480). A per-call budget on rule expansions keeps any
configuration's callflow small.

Per-configuration structures (compiled frames, holiday sets per year, DID and disaster maps)
are built once and cached by configuration object.

Over 600 lines because it is one planner: the ordered steps (disaster plans, DID
treatment, block lists, answering rules, forwarding chains) share the planner's state.
"""

from __future__ import annotations

import weakref
from typing import Any

from config.answering import Destination, DndMode, ForwardKind, SimRing
from config.numbers import Treatment
from config.park import FIRST_FREE
from config.ringgroups import MemberKind, RingGroup, RingStrategy
from config.routing import TenantRouting
from routing.answering import ActiveRule, CompiledUser
from routing.blocklist import CompiledBlockList, Screening, Verdict, screen_caller
from routing.facts import CallFacts
from routing.numbers import clean, has_digit, is_anonymous, is_plain_e164, normalise_clean
from routing.plan import (
    MONITOR_MODES,
    NO_BRANCHES,
    NOT_SERVED,
    Application,
    Branches,
    Callflow,
    Decision,
    DiversionReason,
    Node,
    Ring,
    Target,
    TargetKind,
)
from routing.timeframes import CompiledFrame, LocalClock, to_timestamp

_tuple_new = tuple.__new__

#: Heads pool keys of whole voicemail ends (other keys start with a kind or a string).
_VOICEMAIL_END = object()

#: Most answering-rule expansions in one plan (each forward to a user is one).
MAX_EXPANSIONS = 32


class CompiledRouting:
    """A TenantRouting prepared for fast planning. Build with ``compile_routing``."""

    __slots__ = (
        "__weakref__",
        "auto_attendants",
        "conferences",
        "config",
        "did_notes",
        "dids",
        "disaster",
        "emergency",
        "feature_codes",
        "frames",
        "mailboxes",
        "monitor_codes",
        "pool",
        "queues",
        "region",
        "ring_groups",
        "tenant_block",
        "users",
    )

    def __init__(self, config: TenantRouting, previous: CompiledRouting | None = None) -> None:
        self.config = config
        self.region = config.default_region
        self.frames: dict[tuple[str | None, str], CompiledFrame]
        self.users: dict[str, CompiledUser]
        if previous is not None and previous.config.time_frames == config.time_frames:
            # The same frames: a user whose rules are the very same model compiles to what
            # `previous` has (a provisioning change re-validates one user or number, and
            # compiling 10,000 users took some 150 ms on the first call after it).
            self.frames = previous.frames
            before, compiled = previous.config.users, previous.users
            self.users = {
                ext: (
                    compiled[ext]
                    if before.get(ext) is user and ext in compiled
                    else CompiledUser(ext, user, self.frames)
                )
                for ext, user in config.users.items()
            }
        else:
            self.frames = {(f.owner, f.name): CompiledFrame(f) for f in config.time_frames}
            self.users = {
                ext: CompiledUser(ext, user, self.frames) for ext, user in config.users.items()
            }
        self.dids = {d.number: d for d in config.dids}
        # The decision note for each DID is fixed by the configuration: format it once.
        self.did_notes = {
            d.number: f"{d.number}: treatment {d.treatment.value} {d.destination}".rstrip()
            + (f", caller-ID prefix {d.caller_id_prefix!r}" if d.caller_id_prefix else "")
            for d in config.dids
        }
        # The model refuses a number in two enabled plans, so this map is unambiguous.
        self.disaster = {
            n.number: (plan.name, n.forward_to)
            for plan in config.disaster_plans
            if plan.enabled
            for n in plan.numbers
        }
        self.emergency = config.emergency()
        self.tenant_block = CompiledBlockList(config.block, "tenant")
        self.queues = config.queues
        self.auto_attendants = config.auto_attendants
        self.conferences = config.conferences
        self.mailboxes = config.mailboxes
        self.ring_groups = {g.extension: g for g in config.ring_groups}
        codes = config.monitor_codes
        self.monitor_codes = tuple((getattr(codes, mode), mode) for mode in MONITOR_MODES)
        self.feature_codes = dict(config.feature_codes)
        # Plan nodes are immutable, so identical ones are shared between calls: building a
        # frozen node costs more than looking it up. Keys hold ids of pooled children only.
        self.pool: dict[tuple[object, ...], Target | Node] = {}


_CACHE: dict[int, tuple[weakref.ref[TenantRouting], CompiledRouting]] = {}
_CACHE_LIMIT = 256


def compile_routing(config: TenantRouting | CompiledRouting) -> CompiledRouting:
    """The compiled form of ``config``, built once per configuration object."""
    if isinstance(config, CompiledRouting):
        return config
    key = id(config)
    hit = _CACHE.get(key)
    if hit is not None and hit[0]() is config:
        return hit[1]
    compiled = CompiledRouting(config, _predecessor(config))
    if len(_CACHE) >= _CACHE_LIMIT:
        _CACHE.clear()

    def forget(ref: weakref.ref[TenantRouting], key: int = key, cache: Any = _CACHE) -> None:
        entry = cache.get(key)
        if entry is not None and entry[0] is ref:
            del cache[key]

    _CACHE[key] = (weakref.ref(config, forget), compiled)
    return compiled


def _predecessor(config: TenantRouting) -> CompiledRouting | None:
    """The compiled configuration `config` most likely replaces (the same users' rules: a
    provisioning change's copy), else the newest one; `CompiledRouting` reuses only what
    is provably the same, so any answer is correct and a good one saves the work."""
    newest: CompiledRouting | None = None
    for ref, compiled in reversed(_CACHE.values()):
        if ref() is None:
            continue
        if compiled.config.users is config.users:
            return compiled
        if newest is None:
            newest = compiled
    return newest


def plan_call(config: TenantRouting | CompiledRouting, facts: CallFacts) -> Callflow:
    """Build the callflow tree of a call. Raises ValueError only for an unusable ``facts.at``."""
    return _Planner(compile_routing(config), facts, verbose=False).plan()


def plan_with_details(config: TenantRouting | CompiledRouting, facts: CallFacts) -> Callflow:
    """Like ``plan_call`` but the decision path also says why each skipped rule was skipped."""
    return _Planner(compile_routing(config), facts, verbose=True).plan()


def ring_group_node(
    config: TenantRouting | CompiledRouting, facts: CallFacts, extension: str
) -> Node | None:
    """The ring nodes of ring group ``extension`` (its members, then its final
    destination) that its application connects the answered caller to; None: no such
    group."""
    cr = compile_routing(config)
    group = cr.ring_groups.get(extension)
    if group is None:
        return None
    planner = _Planner(cr, facts, verbose=False)
    planner.announced = True
    return planner._ring_group(group, (extension,))


#: Pooled plan nodes per configuration before the pool is emptied.
POOL_LIMIT = 20_000


class _Planner:
    """One planning run: the call's clock, facts and decision path."""

    __slots__ = (
        "announced",
        "caller",
        "clock",
        "cr",
        "decisions",
        "expansions",
        "facts",
        "memo",
        "prefix",
        "verbose",
    )

    def __init__(self, cr: CompiledRouting, facts: CallFacts, verbose: bool) -> None:
        self.cr = cr
        self.facts = facts
        self.verbose = verbose
        self.clock = LocalClock(to_timestamp(facts.at))
        self.decisions: list[Decision] = []
        self.expansions = 0
        self.memo: dict[tuple[object, ...], Node] = {}
        self.prefix = ""
        self.caller: tuple[str | None, bool] | None = None
        self.announced = False  # ring groups ring their members (their application runs)

    def note(self, stage: str, detail: str) -> None:
        # tuple.__new__ skips Decision's generated __new__; a plan notes several per call.
        self.decisions.append(_tuple_new(Decision, (stage, detail)))

    # -- pooled node constructors --------------------------------------------------------

    def _target(
        self,
        kind: TargetKind,
        ref: str = "",
        *,
        delay: int = 0,
        timeout: int | None = None,
        answer_confirmation: bool = False,
        screening: bool = False,
        all_devices: bool = True,
        status: int = 0,
        reason: str = "",
        diverted_by: tuple[str, ...] = (),
        diversion_reasons: tuple[DiversionReason, ...] = (),
    ) -> Target:
        key = (
            kind,
            ref,
            delay,
            timeout,
            answer_confirmation,
            screening,
            all_devices,
            status,
            reason,
            diverted_by,
            diversion_reasons,
        )
        pool = self.cr.pool
        hit = pool.get(key)
        if hit is None:
            hit = pool[key] = Target(
                kind,
                ref,
                delay=delay,
                timeout=timeout,
                answer_confirmation=answer_confirmation,
                screening=screening,
                all_devices=all_devices,
                status=status,
                reason=reason,
                diverted_by=diverted_by,
                diversion_reasons=diversion_reasons,
            )
        return hit  # type: ignore[return-value]

    def _application(self, target: Target, label: str = "") -> Application:
        unserved = NOT_SERVED.get(target.kind)
        if unserved is not None:
            self.note("application", f"{target.kind.value} has no application yet: 480 {unserved}")
        key = ("application", id(target), label)
        pool = self.cr.pool
        hit = pool.get(key)
        if hit is None:
            hit = pool[key] = Application(target, label)
        return hit  # type: ignore[return-value]

    def _hang_up(self, status: int, reason: str, label: str = "") -> Application:
        target = self._target(TargetKind.HANG_UP, status=status, reason=reason)
        return self._application(target, label)

    def _ring(
        self,
        targets: tuple[Target, ...],
        timeout: int | None = None,
        *,
        busy: Node | None = None,
        no_answer: Node | None = None,
        label: str = "",
    ) -> Ring:
        # Unreachable and offline share the no-answer fallback: the caller cannot tell apart
        # a phone that did not answer from one that could not be reached.
        key = ("ring", *map(id, targets), timeout, id(busy), id(no_answer), label)
        pool = self.cr.pool
        hit = pool.get(key)
        if hit is None:
            branches = (
                Branches(busy, no_answer, no_answer, no_answer)
                if busy is not None or no_answer is not None
                else NO_BRANCHES
            )
            hit = pool[key] = Ring(targets, timeout, branches, label)
        return hit  # type: ignore[return-value]

    # -- entry ---------------------------------------------------------------------------

    def plan(self) -> Callflow:
        if len(self.cr.pool) > POOL_LIMIT:
            self.cr.pool.clear()
        root = self._entry()
        return Callflow(root, self.prefix, tuple(self.decisions))

    def _entry(self) -> Node:
        cr = self.cr
        dialled = clean(self.facts.dialled)
        if not dialled:
            self.note("dial", "empty dialled number")
            return self._hang_up(484, "Address Incomplete")
        if dialled in cr.emergency and not self.facts.from_trunk:
            self.note(
                "emergency",
                f"{dialled} is an emergency number: the emergency route, before disaster "
                "plans, block lists, answering rules, limits and caps",
            )
            return self._ring((self._target(TargetKind.EMERGENCY, dialled),), label="emergency")
        if not self.facts.from_trunk:
            node = self._monitor(dialled) or self._feature(dialled)
            if node is not None:
                return node
        if not dialled.startswith("+"):
            node = self._dial_extension(dialled)
            if node is not None:
                return node
        number = normalise_clean(dialled, cr.region)
        if number is None:
            self.note("dial", f"{dialled!r} is neither an extension nor a valid number")
            return self._hang_up(404 if self.facts.from_trunk else 484, "Not Found")
        hit = cr.disaster.get(number)
        if hit is not None:
            plan_name, forward_to = hit
            self.note("disaster", f"plan {plan_name!r} is enabled: {number} -> {forward_to}")
            return self._ring(
                (self._target(TargetKind.EXTERNAL, forward_to, diverted_by=(number,)),),
                label=f"disaster plan {plan_name!r}",
            )
        did = cr.dids.get(number)
        if did is not None:
            return self._did(number)
        if self.facts.from_trunk:
            self.note("did", f"{number} is not in the number inventory")
            return self._hang_up(404, "Not Found")
        self.note("dial", f"{number} is an outside number: outbound route")
        return self._ring((self._target(TargetKind.EXTERNAL, number),), label="outbound")

    def _monitor(self, dialled: str) -> Node | None:
        """A monitor code followed by an extension: the supervisor joins that extension's
        live call (whether the caller may is the monitor application's to say)."""
        for code, mode in self.cr.monitor_codes:
            agent = dialled[len(code) :]
            if dialled.startswith(code) and agent.isascii() and agent.isdigit():
                self.note("dial", f"{code} is the {mode} monitor code: the call of {agent}")
                return Application(Target(TargetKind.MONITOR, agent, mode=mode))
        return None

    def _feature(self, dialled: str) -> Node | None:
        """A feature code of one of the tenant's applications (``*97``: my voicemail)."""
        code = self.cr.feature_codes.get(dialled)
        if code is None:
            return None
        ref = code.ref
        if code.own:
            caller = self.facts.caller
            if caller is None or caller not in self.cr.users:
                self.note("dial", f"{dialled} is a feature code for users' own phones only")
                return None
            ref = caller
        kind = TargetKind(code.kind)
        if kind is TargetKind.PARK:
            self.note("dial", _park_note(dialled, ref))
        else:
            self.note(
                "dial", f"{dialled} is the feature code of {kind.value.replace('_', ' ')} {ref}"
            )
        return Application(Target(kind, ref))

    def _dial_extension(self, ext: str) -> Node | None:
        cr = self.cr
        if ext in cr.users:
            self.note("dial", f"extension {ext} is a user")
            return self._first_user(ext)
        group = cr.ring_groups.get(ext)
        if group is not None:
            self.note("dial", f"extension {ext} is ring group {group.name!r}")
            verdict = self._screen(())
            if verdict.action is Screening.REJECT:
                return self._hang_up(verdict.status, "Decline", "blocked")
            return self._ring_group(group, (ext,))
        kind = _service_kind(cr, ext)
        if kind is None:
            return None
        self.note("dial", f"extension {ext} is a {kind.value.replace('_', ' ')}")
        verdict = self._screen(())
        if verdict.action is Screening.REJECT:
            return self._hang_up(verdict.status, "Decline", "blocked")
        return self._application(self._target(kind, ext))

    def _ring_group(
        self,
        group: RingGroup,
        chain: tuple[str, ...],
        reasons: tuple[DiversionReason, ...] = (),
    ) -> Node:
        """Ring nodes for ``group``: one node ringing every member (simultaneous) or one
        node per member chained by their no-answer/busy branches (sequence), ending in the
        group's final destination. Members are left out when they cannot ring: a user with
        no registered device, or on a call when the group skips busy members. ``chain``
        ends with the group's extension (who forwarded the call here, for loops and
        Diversion), ``reasons`` says why each before it forwarded."""
        self.expansions += 1
        if len(chain) == 1:
            # The prefix of the group dialled; a group reached by forwarding keeps the name.
            self.prefix += group.caller_id_prefix
        label = f"ring group {group.name!r}"
        if group.answered_first() and not self.announced:
            self.note("ring group", f"{label}: answered first (announcement, music)")
            return self._application(self._target(TargetKind.RING_GROUP, group.extension))
        if group.final is not None:
            final = self._dest(
                group.final, chain, "nobody answered", (*reasons, DiversionReason.NO_ANSWER)
            )
        else:
            final = self._hang_up(480, "Temporarily Unavailable", f"{label}: nobody answered")
        members: list[Target] = []
        for member in group.members:
            if member.kind is MemberKind.NUMBER:
                kind = TargetKind.EXTERNAL
            else:
                kind = TargetKind.USER_DEVICES
                if group.skip_busy and member.target in self.facts.busy:
                    self.note("ring group", f"{label}: {member.target} is on a call, skipped")
                    continue
                if self.facts.registered.get(member.target, 0) <= 0:
                    self.note("ring group", f"{label}: {member.target} has no registered device")
                    continue
            members.append(
                self._target(
                    kind,
                    member.target,
                    delay=member.delay,
                    timeout=member.delay + member.timeout,
                    diverted_by=chain,
                    diversion_reasons=(*reasons, DiversionReason.UNCONDITIONAL),
                )
            )
        if not members:
            self.note("ring group", f"{label}: no member can ring")
            return final
        if group.strategy is RingStrategy.SIMULTANEOUS:
            self.note("ring group", f"{label}: {len(members)} members at once")
            timeout = max(t.timeout or 0 for t in members)
            return self._ring(tuple(members), timeout, busy=final, no_answer=final, label=label)
        self.note("ring group", f"{label}: {len(members)} members in sequence")
        node = final
        for n, target in reversed(list(enumerate(members, 1))):
            node = self._ring(
                (target,), target.timeout, busy=node, no_answer=node, label=f"{label} member {n}"
            )
        return node

    def _did(self, number: str) -> Node:
        did = self.cr.dids[number]
        dest = did.destination
        self.note("did", self.cr.did_notes[number])
        self.prefix = did.caller_id_prefix
        if did.treatment is Treatment.USER:
            if dest not in self.cr.users:
                self.note("did", f"user {dest} does not exist")
                return self._hang_up(404, "Not Found")
            return self._first_user(dest)
        verdict = self._screen(())
        if verdict.action is Screening.REJECT:
            return self._hang_up(verdict.status, "Decline", "blocked")
        if did.treatment is Treatment.RING_GROUP:
            group = self.cr.ring_groups.get(dest)
            if group is None:
                self.note("did", f"ring group {dest} does not exist")
                return self._hang_up(404, "Not Found")
            return self._ring_group(group, (dest,))
        if did.treatment is Treatment.OFFNET:
            return self._ring(
                (self._target(TargetKind.EXTERNAL, dest, diverted_by=(number,)),),
                label=f"DID {number}",
            )
        return self._application(
            self._target(_TREATMENT_TARGET[did.treatment], dest), f"DID {number}"
        )

    # -- block lists ---------------------------------------------------------------------

    def _caller_key(self) -> tuple[str | None, bool]:
        if self.caller is None:
            self.caller = self._read_caller()
        return self.caller

    def _read_caller(self) -> tuple[str | None, bool]:
        caller = self.facts.caller
        if caller is not None and is_plain_e164(caller):
            return caller, False  # a carrier-style caller: the path below returns it as is
        if is_anonymous(caller):
            return None, True
        assert caller is not None
        text = clean(caller)
        if text in self.cr.users or not has_digit(text):
            return text, False
        return normalise_clean(text, self.cr.region) or text, False

    def _screen(self, user_lists: tuple[CompiledBlockList, ...]) -> Verdict:
        caller, anonymous = self._caller_key()
        verdict = screen_caller(
            caller, anonymous, self.facts.spam, (self.cr.tenant_block, *user_lists)
        )
        if verdict.action is not Screening.RING or self.verbose or self.facts.spam:
            self.note(
                "screen", f"{caller or 'anonymous'}: {verdict.action.value} ({verdict.reason})"
            )
        return verdict

    def _first_user(self, ext: str) -> Node:
        user = self.cr.users[ext]
        verdict = self._screen((user.block,))
        if verdict.action is Screening.REJECT:
            return self._hang_up(
                verdict.status,
                "Decline" if verdict.status == 603 else "Anonymity Disallowed",
                "blocked",
            )
        if verdict.action is Screening.VOICEMAIL:
            return self._voicemail_end(ext, (), "spam")
        return self._user(ext, (ext,), screening=verdict.action is Screening.SCREEN)

    # -- users and rules -----------------------------------------------------------------

    def _user(
        self,
        ext: str,
        chain: tuple[str, ...],
        screening: bool = False,
        reasons: tuple[DiversionReason, ...] = (),
    ) -> Node:
        """The node for a call reaching user ``ext``; ``chain`` ends with ``ext`` and
        ``reasons`` says why each user before ``ext`` forwarded."""
        self.expansions += 1
        cu = self.cr.users[ext]
        user = cu.user
        if self.verbose:
            skipped: list[str] = []
            active: ActiveRule = cu.active_rule(self.clock, skipped)
            for line in skipped:
                self.note("rule", f"user {ext}: {line}")
        else:
            active = cu.active_rule(self.clock)
        rule = active.rule
        name = "default rule" if active.index == 0 else f"rule {active.index}"
        self.note("rule", f"user {ext}: {name} active ({active.why})")
        label = f"user {ext} {name}"
        screening = screening or rule.screening
        diverted = chain[:-1]
        fw = rule.forward

        if rule.dnd is DndMode.VOICEMAIL:
            self.note("rule", f"user {ext}: do not disturb -> voicemail")
            return self._voicemail_end(ext, diverted, "do not disturb", reasons)
        if rule.dnd is DndMode.BUSY:
            self.note("rule", f"user {ext}: do not disturb -> busy")
            if fw.when_busy is not None:
                dnd = DiversionReason.DO_NOT_DISTURB
                return self._dest(fw.when_busy, chain, "busy (do not disturb)", (*reasons, dnd))
            return self._hang_up(486, "Busy Here", f"{label}: do not disturb")
        if fw.always is not None:
            return self._dest(
                fw.always, chain, "forward always", (*reasons, DiversionReason.UNCONDITIONAL)
            )
        if fw.on_active is not None and ext in self.facts.busy:
            self.note("rule", f"user {ext} is on a call")
            return self._dest(
                fw.on_active, chain, "forward on active", (*reasons, DiversionReason.BUSY)
            )
        registered = self.facts.registered.get(ext, 0)
        if registered <= 0 and fw.when_offline is not None:
            self.note("rule", f"user {ext} has no registered device")
            return self._dest(
                fw.when_offline,
                chain,
                "forward when offline",
                (*reasons, DiversionReason.UNAVAILABLE),
            )

        ring_time = user.ring_time
        targets = self._ring_targets(
            ext, rule.simring, registered, ring_time, screening, diverted, reasons
        )

        if not targets:
            self.note("rule", f"user {ext}: nothing to ring (no registered device)")
            return self._unanswered(
                fw.when_unanswered, ext, chain, reasons, DiversionReason.UNAVAILABLE
            )
        no_answer = self._unanswered(
            fw.when_unanswered, ext, chain, reasons, DiversionReason.NO_ANSWER
        )
        busy = (
            self._dest(fw.when_busy, chain, "forward when busy", (*reasons, DiversionReason.BUSY))
            if fw.when_busy is not None
            else self._voicemail_end(ext, diverted, "busy", reasons)
        )
        return self._ring(tuple(targets), ring_time, busy=busy, no_answer=no_answer, label=label)

    def _unanswered(
        self,
        dest: Destination | None,
        ext: str,
        chain: tuple[str, ...],
        reasons: tuple[DiversionReason, ...],
        reason: DiversionReason,
    ) -> Node:
        """Where a call ``ext`` does not answer goes: the forward when unanswered, else
        voicemail (a method, not a closure: compiled, a closure's environment would keep
        the call's planner in a reference cycle)."""
        if dest is not None:
            return self._dest(dest, chain, "forward when unanswered", (*reasons, reason))
        return self._voicemail_end(ext, chain[:-1], "no answer", reasons)

    def _ring_targets(
        self,
        ext: str,
        sim: SimRing | None,
        registered: int,
        ring_time: int | None,
        screening: bool,
        diverted: tuple[str, ...],
        reasons: tuple[DiversionReason, ...],
    ) -> list[Target]:
        # A sim-ring leg of another user or number is a forward by ``ext`` that always happens.
        extra_reasons = (*reasons, DiversionReason.UNCONDITIONAL)
        targets: list[Target] = []
        if sim is None:
            if registered > 0:
                targets.append(
                    self._target(
                        TargetKind.USER_DEVICES,
                        ext,
                        all_devices=False,
                        screening=screening,
                        diverted_by=diverted,
                        diversion_reasons=reasons,
                    )
                )
            return targets
        if registered > 0 and (sim.include_extension or sim.ring_all_devices):
            targets.append(
                self._target(
                    TargetKind.USER_DEVICES,
                    ext,
                    all_devices=sim.ring_all_devices,
                    screening=screening,
                    diverted_by=diverted,
                    diversion_reasons=reasons,
                )
            )
        for leg in sim.extra:
            if ring_time is not None and leg.delay >= ring_time:
                self.note("simring", f"{leg.target} skipped: delay {leg.delay}s >= ring time")
                continue
            if leg.kind == "extension":
                if leg.target == ext or self.facts.registered.get(leg.target, 0) <= 0:
                    if self.verbose:
                        self.note("simring", f"extension {leg.target} skipped: nothing to ring")
                    continue
                targets.append(
                    self._target(
                        TargetKind.USER_DEVICES,
                        leg.target,
                        delay=leg.delay,
                        screening=screening,
                        diverted_by=(*diverted, ext),
                        diversion_reasons=extra_reasons,
                    )
                )
            else:
                targets.append(
                    self._target(
                        TargetKind.EXTERNAL,
                        leg.target,
                        delay=leg.delay,
                        answer_confirmation=sim.answer_confirmation,
                        screening=screening,
                        diverted_by=(*diverted, ext),
                        diversion_reasons=extra_reasons,
                    )
                )
        return targets

    def _voicemail_end(
        self,
        ext: str,
        diverted: tuple[str, ...],
        why: str,
        reasons: tuple[DiversionReason, ...] = (),
    ) -> Node:
        # A pure function of its arguments and the configuration: pooled whole, as a plan
        # ends in several of these.
        key = (_VOICEMAIL_END, ext, diverted, why, reasons)
        hit = self.cr.pool.get(key)
        if hit is None:
            hit = self.cr.pool[key] = self._make_voicemail_end(ext, diverted, why, reasons)
        return hit  # type: ignore[return-value]

    def _make_voicemail_end(
        self, ext: str, diverted: tuple[str, ...], why: str, reasons: tuple[DiversionReason, ...]
    ) -> Node:
        cu = self.cr.users.get(ext)
        if (cu is not None and cu.user.voicemail) or ext in self.cr.mailboxes:
            target = self._target(
                TargetKind.VOICEMAIL, ext, diverted_by=diverted, diversion_reasons=reasons
            )
            return self._application(target, f"{why}: voicemail")
        return self._hang_up(480, "Temporarily Unavailable", f"{why}: user {ext} has no voicemail")

    def _dest(
        self,
        dest: Destination,
        chain: tuple[str, ...],
        why: str,
        reasons: tuple[DiversionReason, ...],
    ) -> Node:
        """Where user ``chain[-1]`` forwards to; ``reasons`` says why each of ``chain``
        forwarded (the last one: this forward)."""
        key = (dest.kind, dest.target, chain, reasons)
        node = self.memo.get(key)
        if node is None:
            node = self.memo[key] = self._make_dest(dest, chain, why, reasons)
        return node

    def _make_dest(
        self,
        dest: Destination,
        chain: tuple[str, ...],
        why: str,
        reasons: tuple[DiversionReason, ...],
    ) -> Node:
        ext = chain[-1]
        kind = dest.kind
        target = dest.target
        who = "ring group" if ext in self.cr.ring_groups else "user"
        self.note("forward", f"{who} {ext}: {why} -> {kind.value} {target}")
        if kind is ForwardKind.USER:
            if target in chain:
                path = " > ".join((*chain, target))
                self.note("loop", f"forwarding loop {path} cut; falls through to user {ext}'s end")
                return self._voicemail_end(ext, chain[:-1], "forwarding loop", reasons[:-1])
            if len(chain) >= self.cr.config.max_forward_depth or self.expansions >= MAX_EXPANSIONS:
                self.note("loop", f"forwarding chain from {chain[0]} too long; cut at user {ext}")
                return self._voicemail_end(ext, chain[:-1], "forwarding too deep", reasons[:-1])
            if target not in self.cr.users:
                return self._hang_up(404, "Not Found", f"unknown user {target}")
            return self._user(target, (*chain, target), reasons=reasons)
        if kind is ForwardKind.PHONE:
            cu = self.cr.users.get(target)
            if cu is None:
                return self._hang_up(404, "Not Found", f"unknown user {target}")
            if self.facts.registered.get(target, 0) <= 0:
                self.note("forward", f"phone of {target} has no registered device")
                return self._hang_up(480, "Temporarily Unavailable", f"phone {target} offline")
            return self._ring(
                (
                    self._target(
                        TargetKind.USER_DEVICES,
                        target,
                        diverted_by=chain,
                        diversion_reasons=reasons,
                    ),
                ),
                cu.user.ring_time,
                label=f"phone {target}",
            )
        if kind is ForwardKind.RING_GROUP:
            group = self.cr.ring_groups.get(target)
            if group is None:
                return self._hang_up(404, "Not Found", f"unknown ring group {target}")
            if target in chain or self.expansions >= MAX_EXPANSIONS:
                path = " > ".join((*chain, target))
                self.note("loop", f"forwarding loop {path} cut at ring group {target}")
                return self._hang_up(480, "Temporarily Unavailable", "forwarding loop")
            return self._ring_group(group, (*chain, target), reasons)
        if kind is ForwardKind.OFFNET:
            return self._ring(
                (
                    self._target(
                        TargetKind.EXTERNAL, target, diverted_by=chain, diversion_reasons=reasons
                    ),
                ),
                label=why,
            )
        served = self._target(
            _FORWARD_TARGET[kind], target, diverted_by=chain, diversion_reasons=reasons
        )
        return self._application(served, why)


_TREATMENT_TARGET = {
    Treatment.QUEUE: TargetKind.QUEUE,
    Treatment.CONFERENCE: TargetKind.CONFERENCE,
    Treatment.VOICEMAIL: TargetKind.VOICEMAIL,
    Treatment.AUTO_ATTENDANT: TargetKind.AUTO_ATTENDANT,
    Treatment.FAX: TargetKind.FAX,
}

_FORWARD_TARGET = {
    ForwardKind.VOICEMAIL: TargetKind.VOICEMAIL,
    ForwardKind.QUEUE: TargetKind.QUEUE,
    ForwardKind.AUTO_ATTENDANT: TargetKind.AUTO_ATTENDANT,
    ForwardKind.CONFERENCE: TargetKind.CONFERENCE,
}

_SERVICE_POOLS: tuple[tuple[str, TargetKind], ...] = (
    ("queues", TargetKind.QUEUE),
    ("auto_attendants", TargetKind.AUTO_ATTENDANT),
    ("conferences", TargetKind.CONFERENCE),
    ("mailboxes", TargetKind.VOICEMAIL),
)


def _park_note(dialled: str, ref: str) -> str:
    if ref == FIRST_FREE:
        return f"{dialled} is the park code: park in the first free orbit"
    return f"{dialled} is park orbit {ref}: park there, or retrieve the call parked there"


def _service_kind(cr: CompiledRouting, ext: str) -> TargetKind | None:
    for attr, kind in _SERVICE_POOLS:
        if ext in getattr(cr, attr):
            return kind
    return None
