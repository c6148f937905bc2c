"""Who may do what through the admin API, on SQLite and on PostgreSQL: for each role a
table of requests it may make and those it gets 403 for; another tenant's objects (also by
guessed identifiers) are 404 for everyone but operators; logins are managed downwards."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.apikit import TENANT_A, TENANT_B, LiveApi, live_api, role_tokens

pytestmark = pytest.mark.integration

ROLES = ("operator", "reseller", "office_manager", "site_manager", "supervisor", "user")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveApi]:
    yield from live_api(request, tmp_path_factory)


@pytest.fixture(scope="module")
def tokens(live: LiveApi) -> dict[str, str]:
    return role_tokens(live)


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
