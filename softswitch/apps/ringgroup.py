"""The ring-group application: RING_GROUP nodes, which routing makes of a ring group with an
announcement or music (``RingGroup.answered_first``).

The switch answers the caller, plays the group's announcement (a prompt of the tenant's
library), then connects the caller to the group's members (``routing.engine
.ring_group_node``: planned now, so busy and unregistered members are skipped as of the
end of the announcement) while the caller hears the tenant's music on hold or a ringing
tone. A member answering is bridged to the caller; nobody answering goes on to the
group's final destination (in the same node tree), else the caller is hung up.
"""

from __future__ import annotations

import time
from typing import Any

import structlog

from config.models import Tenant
from config.ringgroups import GroupAudio, RingGroup
from media.control import HoldSource
from media.moh import load_hold_music
from routing.engine import ring_group_node
from routing.plan import Target, TargetKind
from softswitch.apps import prompts
from softswitch.apps.attendant import TenantVoice
from softswitch.apps.session import play
from softswitch.calls.apps import AppCall, Application
from softswitch.calls.planning import CallPlanner
from softswitch.calls.registry import ApplicationRegistry
from softswitch.prompts import PromptError, PromptLibrary

__all__ = ["RingGroupService"]

log = structlog.get_logger(__name__)

#: Longest an announcement may play before the members ring anyway (seconds).
ANNOUNCEMENT_LIMIT = 60.0


class RingGroupService:
    """Runs RING_GROUP nodes for every tenant (see the module docstring)."""

    def __init__(
        self,
        registry: ApplicationRegistry[Any],
        tenants: dict[str, Tenant],
        planner: CallPlanner,
        library: PromptLibrary | None = None,
    ) -> None:
        self.tenants = tenants
        self.planner = planner
        self.library = library
        registry.register(TargetKind.RING_GROUP, self.application)

    def application(self, call: Any, target: Target) -> Application | None:
        """The application of ring group ``target.ref`` (None, 480: no such group)."""
        tenant = self.tenants.get(call.tenant)
        group = (
            next((g for g in tenant.routing.ring_groups if g.extension == target.ref), None)
            if tenant is not None
            else None
        )
        if tenant is None or group is None:
            return None
        audio = self._audio(tenant, group)
        voice = (
            TenantVoice(self.library, tenant.name, None)
            if self.library is not None and group.announcement
            else None
        )
        caller = "anonymous" if call.caller.private else call.caller_number
        from_trunk = bool(call.from_trunk)

        async def run(session: AppCall) -> None:
            if voice is not None:
                await _announce(session, voice, group)
            if session.ended.is_set():
                return
            facts = self.planner.facts(
                tenant, caller, group.extension, time.time(), from_trunk=from_trunk
            )
            node = ring_group_node(self.planner.routing_for(tenant), facts, group.extension)
            if node is None:
                return  # the group was removed meanwhile: the caller is hung up
            log.info("ring_group_ringing", call=session.call_id, group=group.name)
            await session.connect(node, ringback=audio)

        return run

    def _audio(self, tenant: Tenant, group: RingGroup) -> HoldSource:
        if group.ringback is GroupAudio.MUSIC:
            if tenant.moh is not None:
                try:
                    return load_hold_music(tenant.moh)
                except (OSError, ValueError) as error:
                    log.warning("ring_group_music_unavailable", group=group.name, error=str(error))
            return prompts.HOLD_MUSIC
        return prompts.RINGBACK


async def _announce(session: AppCall, voice: TenantVoice, group: RingGroup) -> None:
    try:
        audio = await voice.prompt(group.announcement)
    except PromptError as error:
        log.warning("ring_group_announcement_failed", group=group.name, error=str(error))
        return
    await play(session, audio, limit=ANNOUNCEMENT_LIMIT)
