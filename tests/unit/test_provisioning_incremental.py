"""A provisioning write validated against the kept model (softswitch.provisioning.validated):
the same tenant, or the same errors at the same object and field, as validating the whole
tenant from its documents; and the service's kept model equal to what the store holds."""

from __future__ import annotations

import random
from typing import Any

import pytest

from config.models import Tenant
from softswitch.provisioning import Actor, InvalidObject, ProvisioningService
from softswitch.provisioning.incremental import TenantIndex, changed_tenant
from softswitch.provisioning.model import ObjectKey, split_tenant
from softswitch.provisioning.validated import (
    TenantState,
    parts_of,
    validate_change,
    validate_tenant,
)
from storage import Store
from storage.provisioning import ProvisionedObject
from tests.unit.provkit import rich_tenant

WHO = Actor("tester", "unit")


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
    # the rules the kept indexes check (softswitch.provisioning.incremental)
    ("a user added between others", {("user", "1005"): {"extension": "1005", "password": "p"}}),
    (
        "a user moved to a site the tenant lacks",
        {("user", "105"): {"extension": "105", "password": "x", "site": "paris"}},
    ),
    (
        "a user given another's username",
        {("user", "105"): {"extension": "105", "password": "x", "username": "106"}},
    ),
    (
        "a user given a username nobody has",
        {("user", "105"): {"extension": "105", "password": "x", "username": "bob"}},
    ),
    (
        "a user on a ring group's extension",
        {("user", "600"): {"extension": "600", "password": "p"}},
    ),
    ("a user on an emergency number", {("user", "911"): {"extension": "911", "password": "p"}}),
    ("a user with answering rules of its own deleted", {("user", "102"): None}),
    ("a user owning a time frame deleted", {("user", "109"): None}),
    (
        "a number re-pointed to a queue",
        {
            ("number", "+14155550100"): {
                "number": "+14155550100",
                "treatment": "queue",
                "destination": "800",
            }
        },
    ),
    (
        "a number re-pointed to a missing queue",
        {
            ("number", "+14155550100"): {
                "number": "+14155550100",
                "treatment": "queue",
                "destination": "801",
            }
        },
    ),
    (
        "a number re-pointed offnet",
        {
            ("number", "+14155550100"): {
                "number": "+14155550100",
                "treatment": "offnet",
                "destination": "+14155559999",
            }
        },
    ),
    (
        "a number re-pointed to a user's voicemail",
        {
            ("number", "+14155550101"): {
                "number": "+14155550101",
                "treatment": "voicemail",
                "destination": "105",
            }
        },
    ),
    (
        "a number stored under another number",
        {("number", "+14155550100"): {"number": "+14155550111", "destination": "105"}},
    ),
    ("a number deleted", {("number", "+14155550101"): None}),
    # several objects in one import
    (
        "a user renamed and a bridge takes its old extension, in one import",
        {
            ("user", "105"): None,
            ("user", "150"): {"extension": "150", "password": "pw-105"},
            ("conference", "standup"): {"name": "standup", "extension": "105", "owner": "100"},
        },
    ),
    (
        "a user renamed and a bridge takes an extension still a user's, in one import",
        {
            ("user", "105"): None,
            ("user", "150"): {"extension": "150", "password": "pw-105"},
            ("conference", "standup"): {"name": "standup", "extension": "106", "owner": "100"},
        },
    ),
    (
        "a user renamed and a new user takes its old extension, in one import",
        {
            ("user", "111"): None,
            ("user", "105"): {"extension": "105", "password": "pw-111", "username": "111"},
        },
    ),
    (
        "deletes leaving references dangling, in one import",
        {("user", "103"): None, ("user", "104"): None},
    ),
    (
        "a feature code moved onto a new user's extension, in one import",
        {
            ("user", "150"): {"extension": "150", "password": "pw"},
            ("tenant", "acme"): {"voicemail": {"access_code": "150"}},
        },
    ),
    (
        "a feature code moved onto an extension a user leaves, in one import",
        {("user", "111"): None, ("tenant", "acme"): {"voicemail": {"access_code": "111"}}},
    ),
]


@pytest.mark.parametrize(("what", "change"), CHANGES, ids=[c[0] for c in CHANGES])
def test_a_change_validates_as_the_whole_tenant_does(
    what: str, change: dict[ObjectKey, dict[str, Any] | None]
) -> None:
    state = state_of(rich_tenant())
    docs = state.documents()
    if ("tenant", "acme") in change:
        merged = {**docs[("tenant", "acme")], **change[("tenant", "acme")]}  # type: ignore[dict-item]
        change = {**change, ("tenant", "acme"): merged}
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
        # the field is named (answering rules left without their user are wrong as a whole)
        assert all(e.field or e.kind == "answering" for e in refused.value.errors), what
    else:
        changed = validate_change("acme", state, docs, change)
        assert changed == whole, what
        # what the switch runs with is built the same way too
        assert changed.routing.users == whole.routing.users
        assert [u.extension for u in changed.users] == [u.extension for u in whole.users]


def _random_write(rng: random.Random, state: TenantState) -> tuple[ObjectKey, Any]:
    """One write a provisioning client could make, good or bad."""
    assert state.tenant is not None
    users = [u.extension for u in state.tenant.users]
    numbers = [k for (kind, k) in state.objects if kind == "number"]
    ext = rng.choice(users)
    doc = dict(state.objects[("user", ext)].data)
    what = rng.randrange(10)
    if what < 3 or (what in (6, 7, 9) and len(numbers) < 2):
        return ("user", ext), {**doc, "display_name": f"User {rng.randrange(1000)}"}
    if what == 3:
        name = rng.choice([rng.choice(users), f"u{rng.randrange(100)}"])
        return ("user", ext), {**doc, "username": name}
    if what == 4:
        new = rng.choice([str(3000 + rng.randrange(50)), "600", "700", "800", "900", "911", "98"])
        return ("user", new), {"extension": new, "password": "pw"}
    if what == 5:
        return ("user", ext), None
    if what in (6, 7):
        number = rng.choice(numbers)
        target = rng.choice([rng.choice(users), "555"])
        treatment = rng.choice(["user", "user", "voicemail", "queue"])
        return ("number", number), {
            "number": number,
            "treatment": treatment,
            "destination": "800" if treatment == "queue" else target,
        }
    if what == 8:
        return ("answering", ext), {"ring_time": rng.randrange(10, 60)}
    return ("number", rng.choice(numbers)), None


def test_single_writes_through_the_kept_indexes() -> None:
    """Random writes of one object in a row: when the indexes prove one clean, the tenant
    they build is the whole validation's; else validating the change gives the whole
    validation's errors. The indexes moved along equal ones built afresh."""
    rng = random.Random(17)
    state = state_of(rich_tenant(30))
    proved = refused = 0
    for step in range(200):
        ident, doc = _random_write(rng, state)
        docs = state.documents()
        if doc is None:
            docs.pop(ident, None)
        else:
            docs[ident] = doc
        try:
            whole: Tenant | InvalidObject = validate_tenant("acme", docs)
        except InvalidObject as exc:
            whole = exc
        index = state.index()
        assert index is not None and state.tenant is not None
        quick = changed_tenant(state.tenant, index, ident, doc, state.objects)
        if quick is not None:
            proved += 1
            assert quick == whole, (ident, doc)
            assert isinstance(whole, Tenant)
            assert list(quick.routing.users) == list(whole.routing.users)
            assert [u.extension for u in quick.users] == [u.extension for u in whole.users]
            assert quick.routing.dids == whole.routing.dids
        if isinstance(whole, InvalidObject):
            refused += 1
            with pytest.raises(InvalidObject) as error:
                validate_change("acme", state, docs, {ident})
            assert _errors(error.value) == _errors(whole), (ident, doc)
            continue
        changed = validate_change("acme", state, docs, {ident})
        assert changed == whole, (ident, doc)
        state = state.after({ident: doc}, changed, float(step))
        moved = state.cache.get("index")
        if moved is not None:
            assert moved == TenantIndex.build(changed, state.documents()), (ident, doc)
    assert proved > 60 and refused > 20  # both ways were taken


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
