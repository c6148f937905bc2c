"""The admin API over real HTTP against a running switch, on SQLite and on PostgreSQL:
logins and tokens, who may do what (a table per role), call history, dashboards,
disaster plans with ETags, registrations from SIPp, and the event stream."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
from websockets.sync.client import connect

from bench.sipp import run_sipp, user_rows, write_users
from bench.switchproc import free_port
from storage.logins import ApiToken
from tests.integration.apikit import TENANT_A, TENANT_B, LiveApi, api_config, cdr, pg_schema

pytestmark = pytest.mark.integration

ROLES = ("operator", "reseller", "office_manager", "site_manager", "supervisor", "user")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveApi]:
    """One switch with its API per backend for the module's tests."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('api')}/switch.db"
    else:
        url = pg_schema(request.getfixturevalue("pg_dsn"))
    api = LiveApi(api_config(url, max_login_failures=3)).start()
    yield api
    api.stop()


@pytest.fixture(scope="module")
def tokens(live: LiveApi) -> dict[str, str]:
    """A token per role, all scoped to tenant acme (the user is extension 101)."""
    scopes: dict[str, dict[str, Any]] = {
        "operator": {},
        "reseller": {"tenants": [TENANT_A]},
        "office_manager": {"tenants": [TENANT_A]},
        "site_manager": {"tenants": [TENANT_A], "site": "north"},
        "supervisor": {"tenants": [TENANT_A]},
        "user": {"tenants": [TENANT_A], "extension": "101"},
    }
    made = {role: live.login(f"t-{role}", role, **scope) for role, scope in scopes.items()}
    made["globex_manager"] = live.login("t-globex", "office_manager", tenants=[TENANT_B])
    now = time.time()
    live.add_cdrs(
        [
            cdr("a-own", TENANT_A, "101", "102", start=now - 7200),
            cdr("a-other", TENANT_A, "102", "103", start=now - 7100),
            cdr("g-1", TENANT_B, "200", "201", start=now - 7000),
        ]
    )
    return made


# -- who may do what --------------------------------------------------------------------------

# (name, method, path on tenant {t}, body, status when allowed). Objects that do not exist
# answer 404 when allowed, so a 403 can only come from the role check.
REQUESTS: list[tuple[str, str, str, dict[str, Any] | None, int]] = [
    ("tenant", "GET", "/v1/tenants/{t}", None, 200),
    ("registrations", "GET", "/v1/tenants/{t}/registrations", None, 200),
    ("calls", "GET", "/v1/tenants/{t}/calls", None, 200),
    ("hang up", "DELETE", "/v1/tenants/{t}/calls/no-such-call", None, 404),
    ("monitor", "POST", "/v1/tenants/{t}/calls/no-such-call/monitor", {"supervisor": "100"}, 404),
    ("conferences", "GET", "/v1/tenants/{t}/conferences", None, 200),
    (
        "mute",
        "PATCH",
        "/v1/tenants/{t}/conferences/standup/participants/nobody",
        {"muted": True},
        404,
    ),
    ("history", "GET", "/v1/tenants/{t}/cdrs", None, 200),
    ("history csv", "GET", "/v1/tenants/{t}/cdrs.csv", None, 200),
    ("volume", "GET", "/v1/tenants/{t}/analytics/volume", None, 200),
    ("trunks", "GET", "/v1/tenants/{t}/analytics/trunks", None, 200),
    ("explain", "POST", "/v1/tenants/{t}/route-explain", {"to": "101"}, 200),
    ("disaster plans", "GET", "/v1/tenants/{t}/disaster-plans", None, 200),
    ("execute", "POST", "/v1/tenants/{t}/disaster-plans/No%20such%20plan/execute", None, 404),
    ("disaster history", "GET", "/v1/tenants/{t}/disaster-events", None, 200),
]

DENIED: dict[str, set[str]] = {
    "operator": set(),
    "reseller": set(),
    "office_manager": set(),
    "site_manager": {"execute", "explain"},  # explain: to its site's users only (none)
    "supervisor": {"hang up", "mute", "explain", "disaster plans", "execute", "disaster history"},
    "user": {
        "hang up",
        "monitor",
        "conferences",
        "mute",
        "volume",
        "trunks",
        "disaster plans",
        "execute",
        "disaster history",
    },
}
# Requests outside any tenant: (name, method, path, status when allowed)
GLOBAL: list[tuple[str, str, str, int]] = [
    ("tenants", "GET", "/v1/tenants", 200),
    ("admins", "GET", "/v1/admins", 200),
    ("metrics", "GET", "/metrics", 200),
    ("me", "GET", "/v1/me", 200),
]
GLOBAL_DENIED: dict[str, set[str]] = {
    "operator": set(),
    "reseller": {"metrics"},
    "office_manager": {"metrics"},
    "site_manager": {"admins", "metrics"},
    "supervisor": {"admins", "metrics"},
    "user": {"admins", "metrics"},
}


@pytest.mark.parametrize("role", ROLES)
def test_each_role_may_do_what_its_role_allows_and_nothing_else(
    live: LiveApi, tokens: dict[str, str], role: str
) -> None:
    with live.client(tokens[role]) as client:
        for name, method, path, body, ok in REQUESTS:
            answer = client.request(method, path.format(t=TENANT_A), json=body)
            expected = 403 if name in DENIED[role] else ok
            assert answer.status_code == expected, (role, name, answer.text)
            if expected == 403:
                assert answer.json()["code"] == "forbidden"
        for name, method, path, ok in GLOBAL:
            answer = client.request(method, path)
            expected = 403 if name in GLOBAL_DENIED[role] else ok
            assert answer.status_code == expected, (role, name, answer.text)


@pytest.mark.parametrize("role", [r for r in ROLES if r != "operator"])
def test_another_tenant_is_not_found_whatever_the_request(
    live: LiveApi, tokens: dict[str, str], role: str
) -> None:
    with live.client(tokens[role]) as client:
        for name, method, path, body, _ in REQUESTS:
            answer = client.request(method, path.format(t=TENANT_B), json=body)
            assert answer.status_code == 404, (role, name, answer.text)
            assert "forbidden" not in answer.text and TENANT_B in answer.json()["message"]
        # and by guessed identifiers of its objects
        for path in ("/v1/tenants/globex/cdrs/g-1", "/v1/tenants/globex/cdrs/g-1/flow"):
            assert client.get(path).status_code == 404
        assert client.get("/v1/tenants/no-such-tenant").status_code == 404
        listed = client.get("/v1/tenants").json()
        assert [t["name"] for t in listed["items"]] == [TENANT_A]


def test_objects_of_another_tenant_or_user_are_not_found(
    live: LiveApi, tokens: dict[str, str]
) -> None:
    with live.client(tokens["operator"]) as op:
        # a call of globex asked for under acme's path
        assert op.get("/v1/tenants/acme/cdrs/g-1").status_code == 404
        assert op.get("/v1/tenants/globex/cdrs/g-1").status_code == 200
    with live.client(tokens["user"]) as user:
        items = user.get("/v1/tenants/acme/cdrs").json()["items"]
        assert [c["call_id"] for c in items] == ["a-own"]  # 101's own calls only
        assert user.get("/v1/tenants/acme/cdrs/a-other").status_code == 404
        assert user.get("/v1/tenants/acme/cdrs/a-own/flow").status_code == 200
        assert user.get("/v1/tenants/acme/cdrs", params={"user": "102"}).json()["total"] == 0
    with live.client(tokens["site_manager"]) as site:
        # no user of acme is in site "north": nothing of theirs is visible
        assert site.get("/v1/tenants/acme/cdrs").json()["total"] == 0
        assert site.get("/v1/tenants/acme/cdrs/a-own").status_code == 404
    with live.client(tokens["globex_manager"]) as other:
        assert other.get("/v1/admins/t-office_manager").status_code == 404
        assert other.get("/v1/tenants/acme/cdrs/a-own").status_code == 404


def test_logins_are_managed_only_downwards_and_within_scope(
    live: LiveApi, tokens: dict[str, str]
) -> None:
    with live.client(tokens["office_manager"]) as manager:
        names = {x["name"] for x in manager.get("/v1/admins").json()["items"]}
        assert {"t-office_manager", "t-site_manager", "t-supervisor", "t-user"} <= names
        assert not names & {"t-operator", "t-reseller", "t-globex"}
        assert manager.get("/v1/admins/t-operator").status_code == 404
        created = manager.post(
            "/v1/admins",
            json={"name": "agent7", "role": "supervisor", "tenants": [TENANT_A]},
        )
        assert created.status_code == 201, created.text
        assert created.headers["etag"]
        refused = manager.post(
            "/v1/admins", json={"name": "boss", "role": "operator", "tenants": []}
        )
        assert refused.status_code == 403
        other_tenant = manager.post(
            "/v1/admins",
            json={"name": "spy", "role": "user", "tenants": [TENANT_B], "extension": "200"},
        )
        assert other_tenant.status_code == 403
        assert manager.delete("/v1/admins/agent7").status_code == 204


def test_validation_errors_name_the_field(live: LiveApi, tokens: dict[str, str]) -> None:
    with live.client(tokens["operator"]) as op:
        answer = op.post("/v1/admins", json={"name": "x1", "role": "emperor"})
        assert answer.status_code == 422
        assert answer.json()["errors"][0]["field"] == "body.role"
        answer = op.post(
            "/v1/admins",
            json={"name": "x2", "role": "user", "tenants": [TENANT_A], "extension": "999"},
        )
        assert answer.status_code == 422
        assert answer.json()["errors"][0]["field"] == "body.extension"
        answer = op.post(
            "/v1/admins",
            json={
                "name": "x3",
                "role": "supervisor",
                "tenants": [TENANT_A],
                "permissions": {"calls": "d"},
            },
        )
        assert answer.status_code == 422 and "calls" in answer.json()["message"]
        answer = op.get("/v1/tenants/acme/cdrs", params={"cursor": "not-a-cursor"})
        assert answer.status_code == 422
        assert answer.json()["errors"][0]["field"] == "query.cursor"
        answer = op.get("/v1/tenants/acme/analytics/volume", params={"tz": "Mars/Olympus"})
        assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == "query.tz"
        assert op.get("/v1/tenants/acme/cdrs", params={"limit": 0}).status_code == 422


def test_permissions_narrow_a_role(live: LiveApi) -> None:
    token = live.login(
        "readonly-mgr",
        "office_manager",
        tenants=[TENANT_A],
        permissions={"disaster_plans": "r", "calls": "r"},
    )
    with live.client(token) as client:
        assert client.get("/v1/tenants/acme/disaster-plans").status_code == 200
        path = "/v1/tenants/acme/disaster-plans/Office%20outage/execute"
        assert client.post(path).status_code == 403
        assert client.delete("/v1/tenants/acme/calls/x").status_code == 403


# -- logins, sessions, tokens -----------------------------------------------------------------


def test_password_login_totp_and_rate_limit(live: LiveApi, tokens: dict[str, str]) -> None:
    with live.client(tokens["operator"]) as op:
        made = op.post(
            "/v1/admins",
            json={
                "name": "carol",
                "role": "office_manager",
                "tenants": [TENANT_A],
                "password": "correct horse",
                "totp": True,
            },
        ).json()
    secret = made["totp_secret"]
    assert made["totp_uri"].startswith("otpauth://totp/")
    with live.client() as anonymous:
        assert anonymous.get("/v1/me").status_code == 401
        no_code = anonymous.post("/v1/login", json={"name": "carol", "password": "correct horse"})
        assert no_code.status_code == 401
        ok = anonymous.post(
            "/v1/login",
            json={
                "name": "carol",
                "password": "correct horse",
                "totp_code": pyotp.TOTP(secret).now(),
            },
        )
        assert ok.status_code == 200, ok.text
        session = ok.json()["token"]
        assert ok.json()["expires_at"] > time.time()
    with live.client(session) as carol:
        assert carol.get("/v1/me").json()["name"] == "carol"
        assert carol.post("/v1/logout").status_code == 204
        assert carol.get("/v1/me").status_code == 401
    with live.client() as anonymous:
        # max_login_failures = 3: the third wrong password locks the name out (429)
        for _ in range(2):
            wrong = anonymous.post("/v1/login", json={"name": "carol", "password": "wrong"})
            assert wrong.status_code == 401
        statuses = [
            anonymous.post("/v1/login", json={"name": "carol", "password": "wrong"}).status_code
            for _ in range(2)
        ]
        assert statuses[-1] == 429
        locked = anonymous.post(
            "/v1/login",
            json={
                "name": "carol",
                "password": "correct horse",
                "totp_code": pyotp.TOTP(secret).now(),
            },
        )
        assert locked.status_code == 429 and "retry-after" in locked.headers


def test_tokens_are_shown_once_stored_hashed_revocable_and_expire(
    live: LiveApi, tokens: dict[str, str]
) -> None:
    live.login("robot", "supervisor", tenants=[TENANT_A])
    with live.client(tokens["operator"]) as op:
        made = op.post("/v1/admins/robot/tokens", json={"description": "wallboard"})
        assert made.status_code == 201
        token = made.json()["token"]
        listed = op.get("/v1/admins/robot/tokens").json()["items"]
        assert made.json()["id"] in {t["id"] for t in listed}
        assert token not in json.dumps(listed)
    assert live.switch is not None
    stored = live.call(live.switch.store.load_api_token(made.json()["id"]))
    assert stored is not None and stored.secret_hash not in token
    with live.client(token) as robot:
        assert robot.get("/v1/tenants/acme/calls").status_code == 200
        assert robot.get("/v1/me").json()["name"] == "robot"
    with live.client(tokens["operator"]) as op:
        assert op.delete(f"/v1/tokens/{made.json()['id']}").status_code == 204
    with live.client(token) as robot:
        assert robot.get("/v1/me").status_code == 401
    # an expired token is refused
    expired = ApiToken(
        id="00000000deadbeef",
        login="robot",
        secret_hash=stored.secret_hash,
        kind="api",
        created_at=time.time() - 100,
        expires_at=time.time() - 1,
    )
    live.call(live.switch.store.create_api_token(expired))
    secret = token.split("_", 2)[2]
    with live.client(f"ss_00000000deadbeef_{secret}") as old:
        assert old.get("/v1/me").status_code == 401
    with live.client("ss_garbage") as junk:
        assert junk.get("/v1/me").status_code == 401


def test_if_match_guards_changes(live: LiveApi, tokens: dict[str, str]) -> None:
    live.login("dave", "supervisor", tenants=[TENANT_A])
    with live.client(tokens["operator"]) as op:
        first = op.get("/v1/admins/dave")
        etag = first.headers["etag"]
        changed = op.patch("/v1/admins/dave", json={"enabled": False}, headers={"If-Match": etag})
        assert changed.status_code == 200 and changed.headers["etag"] != etag
        stale = op.patch("/v1/admins/dave", json={"enabled": True}, headers={"If-Match": etag})
        assert stale.status_code == 412
        assert op.delete("/v1/admins/dave", headers={"If-Match": etag}).status_code == 412
        fresh = changed.headers["etag"]
        assert op.delete("/v1/admins/dave", headers={"If-Match": fresh}).status_code == 204


# -- call history and dashboards --------------------------------------------------------------


def test_call_history_filters_paging_csv_and_flow(live: LiveApi, tokens: dict[str, str]) -> None:
    base = time.time() - 30 * 86400
    cdrs = [
        cdr(
            f"h-{i:03d}",
            TENANT_A,
            caller="100" if i % 2 else "+12125550123",
            dialled="101" if i % 3 else "+14155550100",
            start=base + i * 600,
            answered=i % 4 != 0,
            direction="internal" if i % 2 else "inbound",
            trunk="" if i % 2 else "carrier",
        )
        for i in range(60)
    ]
    live.add_cdrs(cdrs)
    window = {"from": _iso(base - 1), "to": _iso(base + 60 * 600)}
    with live.client(tokens["office_manager"]) as client:
        seen: list[str] = []
        cursor = None
        while True:
            page = client.get(
                "/v1/tenants/acme/cdrs", params={**window, "limit": 25, "cursor": cursor}
            ).json()
            assert page["total"] == 60
            seen += [c["call_id"] for c in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == [f"h-{i:03d}" for i in reversed(range(60))]  # newest first, no repeats

        def count(**filters: str) -> int:
            answer = client.get("/v1/tenants/acme/cdrs", params={**window, **filters})
            assert answer.status_code == 200, answer.text
            return int(answer.json()["total"])

        assert count(disposition="NO ANSWER") == 15
        assert count(direction="inbound") == 30
        assert count(caller="212555") == 30
        assert count(dialled="+1415") == 20
        assert count(user="100") == 30
        assert count(trunk="carrier") == 30
        assert count(direction="inbound", disposition="ANSWERED") == 15
        one_day = {"from": _iso(base), "to": _iso(base + 6 * 600)}
        assert count(**one_day) == 6

        csv_text = client.get("/v1/tenants/acme/cdrs.csv", params=window).text
        lines = csv_text.strip().split("\n")
        assert lines[0].startswith("call_id,") and len(lines) == 61

        flow = client.get("/v1/tenants/acme/cdrs/h-004/flow").json()["steps"]
        assert [s["event"] for s in flow] == ["started", "ringing", "not answered", "ended"]


def test_dashboards_volume_asr_acd_and_quality(live: LiveApi, tokens: dict[str, str]) -> None:
    start = time.time() - 40 * 86400
    quality = {
        "caller": {"jitter_ms": 12.0, "loss": 0.02, "mos": 3.9},
        "callee": {"jitter_ms": 4.0, "loss": 0.0, "mos": 4.3},
    }
    live.add_cdrs(
        [
            cdr(
                f"q-{i}",
                TENANT_A,
                "+12125550123",
                "+14155550100",
                start=start + i * 60,
                trunk="carrier2",
                direction="inbound",
                answered=i < 3,
                mos=3.9 if i < 3 else None,
                quality=quality if i < 3 else {},
            )
            for i in range(4)
        ]
    )
    window = {"from": _iso(start - 1), "to": _iso(start + 3600)}
    with live.client(tokens["supervisor"]) as client:
        volume = client.get(
            "/v1/tenants/acme/analytics/volume", params={**window, "bucket": "day"}
        ).json()
        assert sum(b["calls"] for b in volume["items"]) == 4
        assert sum(b["answered"] for b in volume["items"]) == 3
        trunks = client.get("/v1/tenants/acme/analytics/trunks", params=window).json()
        assert trunks == [
            {
                "trunk": "carrier2",
                "attempts": 4,
                "answered": 3,
                "asr": 0.75,
                "acd": 60.0,
                "minutes": 3.0,
            }
        ]
        figures = client.get("/v1/tenants/acme/analytics/quality", params=window).json()
        assert [f["trunk"] for f in figures] == ["*", "carrier2"]
        assert figures[1]["calls"] == 3 and figures[1]["mos"]["average"] == 3.9
        assert figures[1]["jitter_ms"]["average"] == 12.0  # the worse side


def _iso(epoch: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat()


# -- disaster plans, route explain, events ----------------------------------------------------


def test_disaster_plan_execute_revert_with_etag_and_events(
    live: LiveApi, tokens: dict[str, str]
) -> None:
    path = "/v1/tenants/globex/disaster-plans/Office%20outage"
    with (
        live.client(tokens["globex_manager"]) as client,
        connect(
            f"ws://127.0.0.1:{live.server.port}/v1/events",  # type: ignore[union-attr]
            additional_headers={"Authorization": f"Bearer {tokens['globex_manager']}"},
        ) as events,
        connect(
            f"ws://127.0.0.1:{live.server.port}/v1/events?token={tokens['office_manager']}",  # type: ignore[union-attr]
        ) as acme_events,
    ):
        etag = client.get(path).headers["etag"]
        executed = client.post(path + "/execute", headers={"If-Match": etag})
        assert executed.status_code == 200, executed.text
        assert executed.json()["status"] == "enabled"
        assert client.post(path + "/revert", headers={"If-Match": etag}).status_code == 412
        assert client.post(path + "/execute").status_code == 409  # already enabled
        event = json.loads(events.recv(timeout=10))
        assert event["type"] == "config.changed" and event["tenant"] == "globex"
        assert event["data"] == {"kind": "disaster_plan", "name": "Office outage", "enabled": True}
        explained = client.post(
            "/v1/tenants/globex/route-explain", json={"to": "+16465550100"}
        ).json()
        assert "Office outage" in explained["enabled_disaster_plans"]
        reverted = client.post(path + "/revert", headers={"If-Match": executed.headers["etag"]})
        assert reverted.status_code == 200 and reverted.json()["status"] == "saved"
        history = client.get("/v1/tenants/globex/disaster-events").json()["items"]
        assert [h["action"] for h in history[:2]] == ["revert", "execute"]
        assert history[0]["by"] == "api:t-globex"
        with pytest.raises(TimeoutError):  # acme's manager hears nothing of globex
            acme_events.recv(timeout=1.5)


def test_event_stream_refuses_without_a_valid_token(live: LiveApi) -> None:
    from websockets.exceptions import ConnectionClosed, InvalidStatus

    with (
        pytest.raises((ConnectionClosed, InvalidStatus)),
        connect(
            f"ws://127.0.0.1:{live.server.port}/v1/events?token=ss_nope"  # type: ignore[union-attr]
        ) as ws,
    ):
        ws.recv(timeout=5)


def test_registrations_from_sipp_with_device_and_events(
    live: LiveApi, tokens: dict[str, str], tmp_path: Path
) -> None:
    users = write_users(
        tmp_path / "users.csv",
        user_rows([(ext, "acme.test", f"pw{ext}") for ext in ("100", "101", "102")]),
    )
    with connect(
        f"ws://127.0.0.1:{live.server.port}/v1/events?token={tokens['user']}",  # type: ignore[union-attr]
    ) as user_events:
        time.sleep(0.5)  # the stream's first sample
        result = run_sipp(
            "register.xml",
            f"127.0.0.1:{live.sip_port}",
            calls=3,
            rate=10,
            injection=users,
            keys={"c1": "1", "c2": "2", "expires": "600"},
            local_port=free_port(),
            call_id="apireg%u@%s",
            timeout=30,
        )
        assert result.ok, result.errors
        event = json.loads(user_events.recv(timeout=10))
        assert event["type"] == "registration.added"
        assert event["data"]["extension"] == "101"  # the user hears only of their own
    with live.client(tokens["office_manager"]) as manager:
        regs = manager.get("/v1/tenants/acme/registrations").json()
        assert [r["extension"] for r in regs["items"]] == ["100", "101", "102"]
        assert all(r["device"] == "sipp-register" and r["expires_in"] > 500 for r in regs["items"])
        only = manager.get("/v1/tenants/acme/registrations", params={"extension": "102"}).json()
        assert only["total"] == 1
    with live.client(tokens["user"]) as user:
        mine = user.get("/v1/tenants/acme/registrations").json()
        assert [r["extension"] for r in mine["items"]] == ["101"]
    with live.client(tokens["globex_manager"]) as other:
        assert other.get("/v1/tenants/globex/registrations").json()["total"] == 0


def test_https_when_a_certificate_is_given(store_url: str, tmp_path: Path) -> None:
    import ssl
    import subprocess

    import httpx

    cert, key = tmp_path / "api.pem", tmp_path / "api.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    live = LiveApi(
        api_config(store_url, tls_certificate=str(cert), tls_private_key=str(key))
    ).start()
    try:
        token = live.login("tls-op", "operator")
        port = live.server.port  # type: ignore[union-attr]
        trusted = ssl.create_default_context(cafile=str(cert))
        with httpx.Client(verify=trusted, timeout=30) as client:
            answer = client.get(
                f"https://127.0.0.1:{port}/v1/me", headers={"Authorization": f"Bearer {token}"}
            )
            assert answer.status_code == 200 and answer.json()["name"] == "tls-op"
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/v1/me", timeout=5)
    finally:
        live.stop()


def test_a_port_in_use_is_reported(store_url: str) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        live = LiveApi(api_config(store_url, port=port))
        with pytest.raises(RuntimeError, match=f"could not listen on 127.0.0.1:{port}"):
            live.start()
        live.stop()
