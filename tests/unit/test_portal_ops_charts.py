"""The portal's server-drawn pieces: bar chart geometry, legs on a call's time line and
``route explain``'s lines split into decisions, tree and path."""

from __future__ import annotations

import pytest

import softswitch.api  # noqa: F401 - the API mounts the portal: import it first
from softswitch.portal.charts import HEIGHT, bar_chart
from softswitch.portal.explain import tree_lines
from softswitch.portal.history import leg_bars


def test_bars_scale_to_a_round_top_and_keep_their_order() -> None:
    chart = bar_chart("c", "Calls", ["a", "b", "c"], [0.0, 3.0, 6.0], "calls")
    heights = [b.height for b in chart.bars]
    assert heights[0] == 0 and heights[1] * 2 == pytest.approx(heights[2])
    assert [t.text for t in chart.ticks] == ["0", "5", "10"]  # 6 rounds up to 10
    assert all(b.y + b.height == pytest.approx(chart.baseline) for b in chart.bars)
    assert chart.baseline < HEIGHT
    assert chart.rows == (("a", "0"), ("b", "3"), ("c", "6"))
    assert chart.summary == "Calls: highest 6 calls at c."


def test_an_empty_chart_says_so_and_many_bars_thin_their_labels() -> None:
    empty = bar_chart("e", "Loss", ["x"], [0.0])
    assert empty.empty and "nothing in this period" in empty.summary
    hourly = bar_chart("h", "Hourly", [f"{h:02d}" for h in range(24)], [1.0] * 24)
    assert sum(b.show_label for b in hourly.bars) == 12
    with pytest.raises(ValueError):
        bar_chart("bad", "Bad", ["a"], [1.0, 2.0])


def test_legs_are_placed_on_the_calls_time_line() -> None:
    legs = [
        {"target": "user 102", "started": 100.0, "ended": 130.0, "status": 480},
        {"target": "user 103", "started": 130.0, "answered": True, "status": 200},
        {"target": "offnet", "started": 100.0, "ended": 101.0, "status": 503},
    ]
    rang, answered, failed = leg_bars(100.0, 160.0, legs)
    assert (rang.outcome, rang.left, rang.width, rang.seconds) == ("rang", 0.0, 50.0, 30.0)
    assert (answered.outcome, answered.left, answered.width) == ("answered", 50.0, 50.0)
    assert failed.outcome == "failed" and failed.width >= 0.5  # a blink is still drawn


def test_explain_lines_split_into_decisions_tree_and_path() -> None:
    lines = [
        "dial: extension 102 is a user",
        "callflow (* the branches taken when nobody answers):",
        "  * ring 102 (20 s)",
        "      on busy: voicemail 102",
        "    * on no_answer: voicemail 102",
        "path: ring 102 (no answer) -> voicemail 102",
    ]
    decisions, tree, path = tree_lines(lines)
    assert decisions == ["dial: extension 102 is a user"]
    assert [(n.depth, n.taken) for n in tree] == [(0, True), (1, False), (1, True)]
    assert tree[2].text == "on no_answer: voicemail 102"
    assert path == "ring 102 (no answer) -> voicemail 102"
