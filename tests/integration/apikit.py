"""A running switch with its admin API, in a thread of its own (its own event loop), so
synchronous clients (httpx, schemathesis) talk to it over real loopback HTTP."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest

from config.models import SwitchConfig
from softswitch.api import ApiServer
from softswitch.api.routes_logins import LoginIn, create_login, issue_token
from softswitch.server import Switch
from storage.cdr import Cdr
from tests.pg import dsn_with_search_path, random_schema_name

_T = TypeVar("_T")

TENANT_A, TENANT_B = "acme", "globex"


def _tenant(name: str, domain: str, first: int, did_prefix: str) -> dict[str, Any]:
    users = [
        {"extension": str(first + i), "password": f"pw{first + i}", "can_monitor": i == 0}
        for i in range(4)
    ]
    return {
        "name": name,
        "domain": domain,
        "users": users,
        "conferences": [{"name": "standup", "extension": str(first + 90)}],
        "sites": [{"name": "north"}],  # a site manager's; no user works there
        "routing": {
            "dids": [
                {"number": f"{did_prefix}0100", "treatment": "user", "destination": str(first)}
            ],
            "disaster_plans": [
                {
                    "name": "Office outage",
                    "numbers": [{"number": f"{did_prefix}0100", "forward_to": "+12125550199"}],
                }
            ],
        },
    }


def api_config(database_url: str, **api: Any) -> SwitchConfig:
    """Two tenants (acme: extensions 100-103, globex: 200-203), SIP and API on free
    loopback ports, signalling only (no media engine)."""
    return SwitchConfig.model_validate(
        {
            "sip": {"listen": [{"transport": "udp", "host": "127.0.0.1", "port": 0}]},
            "database": {"url": database_url},
            "logging": {"file": "", "level": "WARNING"},
            "media": {"anchor": "never"},
            "overload": {"max_queue_delay": 0},
            "api": {"enabled": True, "host": "127.0.0.1", "port": 0, **api},
            "tenants": [
                _tenant(TENANT_A, "acme.test", 100, "+1415555"),
                _tenant(TENANT_B, "globex.test", 200, "+1646555"),
            ],
        }
    )


class LiveApi:
    """Switch + ApiServer on a private loop in a daemon thread; ``call`` runs a coroutine
    there (the store's connections belong to that loop)."""

    def __init__(self, config: SwitchConfig) -> None:
        self.config = config
        self.loop = asyncio.new_event_loop()
        self.switch: Switch | None = None
        self.server: ApiServer | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="live-api", daemon=True)

    def start(self) -> LiveApi:
        self._thread.start()
        if not self._ready.wait(60):
            raise RuntimeError("switch with API did not start within 60 s")
        if self._error is not None:
            raise RuntimeError(f"switch with API failed: {self._error!r}") from self._error
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._main())
        finally:
            self.loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        try:
            self.switch = Switch(self.config)
            await self.switch.start()
            self.server = ApiServer(self.switch)
            await self.server.start()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            if self.switch is not None:
                await self.switch.stop()
            return
        self._ready.set()
        await self._stop.wait()
        await self.server.stop()
        await self.switch.stop()

    def stop(self) -> None:
        if self._stop is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    def call(self, coro: Coroutine[Any, Any, _T], timeout: float = 30) -> _T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.port}"

    @property
    def sip_port(self) -> int:
        assert self.switch is not None
        return self.switch.listening[0].port

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    # -- fixtures' helpers ------------------------------------------------------------------

    def login(self, name: str, role: str, password: str | None = None, **scope: Any) -> str:
        """Create a login straight in the store and return an API token for it."""
        assert self.switch is not None
        store, tenants = self.switch.store, {t.name: t for t in self.config.tenants}
        body = LoginIn(name=name, role=role, password=password, **scope)  # type: ignore[arg-type]

        async def work() -> str:
            await create_login(store, tenants, body, None)
            return (await issue_token(store, name, "api", "test", None)).token

        return self.call(work())

    def add_cdrs(self, cdrs: list[Cdr]) -> None:
        assert self.switch is not None
        self.call(self.switch.store.save_cdrs(cdrs))


def cdr(call_id: str, tenant: str, caller: str, dialled: str, **fields: Any) -> Cdr:
    """A finished call as the switch records it (answered unless told otherwise)."""
    start = fields.pop("start", time.time() - 3600)
    answered = fields.pop("answered", True)
    values: dict[str, Any] = {
        "call_id": call_id,
        "sip_call_id": f"sip-{call_id}",
        "tenant": tenant,
        "direction": "internal",
        "caller_number": caller,
        "caller_name": f"User {caller}",
        "dialled": dialled,
        "destination": dialled if answered else "",
        "trunk": "",
        "start": start,
        "answer": start + 2 if answered else None,
        "end": start + 62,
        "disposition": "ANSWERED" if answered else "NO ANSWER",
        "sip_code": 200 if answered else 480,
        "q850_cause": 16 if answered else 19,
        "q850_name": "NORMAL_CLEARING" if answered else "NO_ANSWER",
        "legs": [
            {
                "target": f"user_devices {dialled}",
                "contact": f"sip:{dialled}@127.0.0.1:5999",
                "status": 200 if answered else 480,
                "started": start + 0.1,
                "ended": None if answered else start + 30,
                "answered": answered,
            }
        ],
    }
    values.update(fields)
    return Cdr(**values)


def pg_schema(dsn: str) -> str:
    """A DSN on a new, empty schema of the test server (left for the server's cleanup)."""
    schema = random_schema_name()

    async def create() -> None:
        conn = await asyncpg.connect(dsn, timeout=10.0)
        try:
            await conn.execute(f"CREATE SCHEMA {schema}")
        finally:
            await conn.close()

    asyncio.run(create())
    return dsn_with_search_path(dsn, schema)


def live_api(request: pytest.FixtureRequest, tmp: pytest.TempPathFactory) -> Iterator[LiveApi]:
    """The body of a module's ``live`` fixture: one switch with its API per backend
    (``request.param``: "sqlite" or "postgresql")."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp.mktemp('api')}/switch.db"
    else:
        url = pg_schema(request.getfixturevalue("pg_dsn"))
    api = LiveApi(api_config(url, max_login_failures=3)).start()
    yield api
    api.stop()


def role_tokens(live: LiveApi) -> dict[str, str]:
    """A token per role, all scoped to tenant acme (the user is extension 101), one for
    globex's office manager, and a few CDRs of both tenants."""
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
