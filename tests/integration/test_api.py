"""The admin API over real HTTP against a running switch, on SQLite and on PostgreSQL:
logins and tokens, call history, dashboards, disaster plans with ETags, registrations
from SIPp, the event stream, HTTPS (who may do what: test_api_roles.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from websockets.sync.client import connect

from peers.sipp import run_sipp, user_rows, write_users
from peers.switchproc import free_port
from storage.logins import ApiToken
from tests.integration.apikit import (
    TENANT_A,
    LiveApi,
    api_config,
    cdr,
    live_api,
    role_tokens,
)
from tests.integration.tlskit import self_signed

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveApi]:
    yield from live_api(request, tmp_path_factory)


@pytest.fixture(scope="module")
def tokens(live: LiveApi) -> dict[str, str]:
    return role_tokens(live)


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


def test_a_login_changes_its_own_password_but_not_its_role(live: LiveApi) -> None:
    token = live.login("erin", "user", password="first password", tenants=[TENANT_A],
                       extension="102")  # fmt: skip
    with live.client(token) as erin:
        assert erin.patch("/v1/admins/erin", json={"role": "operator"}).status_code == 403
        assert erin.patch("/v1/admins/erin", json={"password": "second password"}).is_success
    with live.client() as anonymous:
        old = anonymous.post("/v1/login", json={"name": "erin", "password": "first password"})
        new = anonymous.post("/v1/login", json={"name": "erin", "password": "second password"})
        assert (old.status_code, new.status_code) == (401, 200)


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

    import httpx

    cert, key = self_signed(tmp_path, "api")
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


def test_openapi_document_and_docs_page(live: LiveApi) -> None:
    with live.client() as anonymous:
        document = anonymous.get("/openapi.json").json()
        assert document["openapi"].startswith("3.1")
        paths = document["paths"]
        assert "/v1/tenants/{tenant}/cdrs" in paths and "/metrics" in paths
        assert "401" in paths["/v1/tenants/{tenant}/calls"]["get"]["responses"]
        docs = anonymous.get("/docs")
        assert docs.status_code == 200 and "openapi.json" in docs.text
