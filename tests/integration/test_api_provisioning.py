"""Provisioning over the admin API, on SQLite and on PostgreSQL: every kind created, read,
listed, replaced, patched and deleted (table-driven); ETag / If-Match; two concurrent edits
(one 412, one audit entry); bad bodies (422 naming the field, nothing applied); the file
mode's read-only API; who may provision what; the audit log."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.apikit import TENANT_A, TENANT_B, LiveApi, live_api, role_tokens

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveApi]:
    yield from live_api(request, tmp_path_factory)


@pytest.fixture(scope="module")
def tokens(live: LiveApi) -> dict[str, str]:
    return role_tokens(live)


# (collection, body of a new object, its key in the path, a PATCH, the field it changes)
KINDS: list[tuple[str, dict[str, Any], str, dict[str, Any], str]] = [
    (
        "users",
        {"extension": "150", "password": "secret150", "display_name": "New Hire"},
        "150",
        {"display_name": "Renamed"},
        "display_name",
    ),
    (
        "trunks",
        {
            "name": "carrier2",
            "inbound_addresses": ["192.0.2.0/24"],
            "gateways": [{"host": "192.0.2.1", "port": 15060}],
        },
        "carrier2",
        {"inbound_addresses": ["198.51.100.0/24"]},
        "inbound_addresses",
    ),
    (
        "conferences",
        {"name": "allhands", "extension": "170"},
        "allhands",
        {"max_participants": 12},
        "max_participants",
    ),
    (
        "time-frames",
        {
            "name": "lunch",
            "when": {"kind": "days_of_week", "days": {"mon": [{"start": "12:00", "end": "13:00"}]}},
        },
        "lunch",
        {"timezone": "Europe/Berlin"},
        "timezone",
    ),
    (
        "numbers",
        {"number": "+14155550111", "treatment": "user", "destination": "101"},
        "+14155550111",
        {"destination": "102"},
        "destination",
    ),
    (
        "disaster-plans",
        {"name": "Storm", "numbers": [{"number": "+14155550100", "forward_to": "+12125550100"}]},
        "Storm",
        {"region": "West"},
        "region",
    ),
    (
        "sites",
        {"name": "east", "address": "1 Main St", "timezone": "America/New_York"},
        "east",
        {"emergency_caller_id": "+14155550123"},
        "emergency_caller_id",
    ),
    (
        "ring-groups",
        {"name": "Desk", "extension": "660", "members": [{"target": "101"}]},
        "Desk",
        {"strategy": "sequence"},
        "strategy",
    ),
]


def _document_path(collection: str, key: str) -> str:
    path = f"/v1/tenants/{TENANT_A}/{collection}/{key}"
    return path + "/settings" if collection in ("conferences", "disaster-plans") else path


@pytest.mark.parametrize(
    ("collection", "body", "key", "patch", "changed"), KINDS, ids=[k[0] for k in KINDS]
)
def test_each_kind_through_its_life(
    live: LiveApi,
    tokens: dict[str, str],
    collection: str,
    body: dict[str, Any],
    key: str,
    patch: dict[str, Any],
    changed: str,
) -> None:
    base = f"/v1/tenants/{TENANT_A}/{collection}"
    with live.client(tokens["operator"]) as op:
        made = op.post(base, json=body)
        assert made.status_code == 201, made.text
        assert made.json()["key"] == key and made.headers["etag"]
        assert op.post(base, json=body).status_code == 409
        got = op.get(_document_path(collection, key))
        assert got.status_code == 200 and got.headers["etag"] == made.headers["etag"]
        if collection not in ("conferences", "disaster-plans"):
            listed = op.get(base, params={"q": key[-3:]}).json()
            assert key in [i["key"] for i in listed["items"]]
        patched = op.patch(f"{base}/{key}", json=patch, headers={"If-Match": got.headers["etag"]})
        assert patched.status_code == 200, patched.text
        assert patched.json()["data"][changed] == patch[changed]
        # the ETag read before the patch is stale now
        stale = op.put(f"{base}/{key}", json=body, headers={"If-Match": got.headers["etag"]})
        assert stale.status_code == 412
        # replace with what was read back (secrets masked): the secret stays as it was
        current = op.get(_document_path(collection, key))
        replaced = op.put(
            f"{base}/{key}",
            json=current.json()["data"],
            headers={"If-Match": current.headers["etag"]},
        )
        assert replaced.status_code == 200, replaced.text
        assert op.delete(f"{base}/{key}").status_code == 204
        assert op.get(_document_path(collection, key)).status_code == 404
        assert op.delete(f"{base}/{key}").status_code == 404
        trail = op.get("/v1/audit", params={"tenant": TENANT_A, "key": key}).json()["items"]
        assert [e["action"] for e in trail][:2] == ["delete", "update"]
        assert trail[-1]["action"] == "create" and trail[-1]["actor"] == "api:t-operator"


def test_a_user_created_is_live_and_its_secret_is_masked(
    live: LiveApi, tokens: dict[str, str]
) -> None:
    with live.client(tokens["operator"]) as op:
        made = op.post(
            f"/v1/tenants/{TENANT_A}/users", json={"extension": "160", "password": "pw-160"}
        )
        assert made.status_code == 201
        assert made.json()["data"]["password"] == "***"
        assert live.switch is not None
        tenant = (
            live.switch.config.tenant_by_name(TENANT_A)
            if hasattr(live.switch.config, "tenant_by_name")
            else next(t for t in live.switch.config.tenants if t.name == TENANT_A)
        )
        user = tenant.user_by_extension("160")
        assert user is not None and user.password is not None
        assert user.password.get_secret_value() == "pw-160"
        # PUT back what GET gave: the password is kept, not set to "***"
        got = op.get(f"/v1/tenants/{TENANT_A}/users/160")
        op.put(
            f"/v1/tenants/{TENANT_A}/users/160", json={**got.json()["data"], "display_name": "X"}
        )
        tenant = next(t for t in live.switch.config.tenants if t.name == TENANT_A)
        assert tenant.user_by_extension("160").password.get_secret_value() == "pw-160"  # type: ignore[union-attr]
        assert op.delete(f"/v1/tenants/{TENANT_A}/users/160").status_code == 204


def test_two_concurrent_edits_one_wins_one_412_one_audit_entry(
    live: LiveApi, tokens: dict[str, str]
) -> None:
    path = f"/v1/tenants/{TENANT_A}/users/102"
    with live.client(tokens["operator"]) as op:
        etag = op.get(path).headers["etag"]
        before = op.get(
            "/v1/audit", params={"tenant": TENANT_A, "kind": "user", "key": "102"}
        ).json()["total"]
    results: list[int] = []
    barrier = threading.Barrier(2)

    def edit(name: str) -> None:
        with live.client(tokens["operator"]) as client:
            barrier.wait()
            answer = client.patch(path, json={"display_name": name}, headers={"If-Match": etag})
            results.append(answer.status_code)

    threads = [threading.Thread(target=edit, args=(n,)) for n in ("Alice", "Bob")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200, 412]
    with live.client(tokens["operator"]) as op:
        trail = op.get(
            "/v1/audit", params={"tenant": TENANT_A, "kind": "user", "key": "102"}
        ).json()
        assert trail["total"] == before + 1
        winner = op.get(path).json()["data"]["display_name"]
        assert trail["items"][0]["after"]["display_name"] == winner


@pytest.mark.parametrize(
    ("collection", "body", "field"),
    [
        ("users", {"extension": "1x", "password": "pw"}, "body.extension"),
        ("users", {"extension": "151", "password": "pw", "site": "nowhere"}, "body.site"),
        (
            "numbers",
            {"number": "+14155550112", "treatment": "user", "destination": "999"},
            "body.destination",
        ),
        ("numbers", {"number": "not-a-number", "destination": "101"}, "body.number"),
        ("sites", {"name": "south", "timezone": "Mars/Olympus"}, "body.timezone"),
        ("trunks", {"name": "t1", "nonsense": 1}, "body.nonsense"),
    ],
)
def test_bad_bodies_name_the_field_and_change_nothing(
    live: LiveApi, tokens: dict[str, str], collection: str, body: dict[str, Any], field: str
) -> None:
    base = f"/v1/tenants/{TENANT_A}/{collection}"
    with live.client(tokens["operator"]) as op:
        revision = op.get("/v1/audit", params={"limit": 1}).json()["items"][0]["revision"]
        answer = op.post(base, json=body)
        assert answer.status_code == 422, answer.text
        assert answer.json()["code"] == "validation_error"
        assert field in [e["field"] for e in answer.json()["errors"]], answer.text
        assert op.get("/v1/audit", params={"limit": 1}).json()["items"][0]["revision"] == revision


def test_deleting_what_is_referred_to_is_refused(live: LiveApi, tokens: dict[str, str]) -> None:
    with live.client(tokens["operator"]) as op:
        # +14155550100 routes to user 100: deleting the user would leave the DID dangling
        answer = op.delete(f"/v1/tenants/{TENANT_A}/users/100")
        assert answer.status_code == 422
        assert any(e["field"].startswith("number[") for e in answer.json()["errors"]), answer.text
        assert op.get(f"/v1/tenants/{TENANT_A}/users/100").status_code == 200


def test_tenants_created_replaced_and_deleted(live: LiveApi, tokens: dict[str, str]) -> None:
    with live.client(tokens["reseller"]) as reseller:
        made = reseller.post(
            "/v1/tenants", json={"name": "initech", "domain": "initech.test", "max_calls": 5}
        )
        assert made.status_code == 201, made.text
        # the reseller reaches its new customer
        assert reseller.get("/v1/tenants/initech").json()["max_calls"] == 5
        settings = reseller.get("/v1/tenants/initech/settings")
        patched = reseller.patch(
            "/v1/tenants/initech",
            json={"max_calls_per_second": 2.5},
            headers={"If-Match": settings.headers["etag"]},
        )
        assert patched.status_code == 200, patched.text
        assert reseller.get("/v1/tenants/initech").json()["max_calls_per_second"] == 2.5
        dup = reseller.post("/v1/tenants", json={"name": "initech2", "domain": "acme.test"})
        assert dup.status_code == 422 and dup.json()["errors"][0]["field"] == "body.domain"
        user = reseller.post(
            "/v1/tenants/initech/users", json={"extension": "10", "password": "pw10"}
        )
        assert user.status_code == 201
        assert reseller.delete("/v1/tenants/initech").status_code == 403  # reseller: "cru"
    with live.client(tokens["operator"]) as op:
        assert op.delete("/v1/tenants/initech").status_code == 204
        assert op.get("/v1/tenants/initech").status_code == 404
    with live.client(tokens["office_manager"]) as manager:
        assert (
            manager.post("/v1/tenants", json={"name": "x", "domain": "x.test"}).status_code == 403
        )


# -- who may provision what -------------------------------------------------------------------

# (name, method, path on tenant {t}, body, status when allowed)
REQUESTS: list[tuple[str, str, str, dict[str, Any] | None, int]] = [
    ("list users", "GET", "/v1/tenants/{t}/users", None, 200),
    ("get user", "GET", "/v1/tenants/{t}/users/no-such", None, 404),
    ("patch user", "PATCH", "/v1/tenants/{t}/users/no-such", {"display_name": "x"}, 404),
    ("delete user", "DELETE", "/v1/tenants/{t}/users/no-such", None, 404),
    ("list numbers", "GET", "/v1/tenants/{t}/numbers", None, 200),
    ("create number", "POST", "/v1/tenants/{t}/numbers", {"number": "bad"}, 422),
    ("list trunks", "GET", "/v1/tenants/{t}/trunks", None, 200),
    ("create trunk", "POST", "/v1/tenants/{t}/trunks", {"name": ""}, 422),
    ("list time frames", "GET", "/v1/tenants/{t}/time-frames", None, 200),
    ("plan settings", "GET", "/v1/tenants/{t}/disaster-plans/Office%20outage/settings", None, 200),
    ("delete plan", "DELETE", "/v1/tenants/{t}/disaster-plans/no-such", None, 404),
    ("list sites", "GET", "/v1/tenants/{t}/sites", None, 200),
    ("create site", "POST", "/v1/tenants/{t}/sites", {"name": ""}, 422),
    ("tenant settings", "GET", "/v1/tenants/{t}/settings", None, 200),
    ("patch tenant", "PATCH", "/v1/tenants/{t}", {"max_calls": 0}, 422),
    ("audit", "GET", "/v1/audit?tenant={t}", None, 200),
    ("welcome", "GET", "/v1/tenants/{t}/users/no-such/welcome", None, 404),
    ("password reset", "POST", "/v1/tenants/{t}/users/no-such/password-reset", None, 404),
    (
        "toggle",
        "POST",
        "/v1/tenants/{t}/time-frame-toggle",
        {"names": ["x"], "enabled": False},
        404,
    ),
    ("range", "POST", "/v1/tenants/{t}/number-ranges", {"first": "bad", "count": 1}, 422),
    (
        "what-if",
        "POST",
        "/v1/tenants/{t}/what-if",
        {"changes": [{"kind": "x", "data": None}], "numbers": ["1"]},
        422,
    ),
]
DENIED: dict[str, set[str]] = {
    "operator": set(),
    "reseller": set(),
    "office_manager": {"patch tenant", "create trunk"},
    "site_manager": {
        "create number",
        "create trunk",
        "delete plan",
        "create site",
        "patch tenant",
        "audit",
        "delete user",
        "range",
        "what-if",
    },
    "supervisor": {
        "patch user",
        "delete user",
        "list numbers",
        "create number",
        "create trunk",
        "password reset",
        "toggle",
        "range",
        "what-if",
        "list time frames",
        "plan settings",
        "delete plan",
        "list sites",
        "create site",
        "patch tenant",
        "audit",
    },
    "user": {
        "delete user",
        "list numbers",
        "create number",
        "create trunk",
        "plan settings",
        "delete plan",
        "list sites",
        "create site",
        "patch tenant",
        "audit",
        "range",
        "what-if",
    },
}


@pytest.mark.parametrize("role", list(DENIED))
def test_each_role_provisions_what_its_role_allows(
    live: LiveApi, tokens: dict[str, str], role: str
) -> None:
    with live.client(tokens[role]) as client:
        for name, method, path, body, ok in REQUESTS:
            answer = client.request(method, path.format(t=TENANT_A), json=body)
            expected = 403 if name in DENIED[role] else ok
            assert answer.status_code == expected, (role, name, answer.text)


@pytest.mark.parametrize("role", [r for r in DENIED if r != "operator"])
def test_another_tenants_objects_are_not_found(
    live: LiveApi, tokens: dict[str, str], role: str
) -> None:
    with live.client(tokens[role]) as client:
        for name, method, path, body, _ in REQUESTS:
            if name == "audit":
                continue
            answer = client.request(method, path.format(t=TENANT_B), json=body)
            assert answer.status_code == 404, (role, name, answer.text)
        # by guessed identifiers: globex's user 200, its number, its plan
        for path in (
            "users/200",
            "numbers/+16465550100",
            "disaster-plans/Office%20outage/settings",
        ):
            assert client.get(f"/v1/tenants/{TENANT_B}/{path}").status_code == 404
        # and the audit log shows none of globex's changes
        trail = (
            client.get("/v1/audit").json()
            if role not in ("site_manager", "supervisor", "user")
            else None
        )
        if trail is not None:
            assert all(e["tenant"] != TENANT_B for e in trail["items"])


def test_scoped_roles_see_only_their_extensions(live: LiveApi, tokens: dict[str, str]) -> None:
    with live.client(tokens["user"]) as user:
        listed = user.get(f"/v1/tenants/{TENANT_A}/users").json()
        assert [i["key"] for i in listed["items"]] == ["101"]
        assert user.get(f"/v1/tenants/{TENANT_A}/users/102").status_code == 404
        own = user.patch(f"/v1/tenants/{TENANT_A}/users/101", json={"display_name": "Me"})
        assert own.status_code == 200, own.text
        escalate = user.patch(f"/v1/tenants/{TENANT_A}/users/101", json={"can_monitor": True})
        assert escalate.status_code == 403
        assert escalate.json()["errors"][0]["field"] == "body.can_monitor"
        rules = user.get(f"/v1/tenants/{TENANT_A}/answering/101")
        assert rules.status_code == 200 and rules.json()["version"] == 0
        assert user.get(f"/v1/tenants/{TENANT_A}/answering/102").status_code == 404
    with live.client(tokens["site_manager"]) as site:
        assert site.get(f"/v1/tenants/{TENANT_A}/users").json()["total"] == 0
        elsewhere = site.post(
            f"/v1/tenants/{TENANT_A}/users", json={"extension": "180", "password": "pw180"}
        )
        assert elsewhere.status_code == 403
        made = site.post(
            f"/v1/tenants/{TENANT_A}/users",
            json={"extension": "180", "password": "pw180", "site": "north"},
        )
        assert made.status_code == 201, made.text
        assert [i["key"] for i in site.get(f"/v1/tenants/{TENANT_A}/users").json()["items"]] == [
            "180"
        ]
        moved = site.patch(f"/v1/tenants/{TENANT_A}/users/180", json={"site": None})
        assert moved.status_code == 403
    with live.client(tokens["operator"]) as op:
        assert op.delete(f"/v1/tenants/{TENANT_A}/users/180").status_code == 204
        # a site manager's login names a site of its tenant
        answer = op.post(
            "/v1/admins",
            json={"name": "s2", "role": "site_manager", "tenants": [TENANT_A], "site": "south"},
        )
        assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == "body.site"


def test_list_filters_and_cursor_paging(live: LiveApi, tokens: dict[str, str]) -> None:
    with live.client(tokens["operator"]) as op:
        keys: list[str] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 3}
            if cursor:
                params["cursor"] = cursor
            page = op.get(f"/v1/tenants/{TENANT_A}/users", params=params).json()
            keys += [i["key"] for i in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert keys == sorted(keys, key=int) and len(keys) == page["total"] >= 4
        monitors = op.get(
            f"/v1/tenants/{TENANT_A}/users", params={"where": "can_monitor=true"}
        ).json()
        assert [i["key"] for i in monitors["items"]] == ["100"]
        bad = op.get(f"/v1/tenants/{TENANT_A}/users", params={"where": "password=x"})
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query.where"


def test_audit_filters_and_pages(live: LiveApi, tokens: dict[str, str]) -> None:
    with live.client(tokens["operator"]) as op:
        for name in ("a1", "a2", "a3"):
            assert op.post(f"/v1/tenants/{TENANT_A}/sites", json={"name": name}).status_code == 201
        first = op.get(
            "/v1/audit", params={"kind": "site", "limit": 2, "actor": "api:t-operator"}
        ).json()
        assert len(first["items"]) == 2 and first["next_cursor"]
        rest = op.get(
            "/v1/audit", params={"kind": "site", "limit": 2, "cursor": first["next_cursor"]}
        ).json()
        ids = [e["id"] for e in first["items"] + rest["items"]]
        assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids)
        assert all(e["kind"] == "site" for e in first["items"])
        newest = first["items"][0]["at"]
        assert op.get("/v1/audit", params={"since": newest + 3600}).json()["items"] == []
        for name in ("a1", "a2", "a3"):
            op.delete(f"/v1/tenants/{TENANT_A}/sites/{name}")
    with live.client(tokens["user"]) as user:
        assert user.get("/v1/audit").status_code == 403


# -- operations -------------------------------------------------------------------------------


def test_password_reset_is_shown_once_and_takes_effect(
    live: LiveApi, tokens: dict[str, str]
) -> None:
    with live.client(tokens["user"]) as user:
        welcome = user.get(f"/v1/tenants/{TENANT_A}/users/101/welcome").json()
        assert welcome["sip_domain"] == "acme.test" and welcome["password"] is None
        reset = user.post(f"/v1/tenants/{TENANT_A}/users/101/password-reset")
        assert reset.status_code == 200, reset.text
        password = reset.json()["password"]
        assert len(password) == 16
        assert user.get(f"/v1/tenants/{TENANT_A}/users/101").json()["data"]["password"] == "***"
        assert user.post(f"/v1/tenants/{TENANT_A}/users/102/password-reset").status_code == 404
    assert live.switch is not None
    tenant = next(t for t in live.switch.config.tenants if t.name == TENANT_A)
    assert tenant.user_by_extension("101").password.get_secret_value() == password  # type: ignore[union-attr]


def test_answering_rules_reorder(live: LiveApi, tokens: dict[str, str]) -> None:
    frame = {"kind": "days_of_week", "days": {"sat": [{"start": "00:00", "end": "00:00"}]}}
    with live.client(tokens["operator"]) as op:
        for name in ("weekend", "night"):
            made = op.post(
                f"/v1/tenants/{TENANT_A}/time-frames", json={"name": name, "when": frame}
            )
            assert made.status_code == 201, made.text
        rules = {
            "rules": [
                {"time_frame": "weekend", "dnd": "voicemail"},
                {"time_frame": "night", "enabled": False},
            ]
        }
        put = op.put(f"/v1/tenants/{TENANT_A}/answering/103", json=rules)
        assert put.status_code == 200, put.text
        answer = op.post(f"/v1/tenants/{TENANT_A}/answering/103/reorder", json={"order": [2, 1]})
        assert answer.status_code == 200, answer.text
        assert [r["time_frame"] for r in answer.json()["data"]["rules"]] == ["night", "weekend"]
        bad = op.post(f"/v1/tenants/{TENANT_A}/answering/103/reorder", json={"order": [1, 1]})
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "body.order"
        # bulk toggle: both frames off, in one change; an unknown name changes nothing
        refused = op.post(
            f"/v1/tenants/{TENANT_A}/time-frame-toggle",
            json={"names": ["weekend", "nope"], "enabled": False},
        )
        assert refused.status_code == 404
        assert (
            op.get(f"/v1/tenants/{TENANT_A}/time-frames/weekend")
            .json()["data"]
            .get("enabled", True)
        )
        toggled = op.post(
            f"/v1/tenants/{TENANT_A}/time-frame-toggle",
            json={"names": ["weekend", "night"], "enabled": False},
        )
        assert toggled.status_code == 200, toggled.text
        assert [i["data"]["enabled"] for i in toggled.json()] == [False, False]
        assert op.delete(f"/v1/tenants/{TENANT_A}/answering/103").status_code == 204
        for name in ("weekend", "night"):
            assert op.delete(f"/v1/tenants/{TENANT_A}/time-frames/{name}").status_code == 204


def test_number_range_and_import(live: LiveApi, tokens: dict[str, str]) -> None:
    base = f"/v1/tenants/{TENANT_A}"
    with live.client(tokens["operator"]) as op:
        made = op.post(
            f"{base}/number-ranges",
            json={"first": "+14155550200", "count": 3, "destination": "101"},
        )
        assert made.status_code == 201, made.text
        assert [i["key"] for i in made.json()] == ["+14155550200", "+14155550201", "+14155550202"]
        again = op.post(
            f"{base}/number-ranges",
            json={"first": "+14155550202", "count": 2, "destination": "101"},
        )
        assert again.status_code == 409
        assert op.get(f"{base}/numbers/+14155550203").status_code == 404  # nothing half-applied
        csv = (
            "number,treatment,destination\n+14155550300,user,102\n+14155550301,user,999\n"
            "+14155550302,offnet,+12125550100\n"
        )
        report = op.post(
            f"{base}/numbers/import", content=csv, headers={"Content-Type": "text/csv"}
        ).json()
        assert not report["applied"] and report["errors"] == 1
        assert [r["status"] for r in report["rows"]] == ["ok", "error", "ok"]
        assert "999" in report["rows"][1]["reason"]
        assert op.get(f"{base}/numbers/+14155550300").status_code == 404
        good = csv.replace("999", "103")
        dry = op.post(
            f"{base}/numbers/import",
            content=good,
            params={"dry_run": True, "filename": "n.csv"},
        ).json()
        assert not dry["applied"] and dry["errors"] == 0
        done = op.post(f"{base}/numbers/import", content=good, params={"filename": "n.csv"}).json()
        assert done["applied"] and done["valid"] == 3
        assert op.get(f"{base}/numbers/+14155550301").json()["data"]["destination"] == "103"
        broken = op.post(
            f"{base}/numbers/import", content=b"\x00\x01", params={"filename": "x.xlsx"}
        )
        assert broken.json()["file_error"]
        for n in ("200", "201", "202", "300", "301", "302"):
            assert op.delete(f"{base}/numbers/+14155550{n}").status_code == 204


def test_disaster_plan_created_imported_executed_and_reverted(
    live: LiveApi, tokens: dict[str, str]
) -> None:
    base = f"/v1/tenants/{TENANT_A}/disaster-plans"
    with live.client(tokens["office_manager"]) as manager:
        made = manager.post(base, json={"name": "Flood", "region": "East"})
        assert made.status_code == 201, made.text
        csv = "number,forward_to\n+14155550100,+12125550111\nbad,+12125550112\n"
        report = manager.post(f"{base}/Flood/import", content=csv, params={"filename": "p.csv"})
        assert report.status_code == 200, report.text
        assert [r["status"] for r in report.json()["rows"]] == ["ok", "error"]
        good = "number,forward_to\n+14155550100,+12125550111\n"
        assert manager.post(
            f"{base}/Flood/import", content=good, params={"filename": "p.csv"}
        ).json()["applied"]
        plan = manager.get(f"{base}/Flood").json()
        assert plan["numbers"] == [{"number": "+14155550100", "forward_to": "+12125550111"}]
        assert manager.post(f"{base}/Flood/execute").status_code == 200
        assert manager.post(f"{base}/Flood/revert").status_code == 200
        history = manager.get(f"/v1/tenants/{TENANT_A}/disaster-events", params={"plan": "Flood"})
        assert [e["action"] for e in history.json()["items"]][:2] == ["revert", "execute"]
        assert manager.delete(f"{base}/Flood").status_code == 204


def test_what_if_shows_the_outcome_before_and_after_without_applying(
    live: LiveApi, tokens: dict[str, str]
) -> None:
    business = {
        "kind": "days_of_week",
        "days": {
            d: [{"start": "09:00", "end": "17:00"}] for d in ("mon", "tue", "wed", "thu", "fri")
        },
    }
    body = {
        "changes": [
            {
                "kind": "number",
                "key": "+14155550100",
                "data": {"number": "+14155550100", "treatment": "user", "destination": "102"},
            },
            {"kind": "time_frame", "data": {"name": "business", "when": business}},
        ],
        "numbers": ["+14155550100", "103"],
        "registered": ["100", "101", "102", "103"],
    }
    with live.client(tokens["office_manager"]) as manager:
        answer = manager.post(f"/v1/tenants/{TENANT_A}/what-if", json=body)
        assert answer.status_code == 200, answer.text
        result = answer.json()
        assert result["applied"] is False
        did, ext = result["numbers"]
        assert did["changed"] and not ext["changed"]
        # five opening and five closing times of the new frame within the week, plus now
        assert len(did["outcomes"]) >= 10
        assert any("business" in o["active_time_frames"] for o in did["outcomes"])
        first = did["outcomes"][0]
        assert "100" in first["before"] and "102" in first["after"], first
        # nothing applied
        number = manager.get(f"/v1/tenants/{TENANT_A}/numbers/+14155550100").json()
        assert number["data"]["destination"] == "100"
        assert manager.get(f"/v1/tenants/{TENANT_A}/time-frames/business").status_code == 404
        bad = manager.post(
            f"/v1/tenants/{TENANT_A}/what-if",
            json={
                **body,
                "changes": [
                    {"kind": "number", "data": {"number": "+14155550100", "destination": "999"}}
                ],
            },
        )
        assert bad.status_code == 422, bad.text
        assert bad.json()["errors"][0]["field"].endswith("destination")
    with live.client(tokens["user"]) as user:
        assert user.post(f"/v1/tenants/{TENANT_A}/what-if", json=body).status_code == 403


def test_customer_import_reports_each_row_and_applies_all_or_nothing(
    live: LiveApi, tokens: dict[str, str]
) -> None:
    header = (
        "Account Number,Concurrent Calls,CPS,SIP Username,SIP Password,Out Callerid Translation\n"
    )
    bad = header + (
        "hooli,10,2,hooli-main,s3cret-hooli,\n"
        "acme,5,1,,,\n"  # exists already
        "pied,0,1,,,\n"  # concurrent calls must be at least 1
        "vandelay,3,1,,,+1->0\n"  # translation: not supported
        "hooli,1,1,,,\n"  # duplicate in the file
    )
    with live.client(tokens["reseller"]) as reseller:
        answer = reseller.post(
            "/v1/tenants/import",
            content=bad,
            params={"filename": "customers.csv", "domain_suffix": "customers.test"},
        )
        assert answer.status_code == 200, answer.text
        report = answer.json()
        assert not report["applied"] and report["valid"] == 1 and report["errors"] == 4
        reasons = [r["reason"] for r in report["rows"]]
        assert "exists already" in reasons[1]
        assert "concurrent calls" in reasons[2]
        assert "not supported" in reasons[3]
        assert "duplicate of row 2" in reasons[4]
        assert reseller.get("/v1/tenants/hooli").status_code == 404  # nothing applied
        good = header + "hooli,10,2,hooli-main,s3cret-hooli,\npied,1,1,,,\n"
        done = reseller.post(
            "/v1/tenants/import",
            content=good,
            params={"filename": "customers.csv", "domain_suffix": "customers.test"},
        ).json()
        assert done["applied"] and done["tenants"] == ["hooli", "pied"]
        hooli = reseller.get("/v1/tenants/hooli").json()
        assert hooli["max_calls"] == 10 and hooli["domain"] == "hooli.customers.test"
        user = reseller.get("/v1/tenants/hooli/users/100").json()
        assert user["data"]["username"] == "hooli-main" and user["data"]["password"] == "***"
    with live.client(tokens["operator"]) as op:
        for name in ("hooli", "pied"):
            assert op.delete(f"/v1/tenants/{name}").status_code == 204
