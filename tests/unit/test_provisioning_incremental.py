"""A provisioning write validated against the kept model (softswitch.provisioning.validated):
the same tenant, or the same errors at the same object and field, as validating the whole
tenant from its documents; and the service's kept model equal to what the store holds."""

from __future__ import annotations

from typing import Any

import pytest

from config.models import Tenant
from softswitch.provisioning import Actor, InvalidObject, ProvisioningService
from softswitch.provisioning.model import ObjectKey, split_tenant
from softswitch.provisioning.validated import (
    TenantState,
    parts_of,
    validate_change,
    validate_tenant,
)
from storage import Store
from storage.provisioning import ProvisionedObject

WHO = Actor("tester", "unit")


def rich_tenant(users: int = 0) -> Tenant:
    """Users, answering rules with forwards, time frames, numbers, a ring group, a queue, a
    conference bridge and a shared mailbox: every reference a change can break."""
    return Tenant.model_validate(
        {
            "name": "acme",
            "domain": "acme.test",
            "users": [
                {"extension": e, "password": f"pw-{e}"}
                for e in [str(100 + i) for i in range(12)] + [str(2000 + i) for i in range(users)]
            ],
            "conferences": [{"name": "standup", "extension": "700", "owner": "100"}],
            "queues": [{"name": "sales", "extension": "800", "agents": [{"extension": "101"}]}],
            "voicemail": {"mailboxes": {"900": {}}},
            "routing": {
                "time_frames": [
                    {
                        "name": "office",
                        "when": {
                            "kind": "days_of_week",
                            "days": {"mon": [{"start": "09:00", "end": "17:00"}]},
                        },
                    }
                ],
                "users": {
                    "102": {
                        "rules": [
                            {
                                "time_frame": "office",
                                "forward": {"always": {"kind": "user", "target": "103"}},
                            }
                        ]
                    }
                },
                "dids": [
                    {"number": "+14155550100", "treatment": "user", "destination": "100"},
                    {"number": "+14155550101", "treatment": "queue", "destination": "800"},
                    {"number": "+14155550102", "treatment": "ring_group", "destination": "600"},
                ],
                "ring_groups": [
                    {"name": "front", "extension": "600", "members": [{"target": "104"}]}
                ],
            },
        }
    )


def state_of(tenant: Tenant) -> TenantState:
    objects = {
        k: ProvisionedObject(tenant.name, *k, 1, doc, 0.0)
        for k, doc in split_tenant(tenant).items()
    }
    return TenantState.build(tenant.name, objects)


def _errors(exc: InvalidObject) -> list[tuple[str, str, str, str]]:
    return sorted((e.kind, e.key, e.field, e.message) for e in exc.errors)


# (what the change is, {object: new document, None = deleted}); each is checked both ways.
CHANGES: list[tuple[str, dict[ObjectKey, dict[str, Any] | None]]] = [
    (
        "a user renamed",
        {("user", "105"): {"extension": "105", "password": "x", "display_name": "B"}},
    ),
    ("a user added", {("user", "150"): {"extension": "150", "password": "pw-150"}}),
    ("a user nothing refers to deleted", {("user", "111"): None}),
    (
        "a number re-pointed",
        {("number", "+14155550100"): {"number": "+14155550100", "destination": "106"}},
    ),
    ("answering rules added", {("answering", "107"): {"ring_time": 40}}),
    (
        "a duplicate username",
        {("user", "151"): {"extension": "151", "username": "101", "password": "pw"}},
    ),
    ("a user a number points at deleted", {("user", "100"): None}),
    ("a user a rule forwards to deleted", {("user", "103"): None}),
    ("a user a ring group rings deleted", {("user", "104"): None}),
    ("a user a queue's agent is deleted", {("user", "101"): None}),
    (
        "a number to a missing user",
        {("number", "+14155550199"): {"number": "+14155550199", "destination": "555"}},
    ),
    ("a number to a missing ring group", {("ring_group", "front"): None}),
    (
        "a rule to a missing time frame",
        {
            ("answering", "108"): {
                "rules": [
                    {
                        "time_frame": "lunch",
                        "forward": {"always": {"kind": "user", "target": "100"}},
                    }
                ]
            }
        },
    ),
    (
        "a user on a conference's extension",
        {("user", "700"): {"extension": "700", "password": "pw"}},
    ),
    ("a user on a queue's extension", {("user", "800"): {"extension": "800", "password": "pw"}}),
    ("a user on a feature code", {("user", "98"): {"extension": "98", "password": "pw"}}),
    ("a user on a shared mailbox", {("user", "900"): {"extension": "900", "password": "pw"}}),
    ("a bad field", {("user", "105"): {"extension": "105", "password": ""}}),
    (
        "the tenant's own fields",
        {("tenant", "acme"): {"name": "acme", "domain": "acme.test", "max_calls": 10}},
    ),
]


@pytest.mark.parametrize(("what", "change"), CHANGES, ids=[c[0] for c in CHANGES])
def test_a_change_validates_as_the_whole_tenant_does(
    what: str, change: dict[ObjectKey, dict[str, Any] | None]
) -> None:
    state = state_of(rich_tenant())
    docs = state.documents()
    if ("tenant", "acme") in change:
        change = {("tenant", "acme"): {**docs[("tenant", "acme")], **change[("tenant", "acme")]}}
    for key, doc in change.items():
        if doc is None:
            docs.pop(key)
        else:
            docs[key] = doc
    try:
        whole: Tenant | InvalidObject = validate_tenant("acme", docs)
    except InvalidObject as exc:
        whole = exc
    if isinstance(whole, InvalidObject):
        with pytest.raises(InvalidObject) as refused:
            validate_change("acme", state, docs, change)
        assert _errors(refused.value) == _errors(whole), what
        assert all(e.field for e in refused.value.errors)  # the field is named
    else:
        changed = validate_change("acme", state, docs, change)
        assert changed == whole, what
        # what the switch runs with is built the same way too
        assert changed.routing.users == whole.routing.users
        assert [u.extension for u in changed.users] == [u.extension for u in whole.users]


def test_the_kept_parts_are_the_tenants_own_models() -> None:
    tenant = rich_tenant()
    state = state_of(tenant)
    assert set(state.parts) == set(state.objects) - {("tenant", "acme")}
    assert state.parts[("user", "105")] is state.tenant.user_by_extension("105")  # type: ignore[union-attr]
    assert parts_of(tenant, [("number", "+14155550101")]) == {
        ("number", "+14155550101"): tenant.routing.dids[1]
    }


def test_an_invalid_stored_tenant_is_validated_whole() -> None:
    state = state_of(rich_tenant())
    docs = state.documents()
    docs[("number", "+14155550199")] = {"number": "+14155550199", "destination": "555"}
    broken = TenantState.build(
        "acme", {k: ProvisionedObject("acme", *k, 1, d, 0) for k, d in docs.items()}
    )
    assert broken.tenant is None and "555" in broken.problem
    with pytest.raises(InvalidObject) as refused:
        validate_change("acme", broken, docs, {("user", "105")})
    assert [(e.kind, e.field) for e in refused.value.errors] == [("number", "destination")]


async def test_the_kept_model_is_what_the_store_holds(store: Store) -> None:
    service = ProvisioningService(store)
    assert await service.seed(WHO, [rich_tenant(40)])
    await service.update(
        WHO, "number", "acme", "+14155550100", {"number": "+14155550100", "destination": "2020"}
    )
    await service.create(WHO, "user", "acme", {"extension": "180", "password": "pw-180"})
    await service.delete(WHO, "user", "acme", "2039")
    await service.create(WHO, "answering", "acme", {"ring_time": 40}, key="180")
    # refused changes leave nothing behind, with the error a whole validation gives
    with pytest.raises(InvalidObject) as refused:
        await service.delete(WHO, "user", "acme", "2020")
    assert [(e.kind, e.key, e.field) for e in refused.value.errors] == [
        ("number", "+14155550100", "destination")
    ]
    with pytest.raises(InvalidObject) as duplicate:
        await service.create(
            WHO, "user", "acme", {"extension": "181", "username": "180", "password": "pw"}
        )
    assert [(e.kind, e.key, e.field) for e in duplicate.value.errors] == [
        ("user", "181", "username")
    ]
    kept = await service.snapshot()
    fresh = await ProvisioningService(store).snapshot()
    assert kept.revision == fresh.revision == 5
    assert kept.tenants == fresh.tenants
    assert kept.documents == fresh.documents
    item = await service.get("user", "acme", "180")
    assert item.version == 1


async def test_a_change_by_another_process_is_seen(store: Store) -> None:
    ours, theirs = ProvisioningService(store), ProvisioningService(store)
    assert await ours.seed(WHO, [rich_tenant()])
    await ours.snapshot()  # the model is kept now
    await theirs.create(WHO, "user", "acme", {"extension": "160", "password": "pw-160"})
    # our next write validates against the store's revision, not the kept one
    with pytest.raises(InvalidObject) as duplicate:
        await ours.create(
            WHO, "user", "acme", {"extension": "161", "username": "160", "password": "pw"}
        )
    assert [(e.key, e.field) for e in duplicate.value.errors] == [("161", "username")]
    snapshot = await ours.snapshot()
    (tenant,) = snapshot.tenants
    assert tenant.user_by_extension("160") is not None
    await theirs.delete(WHO, "user", "acme", "160")
    (tenant,) = (await ours.snapshot()).tenants
    assert tenant.user_by_extension("160") is None
