"""The pure parts of provisioning over the API: merge patches, secrets masked and kept,
who owns an object, and the time-frame boundaries a what-if evaluates."""

from __future__ import annotations

import datetime as dt

import pytest

from config.timeframes import TimeFrame
from routing.timeframes import CompiledFrame
from softswitch.api.provisioning import MASK, masked, unmasked
from softswitch.api.routes_provisioning import RESOURCES, _merge
from softswitch.api.routes_provisioning_whatif import boundaries
from softswitch.provisioning import KINDS


def test_merge_patch_follows_rfc_7396() -> None:
    target = {"a": 1, "b": {"c": 2, "d": 3}, "e": [1, 2]}
    patch = {"a": None, "b": {"c": 5, "d": None}, "e": [3], "f": "new"}
    assert _merge(target, patch) == {"b": {"c": 5}, "e": [3], "f": "new"}
    assert target["a"] == 1  # the stored document is not changed in place


def test_secrets_are_masked_and_a_mask_sent_back_keeps_the_stored_value() -> None:
    stored = {"extension": "100", "password": "s3cret", "gateways": [{"password": "gw"}]}
    shown = masked(stored)
    assert shown == {"extension": "100", "password": MASK, "gateways": [{"password": MASK}]}
    assert unmasked(shown, stored) == stored
    changed = {**shown, "password": "new"}
    assert unmasked(changed, stored)["password"] == "new"
    # a mask for a secret never stored stays what it is (and the model refuses it or not)
    assert unmasked({"password": MASK}, {}) == {"password": MASK}


def test_every_kind_but_the_tenant_has_a_collection() -> None:
    assert {r.kind for r in RESOURCES} == set(KINDS) - {"tenant"}
    assert len({r.collection for r in RESOURCES}) == len(RESOURCES)


@pytest.mark.parametrize(
    ("kind", "key", "data", "owner"),
    [
        ("user", "101", {}, "101"),
        ("answering", "101", {}, "101"),
        ("time_frame", "lunch", {}, None),
        ("time_frame", "101/lunch", {"owner": "101"}, "101"),
        ("number", "+14155550100", {"destination": "102"}, "102"),
        ("number", "+14155550100", {"treatment": "offnet", "destination": "+1212"}, None),
        ("trunk", "carrier", {}, None),
    ],
)
def test_owner_of_an_object(kind: str, key: str, data: dict[str, str], owner: str | None) -> None:
    resource = next(r for r in RESOURCES if r.kind == kind)
    assert resource.owner(key, data) == owner


def test_boundaries_are_the_instants_the_active_frames_change() -> None:
    frame = TimeFrame.model_validate(
        {
            "name": "business",
            "timezone": "Europe/Berlin",
            "when": {
                "kind": "days_of_week",
                "days": {d: [{"start": "09:00", "end": "17:00"}] for d in ("mon", "wed")},
            },
        }
    )
    start = dt.datetime(2026, 3, 2, 7, 30, tzinfo=dt.UTC)  # a Monday, 08:30 in Berlin
    found = boundaries([CompiledFrame(frame)], start, 7)
    assert [(at.isoformat(), active) for at, active in found] == [
        ("2026-03-02T07:30:00+00:00", []),
        ("2026-03-02T08:00:00+00:00", ["business"]),
        ("2026-03-02T16:00:00+00:00", []),
        ("2026-03-04T08:00:00+00:00", ["business"]),
        ("2026-03-04T16:00:00+00:00", []),
    ]
