"""The directory's tables built apart (in a worker thread) and swapped in: lookups change in
one step, and a user whose model did not change keeps its cached HA1."""

from __future__ import annotations

from config.models import SwitchConfig, Tenant
from softswitch.directory import Directory
from softswitch.provisioning.runtime import with_tenants

BASE = SwitchConfig.model_validate({"tenants": []})


def tenant(users: list[dict[str, str]]) -> Tenant:
    return Tenant.model_validate({"name": "acme", "domain": "acme.test", "users": users})


def test_prepared_tables_serve_only_once_installed_and_keep_unchanged_ha1s() -> None:
    before = tenant(
        [{"extension": "100", "password": "pw-100"}, {"extension": "101", "password": "pw-101"}]
    )
    directory = Directory(with_tenants(BASE, [before]))
    realm = "acme.test"
    old_100 = directory.ha1("acme.test", "100", realm, "MD5")
    assert old_100 is not None and directory.ha1("acme.test", "101", realm, "MD5") is not None
    # 101's password changes, 100 is passed through as the same model, 102 is new
    changed = before.model_copy(
        update={
            "users": [
                before.users[0],
                *tenant([{"extension": "101", "password": "new-101"}]).users,
                *tenant([{"extension": "102", "password": "pw-102"}]).users,
            ]
        }
    )
    tables = directory.prepare(with_tenants(BASE, [changed]))
    assert directory.subscriber("acme.test", "102") is None  # not yet
    directory.install(tables)
    assert directory.subscriber("acme.test", "102") is not None
    assert directory._ha1.get(("acme.test", "100", realm, "MD5")) == old_100  # kept
    assert ("acme.test", "101", realm, "MD5") not in directory._ha1  # its password changed
    fresh = Directory(with_tenants(BASE, [changed]))
    assert directory.ha1("acme.test", "101", realm, "MD5") == fresh.ha1(
        "acme.test", "101", realm, "MD5"
    )
    assert directory.ha1("acme.test", "101", realm, "MD5") != Directory(
        with_tenants(BASE, [before])
    ).ha1("acme.test", "101", realm, "MD5")
