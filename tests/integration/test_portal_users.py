"""The portal's users, answering-rules and time-frame pages over real HTTP: bad input is
refused with the message at its field and nothing is half-saved; search and paging; the
generated password shown once; CSV import with a per-row report (all rows or none)."""

from __future__ import annotations

import contextlib
import re
import time
import wave
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from softswitch.voicemail.events import MailboxAddress
from storage.voicemail import StoredMessage
from tests.integration.apikit import TENANT_A, LiveApi, live_api
from tests.integration.portalkit import add_login, csrf_of, sign_in

pytestmark = pytest.mark.integration

USERS = f"/t/{TENANT_A}/users"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveApi]:
    api_gen = live_api(request, tmp_path_factory)
    api = next(api_gen)
    add_login(api, "manager", "office_manager", tenants=[TENANT_A])
    add_login(api, "u101", "user", tenants=[TENANT_A], extension="101")
    yield api
    next(api_gen, None)


@pytest.fixture(scope="module")
def manager(live: LiveApi) -> Iterator[httpx.Client]:
    client, answer = sign_in(live, "manager")
    assert answer.status_code == 303
    with closing(client):
        yield client


def _api(live: LiveApi, client: httpx.Client) -> httpx.Client:
    return live.client(client.cookies["softswitch_session"])


def _error_at(page: str, field: str) -> str:
    """The message shown at form field ``field`` (the input is marked invalid)."""
    assert re.search(rf'id="f-{field}"[^>]*aria-invalid="true"', page), f"{field} not invalid"
    found = re.search(rf'<p class="error" id="e-{field}">([^<]*)</p>', page)
    assert found is not None, f"no message at {field}"
    return found.group(1)


def _post(client: httpx.Client, path: str, data: dict[str, str]) -> httpx.Response:
    form = client.get(path)
    assert form.status_code == 200, form.text
    return client.post(path, data={"csrf": csrf_of(form.text), **data})


def test_add_user_refuses_bad_fields_at_the_field_and_shows_the_password_once(
    live: LiveApi, manager: httpx.Client
) -> None:
    api = _api(live, manager)
    bad = _post(
        manager,
        f"{USERS}/new",
        {"extension": "150", "display_name": "Ann", "caller_id": "+1 555 12"},
    )
    assert bad.status_code == 422
    assert "phone number" in _error_at(bad.text, "caller_id")
    assert 'value="Ann"' in bad.text  # what was typed stays
    assert api.get(f"/v1/tenants/{TENANT_A}/users/150").status_code == 404  # nothing saved
    taken = _post(manager, f"{USERS}/new", {"extension": "101", "display_name": "Dup"})
    assert taken.status_code == 409 and "exists" in _error_at(taken.text, "extension")
    short = _post(manager, f"{USERS}/new", {"extension": "1"})
    assert "2 to 8 digits" in _error_at(short.text, "extension")

    made = _post(
        manager,
        f"{USERS}/new",
        {"extension": "150", "display_name": "Ann Lee", "caller_id": "+14155550150"},
    )
    assert made.status_code == 201, made.text
    password = re.search(r'<code id="sip-password">([^<]+)</code>', made.text)
    assert password is not None and len(password.group(1)) == 16
    assert "shown this once" in made.text and "acme.test" in made.text
    stored = api.get(f"/v1/tenants/{TENANT_A}/users/150").json()["data"]
    assert stored["password"] == "***" and stored["caller_id"] == "+14155550150"
    welcome = manager.get(f"{USERS}/150/welcome")
    assert welcome.status_code == 200 and password.group(1) not in welcome.text

    # Editing: a bad caller ID is refused at its field and the stored user is unchanged.
    edit = manager.get(f"{USERS}/150")
    version = re.search(r'name="version" value="(\d+)"', edit.text)
    assert version is not None
    refused = manager.post(
        f"{USERS}/150",
        data={
            "csrf": csrf_of(edit.text),
            "version": version.group(1),
            "display_name": "Ann B. Lee",
            "caller_id": "415",
        },
    )
    assert refused.status_code == 422 and "E.164" in _error_at(refused.text, "caller_id")
    assert api.get(f"/v1/tenants/{TENANT_A}/users/150").json()["data"]["display_name"] == "Ann Lee"
    saved = manager.post(
        f"{USERS}/150",
        data={"csrf": csrf_of(edit.text), "version": version.group(1), "display_name": "Ann B"},
    )
    assert saved.status_code == 303
    after = api.get(f"/v1/tenants/{TENANT_A}/users/150").json()["data"]
    assert after["display_name"] == "Ann B" and "caller_id" not in after


def test_import_reports_each_row_and_saves_all_or_nothing_then_lists_page_by_page(
    live: LiveApi, manager: httpx.Client
) -> None:
    api = _api(live, manager)
    form = manager.get(f"{USERS}/import")
    rows = ["extension,display name,caller id"]
    rows += [f"{3000 + i},Imported {i:03},+1415555{3000 + i}" for i in range(119)]
    bad = [*rows, "3119,Broken,+1 555", "3000,Twice,"]
    answer = manager.post(
        f"{USERS}/import",
        data={"csrf": csrf_of(form.text)},
        files={"file": ("team.csv", "\n".join(bad).encode(), "text/csv")},
    )
    assert answer.status_code == 422
    assert "2 row(s) with errors: nothing was imported" in answer.text
    assert "duplicate of row 2" in answer.text and "phone number" in answer.text
    assert api.get(f"/v1/tenants/{TENANT_A}/users/3000").status_code == 404

    answer = manager.post(
        f"{USERS}/import",
        data={"csrf": csrf_of(form.text)},
        files={"file": ("team.csv", "\n".join(rows).encode(), "text/csv")},
    )
    assert answer.status_code == 200 and "119 user(s) imported" in answer.text
    generated = re.findall(r"<td><code>([A-Za-z0-9]{16})</code></td>", answer.text)
    assert len(generated) == 119  # one generated password per row, shown in this report
    assert api.get(f"/v1/tenants/{TENANT_A}/users/3118").status_code == 200

    first = manager.get(USERS)
    assert first.status_code == 200
    assert first.text.count("<tr data-user=") == 50
    next_link = re.search(r'rel="next" href="([^"]+)"', first.text)
    assert next_link is not None
    second = manager.get(next_link.group(1).replace("&amp;", "&"))
    assert second.text.count("<tr data-user=") == 50
    assert set(re.findall(r'data-user="(\d+)"', first.text)).isdisjoint(
        re.findall(r'data-user="(\d+)"', second.text)
    )
    found = manager.get(USERS, params={"q": "imported 11"})
    shown = re.findall(r'data-user="(\d+)"', found.text)
    assert shown == [str(3110 + i) for i in range(9)]  # "Imported 110" .. "Imported 118"


def test_answering_rules_refuse_a_bad_number_and_reorder_and_toggle(
    live: LiveApi, manager: httpx.Client
) -> None:
    api = _api(live, manager)
    rules = f"{USERS}/102/rules"
    made = _post(
        manager,
        f"/t/{TENANT_A}/time-frames/new?owner=102",
        {
            "name": "lunch",
            "kind": "days_of_week",
            "timezone": "UTC",
            "enabled": "on",
            "day_mon": "12:00-13:00",
        },
    )
    assert made.status_code == 303, made.text
    before = api.get(f"/v1/tenants/{TENANT_A}/answering/102").json()
    bad = _post(
        manager,
        f"{rules}/new",
        {
            "time_frame": "lunch",
            "enabled": "on",
            "when_busy_kind": "offnet",
            "when_busy_target": "+1 555 0",
        },
    )
    assert bad.status_code == 422
    assert "wrong length" in _error_at(bad.text, "when_busy_target")
    assert api.get(f"/v1/tenants/{TENANT_A}/answering/102").json() == before
    for frame, target in (("lunch", "+14155550177"), ("lunch", "103")):
        kind = "offnet" if target.startswith("+") else "user"
        done = _post(
            manager,
            f"{rules}/new",
            {
                "time_frame": frame,
                "enabled": "on",
                "when_busy_kind": kind,
                "when_busy_target": target,
                "simring": "on",
                "include_extension": "on",
                "ring_all_devices": "on",
                "leg0_kind": "number",
                "leg0_target": "+14155550188",
                "leg0_delay": "10",
            },
        )
        assert done.status_code == 303, done.text
    stored = api.get(f"/v1/tenants/{TENANT_A}/answering/102").json()["data"]["rules"]
    assert [r["forward"]["when_busy"]["target"] for r in stored] == ["+14155550177", "103"]
    assert stored[0]["simring"]["extra"] == [
        {"kind": "number", "target": "+14155550188", "delay": 10}
    ]
    page = manager.get(rules)
    version = re.search(r'name="version" value="(\d+)"', page.text)
    assert version is not None
    moved = manager.post(
        f"{rules}/move",
        data={
            "csrf": csrf_of(page.text),
            "version": version.group(1),
            "position": "2",
            "direction": "up",
        },
    )
    assert moved.status_code == 303
    stored = api.get(f"/v1/tenants/{TENANT_A}/answering/102").json()["data"]["rules"]
    assert [r["forward"]["when_busy"]["target"] for r in stored] == ["103", "+14155550177"]
    # A stale page (the version before the move) changes nothing.
    stale = manager.post(
        f"{rules}/1/toggle", data={"csrf": csrf_of(page.text), "version": version.group(1)}
    )
    assert stale.status_code == 412
    page = manager.get(rules)
    version = re.search(r'name="version" value="(\d+)"', page.text)
    assert version is not None
    toggled = manager.post(
        f"{rules}/1/toggle", data={"csrf": csrf_of(page.text), "version": version.group(1)}
    )
    assert toggled.status_code == 303
    stored = api.get(f"/v1/tenants/{TENANT_A}/answering/102").json()["data"]["rules"]
    assert stored[0]["enabled"] is False and stored[1].get("enabled", True) is True


def test_time_frames_refuse_an_overlap_at_the_day_and_toggle_in_bulk(
    live: LiveApi, manager: httpx.Client
) -> None:
    api = _api(live, manager)
    frames = f"/t/{TENANT_A}/time-frames"
    bad = _post(
        manager,
        f"{frames}/new",
        {
            "name": "office",
            "kind": "days_of_week",
            "timezone": "Europe/Berlin",
            "enabled": "on",
            "day_mon": "09:00-17:00",
            "day_tue": "09:00-12:00, 11:00-13:00",
        },
    )
    assert bad.status_code == 422
    assert _error_at(bad.text, "day_tue") == "tue: 09:00-12:00 overlaps 11:00-13:00"
    zone = _post(
        manager,
        f"{frames}/new",
        {"name": "office", "kind": "always", "timezone": "Mars/Olympus", "enabled": "on"},
    )
    assert "unknown timezone" in _error_at(zone.text, "timezone")
    listing = api.get(f"/v1/tenants/{TENANT_A}/time-frames", params={"q": "office"})
    assert listing.json()["items"] == []  # nothing saved
    for name, data in (
        ("office", {"kind": "days_of_week", "day_mon": "09:00-17:00", "day_fri": "22:00-02:00"}),
        (
            "xmas",
            {"kind": "specific_dates", "periods": "2026-12-24 00:00 - 2026-12-27 00:00 yearly"},
        ),
        ("holidays", {"kind": "holidays", "country": "US"}),
    ):
        made = _post(
            manager, f"{frames}/new", {"name": name, "timezone": "UTC", "enabled": "on", **data}
        )
        assert made.status_code == 303, made.text
    page = manager.get(frames)
    assert page.status_code == 200 and "Fri: office 22:00-24:00" in page.text
    assert "Sat: office 00:00-02:00" in page.text  # the overnight range runs on
    off = manager.post(
        f"{frames}/toggle",
        data={"csrf": csrf_of(page.text), "frame": ["office", "xmas"], "action": "off"},
    )
    assert off.status_code == 303
    stored = {
        o["key"]: o["data"].get("enabled", True)
        for o in api.get(f"/v1/tenants/{TENANT_A}/time-frames").json()["items"]
    }
    assert stored["office"] is False and stored["xmas"] is False and stored["holidays"] is True


def test_a_basic_user_sees_only_their_own_user(live: LiveApi) -> None:
    client, _ = sign_in(live, "u101")
    with closing(client):
        listing = client.get(USERS)  # the API's scope: their own user only
        assert re.findall(r'data-user="(\d+)"', listing.text) == ["101"]
        assert "Add user" not in listing.text
        assert client.get(f"{USERS}/102").status_code == 404
        assert client.get(f"{USERS}/new").status_code == 403
        assert client.get(f"{USERS}/102/rules").status_code == 404


def test_numbers_inventory_edit_import_and_export(live: LiveApi, manager: httpx.Client) -> None:
    api = _api(live, manager)
    numbers = f"/t/{TENANT_A}/numbers"
    listing = manager.get(numbers)
    assert listing.status_code == 200 and "+14155550100" in listing.text
    bad = _post(
        manager,
        f"{numbers}/new",
        {"number": "+1 415 55", "treatment": "user", "destination": "101"},
    )
    assert bad.status_code == 422 and _error_at(bad.text, "number")
    offnet = _post(
        manager,
        f"{numbers}/new",
        {"number": "+14155550111", "treatment": "offnet", "destination": "12"},
    )
    assert offnet.status_code == 422 and _error_at(offnet.text, "destination")
    assert api.get(f"/v1/tenants/{TENANT_A}/numbers/+14155550111").status_code == 404
    made = _post(
        manager,
        f"{numbers}/new",
        {
            "number": "+14155550111",
            "treatment": "user",
            "destination": "101",
            "notes": "front desk",
        },
    )
    assert made.status_code == 303, made.text
    edit = manager.get(f"{numbers}/%2B14155550111")
    saved = manager.post(
        f"{numbers}/%2B14155550111",
        data={
            "csrf": csrf_of(edit.text),
            "version": "1",
            "treatment": "user",
            "destination": "101",
            "caller_id_prefix": "Sales",
            "notes": "front desk",
        },
    )
    assert saved.status_code == 303, saved.text
    stored = api.get(f"/v1/tenants/{TENANT_A}/numbers/+14155550111").json()["data"]
    assert stored["caller_id_prefix"] == "Sales"

    form = manager.get(f"{numbers}/import")
    upload = "number,treatment,destination\n+14155550112,user,102\n+14155550113,queue,\n"
    report = manager.post(
        f"{numbers}/import",
        data={"csrf": csrf_of(form.text)},
        files={"file": ("dids.csv", upload.encode(), "text/csv")},
    )
    assert report.status_code == 422 and "1 row(s) with errors" in report.text
    assert api.get(f"/v1/tenants/{TENANT_A}/numbers/+14155550112").status_code == 404
    upload = (
        "number,treatment,destination\n+14155550112,user,102\n+14155550113,offnet,+12125550100\n"
    )
    report = manager.post(
        f"{numbers}/import",
        data={"csrf": csrf_of(form.text)},
        files={"file": ("dids.csv", upload.encode(), "text/csv")},
    )
    assert report.status_code == 200 and "2 number(s) imported" in report.text
    exported = manager.get(f"{numbers}.csv")
    assert exported.headers["content-type"].startswith("text/csv")
    lines = exported.text.splitlines()
    assert lines[0] == "number,treatment,destination,caller_id_prefix,notes"
    assert "+14155550111,user,101,Sales,front desk" in lines
    assert "+14155550113,offnet,+12125550100,," in lines


def test_admins_with_permissions_tokens_shown_once_and_the_audit_log(
    live: LiveApi, manager: httpx.Client
) -> None:
    admins = f"/t/{TENANT_A}/admins"
    short = _post(manager, f"{admins}/new", {"name": "desk", "role": "user", "password": "short"})
    assert short.status_code == 422 and "at least 8" in _error_at(short.text, "password")
    taken = _post(
        manager,
        f"{admins}/new",
        {"name": "u101", "role": "supervisor", "password": "long enough 1"},
    )
    assert taken.status_code == 409 and _error_at(taken.text, "name")
    made = _post(
        manager,
        f"{admins}/new",
        {
            "name": "sitemgr",
            "role": "site_manager",
            "site": "north",
            "password": "long enough 1",
            "perm_users_r": "on",
            "perm_users_u": "on",
            "perm_routing_r": "on",
        },
    )
    assert made.status_code == 303, made.text
    login = _api(live, manager).get("/v1/admins/sitemgr").json()
    assert login["permissions"]["users"] == "ru" and login["permissions"]["numbers"] == ""
    page = manager.get(f"{admins}/sitemgr")
    assert 'name="perm_users_u" aria-label="update users" checked' in page.text
    assert 'name="perm_users_c" aria-label="create users">' in page.text

    created = manager.post(
        f"{admins}/sitemgr/tokens",
        data={"csrf": csrf_of(page.text), "description": "wallboard", "expires_days": "30"},
    )
    assert created.status_code == 201
    token = re.search(r'<code id="api-token" class="wrap">([^<]+)</code>', created.text)
    assert token is not None
    assert live.client(token.group(1)).get("/v1/me").json()["name"] == "sitemgr"
    again = manager.get(f"{admins}/sitemgr")
    assert token.group(1) not in again.text and "wallboard" in again.text
    token_id = re.search(r'data-token="([^"]+)"', again.text)
    assert token_id is not None
    revoked = manager.post(
        f"/t/{TENANT_A}/tokens/{token_id.group(1)}/revoke", data={"csrf": csrf_of(again.text)}
    )
    assert revoked.status_code == 303
    assert live.client(token.group(1)).get("/v1/me").status_code == 401

    assert _post(manager, f"{USERS}/new", {"extension": "151"}).status_code == 201
    audit = manager.get(f"/t/{TENANT_A}/audit", params={"actor": "api:manager", "kind": "user"})
    assert audit.status_code == 200 and "user 151" in audit.text and "created" in audit.text
    assert "password" not in audit.text.split("<tbody>")[1]  # field names of changes only


def test_a_basic_user_changes_their_own_name_and_sip_password(live: LiveApi) -> None:
    client, _ = sign_in(live, "u101")
    with closing(client):
        page = client.get(f"/t/{TENANT_A}/me")
        assert page.status_code == 200 and "My answering rules" in page.text
        differ = client.post(
            f"/t/{TENANT_A}/me",
            data={
                "csrf": csrf_of(page.text),
                "display_name": "Bea",
                "password": "secret one",
                "password_again": "secret two",
            },
        )
        assert differ.status_code == 422 and _error_at(differ.text, "password_again")
        api = live.client(client.cookies["softswitch_session"])
        assert "display_name" not in api.get(f"/v1/tenants/{TENANT_A}/users/101").json()["data"]
        done = client.post(
            f"/t/{TENANT_A}/me",
            data={
                "csrf": csrf_of(page.text),
                "display_name": "Bea",
                "password": "secret one",
                "password_again": "secret one",
            },
        )
        assert done.status_code == 303
        assert api.get(f"/v1/tenants/{TENANT_A}/users/101").json()["data"]["display_name"] == "Bea"
        assert client.get(f"/t/{TENANT_A}/admins").status_code == 403
        assert client.get(f"/t/{TENANT_A}/audit").status_code == 403
        own = client.get(f"/t/{TENANT_A}/admins/u101")
        assert own.status_code == 200 and "perm_" not in own.text


def _leave_message(live: LiveApi, extension: str, message_id: str, made: list[Path]) -> bytes:
    """A voice message in ``extension``'s mailbox, as the switch stores one (its file is
    added to ``made``, for the test to remove: the mailboxes live in the working
    directory)."""
    assert live.switch is not None
    mailboxes = live.switch.voicemail
    audio = f"{TENANT_A}/{extension}/{message_id}.wav"
    path = mailboxes.root / audio
    path.parent.mkdir(parents=True, exist_ok=True)
    made.append(path)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x00\x10" * 8000)
    message = StoredMessage(
        message_id,
        TENANT_A,
        extension,
        "new",
        "+14155550123",
        "Caller",
        time.time(),
        1.0,
        False,
        audio,
    )

    async def store() -> None:
        await mailboxes.store.add_voice_message(message)
        await mailboxes.reload(MailboxAddress(TENANT_A, extension))

    live.call(store())
    return path.read_bytes()


def test_a_basic_user_plays_and_deletes_their_own_voicemail(live: LiveApi) -> None:
    made: list[Path] = []
    try:
        _voicemail(live, made)
    finally:
        for path in made:
            path.unlink(missing_ok=True)
            for parent in (path.parent, path.parent.parent):
                with contextlib.suppress(OSError):
                    parent.rmdir()  # only when empty: nothing but this test's files


def _voicemail(live: LiveApi, made: list[Path]) -> None:
    own = _leave_message(live, "101", "m-101", made)
    _leave_message(live, "102", "m-102", made)
    client, _ = sign_in(live, "u101")
    with closing(client):
        page = client.get(f"/t/{TENANT_A}/users/101/voicemail")
        assert page.status_code == 200 and 'data-message="m-101"' in page.text
        src = re.search(r'<audio controls preload="none" src="([^"]+)"', page.text)
        assert src is not None
        audio = client.get(src.group(1))
        assert audio.headers["content-type"] == "audio/wav" and audio.content == own
        assert client.get(f"/t/{TENANT_A}/users/102/voicemail").status_code == 404
        assert client.get(f"/t/{TENANT_A}/users/102/voicemail/m-102.wav").status_code == 404
        api = live.client(client.cookies["softswitch_session"])
        assert api.get(f"/v1/tenants/{TENANT_A}/mailboxes/102/messages").status_code == 404
        gone = client.post(
            f"/t/{TENANT_A}/users/101/voicemail/m-101/delete", data={"csrf": csrf_of(page.text)}
        )
        assert gone.status_code == 303
        assert "m-101" not in client.get(f"/t/{TENANT_A}/users/101/voicemail").text
        kept = api.get(
            f"/v1/tenants/{TENANT_A}/mailboxes/101/messages", params={"folder": "deleted"}
        ).json()
        assert [m["id"] for m in kept] == ["m-101"]  # in the deleted folder until purged
