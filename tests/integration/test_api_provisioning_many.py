"""Provisioning writes on a tenant with many users (issue 17: a write validates what it
changes, not the whole tenant again), over the admin API on SQLite: good writes apply and
reach the running switch, bad ones are refused with the field named and nothing applied,
and the users list is paged by the Store. Behaviour only, never a time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.integration.apikit import TENANT_A, LiveApi, api_config

pytestmark = pytest.mark.integration

USERS = 2000  # besides apikit's 100-103: extensions 1000-2999
BASE = f"/v1/tenants/{TENANT_A}"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    config = api_config(f"sqlite:///{tmp_path_factory.mktemp('many')}/switch.db")
    acme = config.tenants[0]
    many = [{"extension": str(1000 + i), "password": f"pw-{1000 + i}"} for i in range(USERS)]
    data: dict[str, Any] = acme.model_dump(mode="json")
    data["users"] = [*data["users"], *many]
    tenants = [type(acme).model_validate(data), *config.tenants[1:]]
    api = LiveApi(config.model_copy(update={"tenants": tenants})).start()
    yield api
    api.stop()


@pytest.fixture(scope="module")
def op(live: LiveApi) -> Iterator[httpx.Client]:
    with live.client(live.login("many-op", "operator")) as client:
        yield client


def _revision(op: httpx.Client) -> int:
    revision: int = op.get("/v1/audit", params={"limit": 1}).json()["items"][0]["revision"]
    return revision


def _refused(answer: httpx.Response, field: str) -> list[dict[str, Any]]:
    assert answer.status_code == 422, answer.text
    errors: list[dict[str, Any]] = answer.json()["errors"]
    assert field in [e["field"] for e in errors], answer.text
    return errors


def test_a_number_repointed_reaches_the_switch(live: LiveApi, op: httpx.Client) -> None:
    path = f"{BASE}/numbers/+14155550100"
    etag = op.get(path).headers["ETag"]
    body = {"number": "+14155550100", "treatment": "user", "destination": "2999"}
    answer = op.put(path, json=body, headers={"If-Match": etag})
    assert answer.status_code == 200, answer.text
    assert live.switch is not None

    def routed() -> str:
        assert live.switch is not None
        tenant = next(t for t in live.switch.config.tenants if t.name == TENANT_A)
        return next(d.destination for d in tenant.routing.dids if d.number == "+14155550100")

    live.call(_until(lambda: routed() == "2999"))
    assert len(next(t for t in live.switch.config.tenants if t.name == TENANT_A).users) == 2004


async def _until(done: Callable[[], bool], deadline: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while not done():
        if loop.time() > end:
            raise AssertionError("the change did not reach the switch within 10 s")
        await asyncio.sleep(0.05)


def test_bad_writes_are_refused_naming_the_field(op: httpx.Client) -> None:
    revision = _revision(op)
    # a duplicate username: the new user is named
    _refused(
        op.post(f"{BASE}/users", json={"extension": "3001", "username": "1500", "password": "x"}),
        "body.username",
    )
    # a number to a user that does not exist
    _refused(
        op.post(
            f"{BASE}/numbers",
            json={"number": "+14155550150", "treatment": "user", "destination": "3999"},
        ),
        "body.destination",
    )
    # an extension a conference bridge has (apikit's "standup" is 190): the bridge is named
    _refused(
        op.post(f"{BASE}/users", json={"extension": "190", "password": "pw"}),
        "conference[standup].extension",
    )
    # deleting the user a number points at names the number
    target = op.get(f"{BASE}/numbers/+14155550100").json()["data"]["destination"]
    errors = op.delete(f"{BASE}/users/{target}")
    assert errors.status_code == 422, errors.text
    assert any(e["field"].startswith("number[") for e in errors.json()["errors"]), errors.text
    assert _revision(op) == revision  # nothing applied
    assert op.get(f"{BASE}/users/{target}").status_code == 200


def test_a_user_added_and_deleted_among_many(op: httpx.Client) -> None:
    made = op.post(f"{BASE}/users", json={"extension": "3000", "password": "pw-3000"})
    assert made.status_code == 201, made.text
    # a rule forwarding to it, then deleting it is refused naming the rule
    rules = {
        "rules": [],
        "default_rule": {"forward": {"always": {"kind": "user", "target": "3000"}}},
    }
    assert op.put(f"{BASE}/answering/1000", json=rules).status_code in (200, 201)
    _refused_delete = op.delete(f"{BASE}/users/3000")
    assert _refused_delete.status_code == 422, _refused_delete.text
    assert any(e["field"].startswith("answering[1000]") for e in _refused_delete.json()["errors"])
    assert op.delete(f"{BASE}/answering/1000").status_code == 204
    assert op.delete(f"{BASE}/users/3000").status_code == 204


def test_the_users_list_is_paged(op: httpx.Client) -> None:
    first = op.get(f"{BASE}/users", params={"limit": 3}).json()
    assert first["total"] == USERS + 4
    assert [i["key"] for i in first["items"]] == ["100", "101", "102"]
    second = op.get(f"{BASE}/users", params={"limit": 3, "cursor": first["next_cursor"]}).json()
    assert [i["key"] for i in second["items"]] == ["103", "1000", "1001"]
