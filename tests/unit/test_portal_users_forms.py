"""The pieces under the portal's editing pages: a day's overlapping time ranges refused by
the time frame model, an API refusal put at the form's fields, the week view's blocks."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from config.timeframes import DaysOfWeekSpec
from softswitch.api.errors import ApiError, FieldError
from softswitch.portal.forms import errors_of
from softswitch.portal.timeframes import week_view


def _days(**days: list[tuple[str, str]]) -> DaysOfWeekSpec:
    return DaysOfWeekSpec.model_validate(
        {"days": {d: [{"start": s, "end": e} for s, e in r] for d, r in days.items()}}
    )


def test_overlapping_ranges_of_a_day_are_refused_naming_both() -> None:
    with pytest.raises(ValidationError, match="tue: 09:00-12:00 overlaps 11:00-13:00"):
        _days(tue=[("11:00", "13:00"), ("09:00", "12:00")])
    with pytest.raises(ValidationError, match="mon: 20:00-24:00 overlaps 22:00-23:00"):
        _days(mon=[("20:00", "24:00"), ("22:00", "23:00")])
    with pytest.raises(ValidationError, match="overlaps"):
        _days(fri=[("22:00", "02:00"), ("23:00", "23:30")])  # overnight runs to midnight


def test_ranges_that_touch_or_sit_on_other_days_are_accepted() -> None:
    spec = _days(
        mon=[("09:00", "12:00"), ("12:00", "17:00")],
        tue=[("00:00", "24:00")],
        fri=[("22:00", "02:00"), ("08:00", "09:00")],
    )
    assert len(spec.days) == 3


def test_api_refusals_land_on_the_form_fields() -> None:
    error = ApiError(422, "validation_error", "invalid")
    error.errors = [
        FieldError(field="body.rules[1].forward.when_busy", message="Value error, bad number"),
        FieldError(field="body.rules[1].simring.extra[0].delay", message="too big"),
        FieldError(field="user[102].site", message="unknown site"),
    ]
    fields = {
        "rules[1].forward.when_busy": "busy_target",
        "rules[1].simring.extra[0]": "leg0_target",
        "rules[1].simring.extra[0].delay": "leg0_delay",
    }
    assert errors_of(error, fields) == {
        "busy_target": "bad number",
        "leg0_delay": "too big",
        "": "user[102].site: unknown site",
    }
    exists = ApiError(409, "conflict", "user '101' already exists")
    assert errors_of(exists, fields, key_field="extension") == {
        "extension": "user '101' already exists"
    }


def test_the_week_view_carries_an_overnight_range_into_the_next_day() -> None:
    frame = {
        "name": "night",
        "enabled": True,
        "data": {
            "when": {"kind": "days_of_week", "days": {"sun": [{"start": "22:00", "end": "06:00"}]}}
        },
    }
    week = week_view([frame])
    assert [b["text"] for b in week[6]["blocks"]] == ["night 22:00-24:00"]
    assert [b["text"] for b in week[0]["blocks"]] == ["night 00:00-06:00"]  # Monday
    assert week[0]["blocks"][0]["top"] == 0 and week[0]["blocks"][0]["height"] == 25.0
