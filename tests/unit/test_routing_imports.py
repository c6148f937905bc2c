"""DID and disaster-plan imports (CSV/XLSX), export, and disaster execute/revert."""

from __future__ import annotations

import datetime as dt
import io
import re
from typing import Any

import openpyxl
import pytest

from config.numbers import DisasterStatus, NumberType
from config.routing import TenantRouting
from routing.disaster import (
    DisasterError,
    add_number,
    create_plan,
    execute_plan,
    get_plan,
    plan_status,
    remove_number,
    revert_plan,
)
from routing.engine import plan_call
from routing.facts import CallFacts
from routing.imports import (
    MAX_UPLOAD_BYTES,
    ImportNotClean,
    apply_did_import,
    apply_disaster_import,
    export_dids_csv,
    read_rows,
    validate_did_import,
    validate_disaster_import,
)
from routing.plan import Ring, TargetKind

T0 = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)


def base(**extra: Any) -> TenantRouting:
    data: dict[str, Any] = {
        "users": {"100": {}, "101": {}},
        "queues": ["500"],
        "dids": [
            {"number": "+14127832832", "destination": "100"},
            {"number": "+14127832833", "destination": "101"},
            {"number": "+14127832843", "treatment": "queue", "destination": "500"},
            {"number": "+18005550100", "treatment": "queue", "destination": "500"},
        ],
    }
    data.update(extra)
    return TenantRouting.model_validate(data)


def xlsx(rows: list[list[Any]]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


# -- DID import ------------------------------------------------------------------------------

DID_CSV = """number,treatment,destination,caller_id_prefix,notes
+12127881500,user,100,Sales,main line
+1 212 788 1501,queue,500,,
12127881502,user,100,,
+12127881503,user,999,,
+12127881500,user,101,,
+14127832832,user,100,,
+12127881504,teleport,100,,
+12127881505,offnet,+12125550100,,
+12127881506,offnet,5550100,,
+1212788150,user,100,,
+12127881507,fax,,,fax line
+12127881508,queue,,,
"""

EXPECTED_DID_ROWS = [
    (2, "ok", ""),
    (3, "ok", ""),
    (4, "error", "missing '+'"),
    (5, "error", "unknown user destination '999'"),
    (6, "error", "duplicate of row 2"),
    (7, "error", "already in the inventory"),
    (8, "error", "unknown treatment"),
    (9, "ok", ""),
    (10, "error", "destination number"),
    (11, "error", "invalid number"),
    (12, "ok", ""),
    (13, "error", "needs a destination"),
]


@pytest.mark.parametrize(("row", "status", "reason"), EXPECTED_DID_ROWS)
def test_did_import_reports_each_row(row: int, status: str, reason: str) -> None:
    report = validate_did_import(base(), "numbers.csv", DID_CSV.encode())
    by_row = {r.row: r for r in report.rows}
    assert by_row[row].status == status
    assert reason in by_row[row].reason


def test_did_import_with_errors_applies_nothing() -> None:
    config = base()
    report = validate_did_import(config, "numbers.csv", DID_CSV.encode())
    assert not report.clean and report.errors == 8
    with pytest.raises(ImportNotClean):
        apply_did_import(config, report)
    assert len(config.dids) == 4
    assert "4 row(s) valid, 8 with errors" in report.lines()[0]


def test_clean_did_import_applies_and_routes() -> None:
    csv_text = (
        "Phone Number;Treatment;Destination\n+12127881500;user;101\n+12127881501;Call Queue;500\n"
    )
    config = base()
    report = validate_did_import(config, "n.csv", csv_text.encode())
    assert report.clean, report.lines()
    updated = apply_did_import(config, report)
    assert len(updated.dids) == 6
    plan = plan_call(updated, CallFacts("+13125550000", "+12127881501", T0, from_trunk=True))
    assert plan.root.target.kind is TargetKind.QUEUE  # type: ignore[union-attr]


def test_did_import_without_header_is_positional() -> None:
    report = validate_did_import(base(), "n.csv", b"+12127881500,user,100\n")
    assert report.clean


def test_did_export_round_trips() -> None:
    config = base()
    text = export_dids_csv(config)
    assert text.splitlines()[0] == "number,treatment,destination,caller_id_prefix,notes"
    empty = base(dids=[])
    report = validate_did_import(empty, "export.csv", text.encode())
    assert report.clean
    assert {d.number for d in apply_did_import(empty, report).dids} == {
        d.number for d in config.dids
    }


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("big.csv", b"x" * (MAX_UPLOAD_BYTES + 1), "limit is 2 MB"),
        ("numbers.xls", b"\xd0\xcf\x11\xe0", "legacy .xls"),
        ("numbers.pdf", b"%PDF-1.4", "unsupported file type (.pdf)"),
        ("numbers", b"+12127881500", "no extension"),
        ("numbers.xlsx", b"PK\x03\x04garbage", "not a valid .xlsx"),
        ("numbers.xlsx", b"plain text", "not a valid .xlsx"),
        ("numbers.csv", b"\xff\xfe\x00b\x00a\x00d", "not UTF-8"),
        ("numbers.csv", b"a,b\x00,c\n", "binary"),
    ],
)
def test_bad_files_are_rejected_with_reason(name: str, data: bytes, reason: str) -> None:
    report = validate_did_import(base(), name, data)
    assert report.file_error is not None and reason in report.file_error
    assert not report.clean
    assert report.lines() == [f"file rejected: {report.file_error}"]


def test_empty_file_is_not_clean() -> None:
    report = validate_did_import(base(), "n.csv", b"number,treatment,destination\n")
    assert report.rows == () and not report.clean


# -- disaster plans ------------------------------------------------------------------------------


def with_plan(number_type: NumberType = NumberType.DID) -> TenantRouting:
    return create_plan(base(), "LAN Main Office", "North America", number_type)


DISASTER_ROWS: list[list[Any]] = [
    ["Numbers", "Forward To"],
    ["+14127832832", 15055551234],  # integer cell, as the template says
    ["+14127832833", "+15055551235"],
    ["+14127832843", 15055551236.0],
    ["+14127832832", "+15055551237"],  # duplicate number
    ["+19995550000", "+15055551238"],  # invalid
    ["+14127832844", "+15055551239"],  # valid number but not in inventory
    ["+14127832833", "+15055551235"],  # duplicate number and forward-to
    ["+18005550100", "+15055551240"],  # toll-free in a DID plan
    ["+14127832843", "+14127832843"],  # forwards to itself
    ["+12127881500", "abc"],  # bad forward-to
]


def test_disaster_xlsx_import_report() -> None:
    config = with_plan()
    report = validate_disaster_import(config, "LAN Main Office", "plan.xlsx", xlsx(DISASTER_ROWS))
    got = [(r.row, r.status, r.reason) for r in report.rows]
    assert got[:3] == [(2, "ok", ""), (3, "ok", ""), (4, "ok", "")]
    reasons = {row: reason for row, _, reason in got}
    assert "duplicate number (row 2)" in reasons[5]
    assert "invalid number" in reasons[6]
    assert "not in the number inventory" in reasons[7]
    assert "duplicate number (row 3)" in reasons[8]
    assert "toll-free" in reasons[9]
    assert "forwards to itself" in reasons[10]
    assert "invalid forward-to" in reasons[11]
    with pytest.raises(ImportNotClean):
        apply_disaster_import(config, "LAN Main Office", report)
    assert get_plan(config, "LAN Main Office").numbers == ()


def test_disaster_duplicate_forward_to_in_upload() -> None:
    rows = [
        ["number", "forward_to"],
        ["+14127832832", "+15055551234"],
        ["+14127832833", "+15055551234"],
    ]
    report = validate_disaster_import(with_plan(), "LAN Main Office", "p.xlsx", xlsx(rows))
    assert [r.status for r in report.rows] == ["ok", "error"]
    assert "duplicate forward-to number (row 2)" in report.rows[1].reason


def test_disaster_csv_import_execute_and_revert_change_routing() -> None:
    config = with_plan()
    data = b"number,forward_to\n+14127832832,+15055551234\n+14127832833,+15055551235\n"
    report = validate_disaster_import(config, "LAN Main Office", "plan.csv", data)
    assert report.clean, report.lines()
    config = apply_disaster_import(config, "LAN Main Office", report)
    facts = CallFacts("+13125550000", "+14127832832", T0, registered={"100": 1}, from_trunk=True)

    def first_ref() -> str:
        root = plan_call(config, facts).root
        assert isinstance(root, Ring)
        return root.targets[0].ref

    assert first_ref() == "100"
    config = execute_plan(config, "LAN Main Office", "alice", T0)
    assert first_ref() == "+15055551234"
    plan = get_plan(config, "LAN Main Office")
    assert plan.status is DisasterStatus.ENABLED
    assert (plan.history[-1].action, plan.history[-1].by) == ("execute", "alice")
    config = revert_plan(config, "LAN Main Office", "bob", T0 + dt.timedelta(hours=2))
    assert first_ref() == "100"
    plan = get_plan(config, "LAN Main Office")
    assert [(e.action, e.by) for e in plan.history] == [("execute", "alice"), ("revert", "bob")]
    status = plan_status(config)
    assert status[0].numbers == 2 and status[0].status == "saved"
    assert "last revert by bob" in str(status[0])


def test_disaster_transitions_refuse_bad_requests() -> None:
    config = with_plan()
    with pytest.raises(DisasterError, match="no numbers"):
        execute_plan(config, "LAN Main Office", "alice", T0)
    with pytest.raises(DisasterError, match="not enabled"):
        revert_plan(config, "LAN Main Office", "alice", T0)
    with pytest.raises(DisasterError, match="no disaster plan"):
        execute_plan(config, "Nope", "alice", T0)
    with pytest.raises(DisasterError, match="already exists"):
        create_plan(config, "LAN Main Office")
    config = add_number(config, "LAN Main Office", "+14127832832", "+15055551234")
    with pytest.raises(DisasterError, match="timezone"):
        execute_plan(config, "LAN Main Office", "alice", dt.datetime(2025, 1, 1))
    enabled = execute_plan(config, "LAN Main Office", "alice", T0)
    with pytest.raises(DisasterError, match="already enabled"):
        execute_plan(enabled, "LAN Main Office", "alice", T0)
    # a second enabled plan may not take over the same number
    other = create_plan(enabled, "Second")
    other = add_number(other, "Second", "+14127832832", "+15055559999")
    with pytest.raises(DisasterError, match="enabled disaster plans"):
        execute_plan(other, "Second", "carol", T0)


@pytest.mark.parametrize(
    ("number", "forward_to", "reason"),
    [
        ("+14127832832", "+15055551234", None),
        ("4127832832", "+15055551234", "missing '+'"),
        ("+14127832832", "+1505", "invalid forward-to"),
        ("+14127832899", "+15055551234", "not in the number inventory"),
        ("+18005550100", "+15055551234", "toll-free"),
        ("+14127832832", "+14127832832", "forwards to itself"),
    ],
)
def test_add_single_number(number: str, forward_to: str, reason: str | None) -> None:
    config = with_plan()
    if reason is None:
        updated = add_number(config, "LAN Main Office", number, forward_to)
        assert get_plan(updated, "LAN Main Office").numbers[0].forward_to == forward_to
        with pytest.raises(DisasterError, match="already in this plan"):
            add_number(updated, "LAN Main Office", number, "+15055550000")
        removed = remove_number(updated, "LAN Main Office", number)
        assert get_plan(removed, "LAN Main Office").numbers == ()
    else:
        with pytest.raises(DisasterError, match=re.escape(reason)):
            add_number(config, "LAN Main Office", number, forward_to)


def test_toll_free_plan_takes_toll_free_numbers() -> None:
    config = with_plan(NumberType.TOLL_FREE)
    updated = add_number(config, "LAN Main Office", "+18005550100", "+15055551234")
    assert len(get_plan(updated, "LAN Main Office").numbers) == 1
    with pytest.raises(DisasterError, match="not toll-free"):
        add_number(config, "LAN Main Office", "+14127832832", "+15055551234")


def test_read_rows_xlsx_cells() -> None:
    rows = read_rows("a.XLSX", xlsx([["number"], [None], [14127832832], ["  +1 412 783 2833 "]]))
    assert rows == [(1, ["number"]), (3, ["+14127832832"]), (4, ["+1 412 783 2833"])]
