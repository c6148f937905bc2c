"""The portal's operations pages over real HTTP, on SQLite and on PostgreSQL: the dashboard's
charts, call history (filters, call flow, recordings, CSV export), disaster plans (create,
numbers singly and by upload with the validation report: bad input named at its field or
row and nothing half-saved) and "why did my phone not ring?"."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from peers.switchproc import free_port
from tests.integration.apikit import TENANT_A, LiveApi, pg_schema
from tests.integration.portalkit import add_login, csrf_of, sign_in
from tests.integration.portalopskit import (
    DID,
    SPARE_DIDS,
    add_history,
    add_queue_events,
    ops_config,
    write_wav,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveApi]:
    tmp = tmp_path_factory.mktemp("ops")
    if request.param == "sqlite":
        url = f"sqlite:///{tmp}/switch.db"
    else:
        url = pg_schema(request.getfixturevalue("pg_dsn"))
    api = LiveApi(ops_config(url, free_port(), tmp / "recordings")).start()
    try:
        add_login(api, "manager", "office_manager", tenants=[TENANT_A])
        add_login(api, "u101", "user", tenants=[TENANT_A], extension="101")
        add_login(api, "op", "operator")
        add_history(api, tmp / "recordings")
        add_queue_events(api)
        yield api
    finally:
        api.stop()


@pytest.fixture(scope="module")
def manager(live: LiveApi) -> Iterator[httpx.Client]:
    client, answer = sign_in(live, "manager")
    assert answer.status_code == 303
    with closing(client):
        yield client


def _plan(client: httpx.Client, name: str) -> str:
    return f"/t/{TENANT_A}/disaster-plans/{name}"


def test_dashboard_draws_volume_asr_and_quality_charts_with_data_tables(
    manager: httpx.Client,
) -> None:
    page = manager.get(f"/t/{TENANT_A}")
    assert page.status_code == 200
    html = page.text
    for ident in ("volume-hourly", "volume-daily", "asr", "mos-0", "jitter-0", "loss-0"):
        assert f'<figure class="chart" id="{ident}">' in html
    # Every chart is an image with a title and a description, and its numbers as a table.
    assert html.count('role="img"') == html.count("<details>") >= 6
    assert 'aria-labelledby="volume-hourly-title volume-hourly-desc"' in html
    trunks = re.search(r'<table id="trunk-figures">.*?</table>', html, re.S)
    assert trunks is not None
    row = re.sub(r"<[^>]+>", " ", trunks.group(0))
    assert "carrier" in row and "100.0%" in row  # two attempts over the trunk, both answered
    assert "all trunks and extensions" in html and "average MOS 3.7" in html
    last_day = manager.get(f"/t/{TENANT_A}", params={"days": "1"}).text
    assert "average MOS 4.3" in last_day  # the outbound call of 26 h ago is left out
    assert manager.get(f"/t/{TENANT_A}", params={"days": "9999"}).status_code == 200  # default


def test_history_filters_flow_recording_and_csv_export(manager: httpx.Client) -> None:
    base = f"/t/{TENANT_A}/history"
    every = manager.get(base)
    assert every.status_code == 200 and "5 call(s) found" in every.text
    unanswered = manager.get(base, params={"disposition": "NO ANSWER"})
    assert "1 call(s) found" in unanswered.text and 'data-call="int-2"' in unanswered.text
    inbound = manager.get(base, params={"direction": "inbound", "dialled": DID[-4:]})
    assert 'data-call="in-1"' in inbound.text and 'data-call="int-1"' not in inbound.text
    bad = manager.get(base, params={"from": "2026-13-40", "to": "yesterday"})
    assert bad.status_code == 422
    assert 'id="e-from"' in bad.text and 'id="e-to"' in bad.text  # each message at its field
    backwards = manager.get(base, params={"from": "2026-05-03", "to": "2026-05-01"})
    assert backwards.status_code == 422 and "before from" in backwards.text

    flow = manager.get(f"{base}/rec-call")
    assert flow.status_code == 200
    assert 'id="call-flow"' in flow.text and "started" in flow.text and "answered" in flow.text
    assert 'class="leg-answered"' in flow.text and "user_devices 101" in flow.text
    audio = manager.get(f"{base}/rec-call/recordings/1")
    assert audio.status_code == 200 and audio.content[:4] == b"RIFF"
    assert audio.headers["content-type"] == "audio/wav"
    download = manager.get(f"{base}/rec-call/recordings/1", params={"download": "1"})
    assert download.headers["content-disposition"].startswith("attachment")
    assert manager.get(f"{base}/rec-call/recordings/2").status_code == 404
    assert manager.get(f"{base}/int-1/recordings/1").status_code == 404

    export = manager.get(f"{base}.csv", params={"direction": "outbound"})
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert [r["call_id"] for r in rows] == ["out-1"]


def test_a_basic_user_gets_their_own_history_only(live: LiveApi) -> None:
    client, _ = sign_in(live, "u101")
    with closing(client):
        own = client.get(f"/t/{TENANT_A}/users/101/history")
        assert own.status_code == 200 and 'data-call="int-1"' in own.text
        assert 'data-call="int-2"' not in own.text  # 102 called 103
        assert client.get(f"/t/{TENANT_A}/users/102/history.csv").status_code == 403
        assert client.get(f"/t/{TENANT_A}/history").status_code == 403
        assert client.get(f"/t/{TENANT_A}/history/int-2").status_code == 404
        mine = client.get(f"/t/{TENANT_A}/users/101/history.csv")
        assert {r["call_id"] for r in csv.DictReader(io.StringIO(mine.text))} == {
            "int-1",
            "out-1",
            "rec-call",
        }


def test_disaster_plan_create_add_and_upload_refuse_bad_input_at_the_field(
    manager: httpx.Client,
) -> None:
    plans = manager.get(f"/t/{TENANT_A}/disaster-plans")
    token = csrf_of(plans.text)
    made = manager.post(
        f"/t/{TENANT_A}/disaster-plans",
        data={"name": "Storm", "region": "US West", "number_type": "did", "csrf": token},
    )
    assert made.status_code == 303 and made.headers["location"].endswith("/disaster-plans/Storm")
    again = manager.post(
        f"/t/{TENANT_A}/disaster-plans",
        data={"name": "Storm", "number_type": "did", "csrf": token},
    )
    assert again.status_code == 422 and 'id="plan-name-error"' in again.text
    assert "exists already" in again.text

    storm = _plan(manager, "Storm")
    bad = manager.post(
        f"{storm}/numbers", data={"number": "555-12", "forward_to": "+12125550199", "csrf": token}
    )
    assert bad.status_code == 422 and 'id="add-number-error"' in bad.text
    assert "invalid number" in bad.text
    not_ours = manager.post(
        f"{storm}/numbers",
        data={"number": "+14155550199", "forward_to": "+12125550199", "csrf": token},
    )
    assert not_ours.status_code == 422 and "not in the number inventory" in not_ours.text
    loop = manager.post(f"{storm}/numbers", data={"number": DID, "forward_to": DID, "csrf": token})
    assert loop.status_code == 422 and 'id="add-forward-error"' in loop.text
    assert "No number yet" in manager.get(storm).text  # nothing half-saved

    good = manager.post(
        f"{storm}/numbers", data={"number": DID, "forward_to": "+12125550188", "csrf": token}
    )
    assert good.status_code == 303

    upload = "number,forward_to\n" + f"{SPARE_DIDS[0]},+12125550177\n" + "+1999,+12125550166\n"
    report = manager.post(
        f"{storm}/import",
        data={"csrf": token},
        files={"upload": ("numbers.csv", upload.encode(), "text/csv")},
    )
    assert report.status_code == 422
    assert "1 of 2 row(s) have errors: nothing was added" in report.text
    assert 'class="row-error"' in report.text and 'class="row-ok"' in report.text
    assert SPARE_DIDS[0] not in re.search(
        r'<table id="plan-numbers">.*?</table>', report.text, re.S
    ).group(0)  # type: ignore[union-attr]

    clean = "number,forward_to\n" + "".join(
        f"{n},+1212555017{i}\n" for i, n in enumerate(SPARE_DIDS)
    )
    checked = manager.post(
        f"{storm}/import",
        data={"csrf": token, "check_only": "1"},
        files={"upload": ("numbers.csv", clean.encode(), "text/csv")},
    )
    assert checked.status_code == 200 and "Nothing was added (check only)" in checked.text
    added = manager.post(
        f"{storm}/import",
        data={"csrf": token},
        files={"upload": ("numbers.csv", clean.encode(), "text/csv")},
    )
    assert added.status_code == 200 and "the numbers were added" in added.text
    numbers = re.search(r'<table id="plan-numbers">.*?</table>', manager.get(storm).text, re.S)
    assert numbers is not None and all(n in numbers.group(0) for n in (DID, *SPARE_DIDS))
    no_csrf = manager.post(f"{storm}/numbers/remove", data={"number": DID})
    assert no_csrf.status_code == 403
    removed = manager.post(f"{storm}/numbers/remove", data={"number": DID, "csrf": token})
    assert removed.status_code == 303
    assert DID not in re.search(
        r'<table id="plan-numbers">.*?</table>', manager.get(storm).text, re.S
    ).group(0)  # type: ignore[union-attr]


def test_why_did_my_phone_not_ring_shows_the_tree_and_the_branch_taken(
    manager: httpx.Client, live: LiveApi
) -> None:
    page = manager.get(f"/t/{TENANT_A}/explain", params={"to": DID, "from": "+12125550111"})
    assert page.status_code == 200
    assert 'id="callflow"' in page.text and 'class="taken"' in page.text
    assert "102" in re.search(r'<p id="path">.*?</p>', page.text, re.S).group(0)  # type: ignore[union-attr]
    bad_time = manager.get(f"/t/{TENANT_A}/explain", params={"to": "102", "at": "teatime"})
    assert bad_time.status_code == 422 and 'id="x-at-error"' in bad_time.text
    client, _ = sign_in(live, "u101")
    with closing(client):
        other = client.get(f"/t/{TENANT_A}/explain", params={"to": "102"})
        assert other.status_code == 422 and "not permitted" in other.text
        own = client.get(f"/t/{TENANT_A}/explain", params={"to": "101"})
        assert own.status_code == 200 and 'id="callflow"' in own.text


def test_conference_bridges_and_monitor_say_why_they_cannot_act(manager: httpx.Client) -> None:
    # This switch anchors no media: the pages list what there is and say why an invite or a
    # listen-in cannot happen, next to the control, instead of failing.
    rooms = manager.get(f"/t/{TENANT_A}/conferences")
    assert rooms.status_code == 200 and 'data-room="standup"' in rooms.text
    assert 'data-refresh="/t/acme/conferences?fragment=1"' in rooms.text
    fragment = manager.get(f"/t/{TENANT_A}/conferences", params={"fragment": "1"})
    assert "<html" not in fragment.text and 'data-room="standup"' in fragment.text
    token = csrf_of(rooms.text)
    bad = manager.post(
        f"/t/{TENANT_A}/conferences/standup/invite", data={"number": "call me", "csrf": token}
    )
    assert bad.status_code == 303 and "a+number+to+dial" in bad.headers["location"]
    anchored = manager.post(
        f"/t/{TENANT_A}/conferences/standup/invite", data={"number": "102", "csrf": token}
    )
    shown = manager.get(anchored.headers["location"])
    assert "media anchored" in shown.text and 'role="alert"' in shown.text
    missing = manager.post(
        f"/t/{TENANT_A}/conferences/nosuch/invite", data={"number": "102", "csrf": token}
    )
    assert missing.status_code == 404

    calls = manager.get(f"/t/{TENANT_A}/calls", params={"supervisor": "100"})
    assert 'id="supervisor"' in calls.text and 'value="100"' in calls.text
    scripted = manager.post(
        f"/t/{TENANT_A}/calls/no-such-call/monitor",
        data={"supervisor": "100", "mode": "listen"},
        headers={"x-csrf-token": token},
    )
    assert scripted.status_code == 409 and "not found" in scripted.json()["error"]
    no_phone = manager.post(
        f"/t/{TENANT_A}/calls/no-such-call/monitor",
        data={"supervisor": "", "mode": "listen"},
        headers={"x-csrf-token": token},
    )
    assert no_phone.json()["error"] == "give the extension of your phone"


def test_block_lists_save_whole_or_name_the_bad_line(manager: httpx.Client, live: LiveApi) -> None:
    page = manager.get(f"/t/{TENANT_A}/lists", params={"user": "101"})
    assert page.status_code == 200
    token = csrf_of(page.text)
    bad = manager.post(
        f"/t/{TENANT_A}/lists",
        data={"user": "101", "blocked": "+19005550100\n+1-nope", "allowed": "", "csrf": token},
    )
    assert bad.status_code == 422 and 'id="l-blocked-error"' in bad.text
    assert "line 2" in bad.text
    assert (
        "+19005550100"
        not in manager.get(f"/t/{TENANT_A}/lists?user=101").text.split("<textarea")[1]
    )  # nothing saved
    good = manager.post(
        f"/t/{TENANT_A}/lists",
        data={
            "user": "101",
            "blocked": "+1900*\n+12125550111",
            "allowed": "+19005550100",
            "block_anonymous": "1",
            "csrf": token,
        },
    )
    assert good.status_code == 303
    shown = manager.get(good.headers["location"]).text
    assert "Saved" in shown and "+1900*" in shown and "checked" in shown
    # The switch routes with it at once: the explain page says the caller is blocked.
    why = manager.get(f"/t/{TENANT_A}/explain", params={"to": "101", "from": "+12125550111"})
    decisions = re.search(r'<ol id="decisions">.*?</ol>', why.text, re.S)
    assert decisions is not None and "block" in decisions.group(0).lower(), why.text
    # An office manager reads the tenant's own list but may not change it (the API's rule).
    tenant_list = manager.get(f"/t/{TENANT_A}/lists").text
    assert "may read these lists, not change them" in tenant_list
    refused = manager.post(f"/t/{TENANT_A}/lists", data={"blocked": "+1900*", "csrf": token})
    assert refused.status_code == 403


def test_queue_board_shows_callers_waiting_agents_and_todays_figures(
    manager: httpx.Client, live: LiveApi
) -> None:
    page = manager.get(f"/t/{TENANT_A}/queues")
    assert page.status_code == 200
    assert 'data-refresh="/t/acme/queues?fragment=1"' in page.text
    board = manager.get(f"/t/{TENANT_A}/queues", params={"fragment": "1"}).text
    assert "<html" not in board and 'data-queue="support"' in board
    waiting = re.search(r'<tr data-call="c-3">.*?</tr>', board, re.S)
    assert waiting is not None and "101" in waiting.group(0)  # being offered to 101
    assert 'data-call="c-1"' not in board and 'data-call="c-2"' not in board
    agent_101 = re.search(r'<tr data-agent="101">.*?</tr>', board, re.S)
    agent_102 = re.search(r'<tr data-agent="102">.*?</tr>', board, re.S)
    assert agent_101 is not None and "available" in agent_101.group(0)
    assert "ringing" in agent_101.group(0)
    assert agent_102 is not None and "logged out" in agent_102.group(0)
    tiles = re.sub(r"<[^>]+>|\s+", " ", board)
    assert "3  calls today" in tiles and "1  answered, 1 abandoned" in tiles
    client, _ = sign_in(live, "u101")
    with closing(client):
        assert client.get(f"/t/{TENANT_A}/queues").status_code == 403


def test_music_on_hold_upload_order_intro_messages_randomise(
    live: LiveApi, manager: httpx.Client, tmp_path: Path
) -> None:
    client, _ = sign_in(live, "op")
    with closing(client):
        base = f"/t/{TENANT_A}/music-on-hold"
        token = csrf_of(client.get(base).text)
        not_wav = client.post(
            f"{base}/upload", data={"csrf": token}, files={"audio": ("song.wav", b"ID3 mp3")}
        )
        assert not_wav.status_code == 422 and 'id="audio-error"' in not_wav.text
        assert "not a WAV file" in not_wav.text
        for name in ("a-song", "b-song", "welcome", "news"):
            wav = write_wav(tmp_path / f"{name}.wav").read_bytes()
            up = client.post(
                f"{base}/upload", data={"csrf": token}, files={"audio": (f"{name}.wav", wav)}
            )
            assert up.status_code == 303, up.text
        page = client.get(base).text
        files = re.findall(r'<tr data-file="([^"]+)">', page)
        assert files == ["a-song.wav", "b-song.wav", "news.wav", "welcome.wav"]
        two_intros = client.post(
            base,
            data={"csrf": token, "role-0": "song", "role-2": "intro", "role-3": "intro"},
        )
        assert two_intros.status_code == 422 and 'id="intro-error"' in two_intros.text
        saved = client.post(
            base,
            data={
                "csrf": token,
                "role-0": "song",
                "order-0": "2",
                "role-1": "song",
                "order-1": "1",
                "role-2": "message",
                "role-3": "intro",
                "message_interval": "45",
                "randomise": "1",
            },
        )
        assert saved.status_code == 303, saved.text
        summary = client.get(base).text
        assert "2 song(s) shuffled, after an introduction, with 1 message(s) every 45 s" in summary
        settings = client.get(f"/t/{TENANT_A}/music-on-hold/files/news.wav")
        assert settings.status_code == 200 and settings.content[:4] == b"RIFF"
    # The tenant's document holds the playlist, songs in the order chosen.
    token_api = live.login("moh-reader", "operator")
    moh = live.client(token_api).get(f"/v1/tenants/{TENANT_A}/settings").json()["data"]["moh"]
    assert [Path(p).name for p in moh["songs"]] == ["b-song.wav", "a-song.wav"]
    assert Path(moh["intro"]).name == "welcome.wav" and moh["randomise"] is True
    # An office manager may read it but not change it (the API's rule for the tenant).
    assert "may read the playlist, not change it" in manager.get(base).text
