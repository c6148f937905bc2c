"""The record-a-prompt feature code: who may record, slots, and routing's nodes for it."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from config.models import Tenant
from routing.engine import plan_call
from routing.facts import CallFacts
from routing.plan import Application, TargetKind


def _tenant(**prompts: Any) -> Tenant:
    return Tenant.model_validate(
        {
            "name": "acme",
            "domain": "acme.example",
            "users": [
                {"extension": "101", "password": "pw"},
                {"extension": "102", "password": "pw"},
            ],
            "prompts": prompts,
        }
    )


def _node(tenant: Tenant, dialled: str, caller: str = "101") -> Any:
    return plan_call(tenant.routing, CallFacts(dialled=dialled, caller=caller, at=0)).root


def test_record_code_and_slots_route_to_the_recorder() -> None:
    t = _tenant(recorders=["101"], slots={"1": "welcome", "22": "menus/night"})
    asked = _node(t, "*95")
    assert isinstance(asked, Application)
    assert (asked.target.kind, asked.target.ref) == (TargetKind.PROMPT_RECORD, "")
    slot = _node(t, "*9522")
    assert (slot.target.kind, slot.target.ref) == (TargetKind.PROMPT_RECORD, "menus/night")
    assert t.prompts.prompt_name("1") == "welcome"
    assert t.prompts.prompt_name("7") == "7"
    assert t.prompts.prompt_name("") is None
    assert t.prompts.prompt_name("12345") is None


def test_without_recorders_the_code_is_not_routed() -> None:
    t = _tenant()
    assert not any(f.kind == "prompt_record" for f in t.routing.feature_codes.values())
    assert t.prompts.feature_codes() == {}


@pytest.mark.parametrize(
    ("prompts", "message"),
    [
        ({"recorders": ["103"]}, r"prompts.recorders\[0\].*not a user"),
        ({"recorders": ["101"], "record_code": "*97"}, r"prompts.record_code.*\*97"),
        ({"slots": {"x": "welcome"}}, "a prompt number is 1 to 4 digits"),
        ({"slots": {"1": "Welcome!"}}, "not a prompt name"),
        ({"record_code": "95"}, "record_code"),
        ({"max_record_seconds": 1}, "max_record_seconds"),
    ],
)
def test_bad_settings_name_the_field(prompts: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        _tenant(**prompts)


def test_a_target_without_an_application_says_so() -> None:
    # A fax DID: routing plans the node, route explain says nothing serves it yet, and the
    # call layer refuses it with that cause (not a bare 480).
    from routing.engine import plan_with_details
    from softswitch.calls.apps import CallRefused
    from softswitch.calls.registry import ApplicationRegistry

    t = Tenant.model_validate(
        {
            "name": "acme",
            "domain": "acme.example",
            "users": [{"extension": "101", "password": "pw"}],
            "routing": {"dids": [{"number": "+14155550150", "treatment": "fax"}]},
        }
    )
    flow = plan_with_details(
        t.routing, CallFacts(dialled="+14155550150", caller="+16505550123", at=0, from_trunk=True)
    )
    assert flow.root.target.kind is TargetKind.FAX
    assert any(
        "fax has no application yet: 480 Fax Not Available" in d.detail for d in flow.decisions
    )
    with pytest.raises(CallRefused) as refused:
        ApplicationRegistry().application(object(), flow.root.target)
    assert (refused.value.status, refused.value.reason) == (480, "Fax Not Available")
