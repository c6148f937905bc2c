"""The registrations list paged by the index (softswitch.api.registrations): the same rows,
in the same order, with the same totals as walking every binding and sorting them, for
every filter, scope and page size; and it follows the registrar as AORs come and go."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest

from config.models import Tenant
from softswitch.api.registrations import RegistrationIndex
from softswitch.location import LocationService
from softswitch.sip.address import Address
from storage import open_store
from storage.base import Binding

NOW = 1_000_000.0
SOURCE = Address("UDP", "127.0.0.1", 40001)


def _tenant(name: str, domain: str, extensions: list[str], aliases: dict[str, str]) -> Tenant:
    users = [{"extension": e, "password": "pw", "username": aliases.get(e, "")} for e in extensions]
    return Tenant.model_validate({"name": name, "domain": domain, "users": users})


def _binding(aor: str, contact: str, expires_in: float, reachable: bool | None) -> Binding:
    return Binding(
        aor=aor,
        contact=contact,
        expires_at=NOW + expires_in,
        q=None,
        call_id="c",
        cseq=1,
        instance_id=None,
        reg_id=None,
        path=[],
        received=None,
        transport="UDP",
        user_agent="phone",
        registered_at=NOW - 10,
        reachable=reachable,
    )


def whole_list(
    location: LocationService,
    tenant: Tenant,
    sees: Callable[[str], bool] | None,
    extension: str | None,
    reachable: bool | None,
) -> list[tuple[str, str, str]]:
    """The list as the endpoint built it before the index: every binding, filtered, sorted."""
    suffix = "@" + tenant.domain.lower()
    rows = []
    for b in location.all_bindings(NOW):
        if not b.aor.lower().endswith(suffix):
            continue
        user = b.aor.removeprefix("sip:")[: -len(suffix)]
        found = tenant.user_by_extension(user) or tenant.user_by_username(user)
        ext = found.extension if found is not None else user
        if sees is not None and not sees(ext):
            continue
        if (extension is not None and ext != extension) or (
            reachable is not None and b.reachable is not reachable
        ):
            continue
        rows.append((ext, b.contact, b.aor))
    rows.sort(key=lambda row: (row[0], row[1]))
    return rows


def paged(
    index: RegistrationIndex,
    location: LocationService,
    tenant: Tenant,
    limit: int,
    **filters: object,
) -> tuple[set[int], list[tuple[str, str, str]]]:
    totals, rows, after = set(), [], None
    for _ in range(1000):
        page = index.page(location, tenant, NOW, after=after, limit=limit, **filters)  # type: ignore[arg-type]
        totals.add(page.total)
        assert len(page.rows) <= limit
        rows += [(ext, b.contact, b.aor) for ext, b in page.rows]
        if page.next_key is None:
            return totals, rows
        after = page.next_key
    raise AssertionError("the pages never end")


@pytest.fixture
async def location(tmp_path: Path) -> LocationService:
    # Never started: nothing is written to the store, the table is all that is read.
    return LocationService(open_store(f"sqlite:///{tmp_path / 'loc.db'}"))


def _register(location: LocationService, rng: random.Random, aor: str, contacts: int) -> None:
    location.update(
        aor,
        [
            (
                _binding(
                    aor,
                    f"sip:{rng.randrange(10**6)}@10.0.{rng.randrange(256)}.{n}",
                    rng.choice([-5, 60, 3600]),
                    rng.choice([None, True, False]),
                ),
                SOURCE,
            )
            for n in range(contacts)
        ],
    )


def _check_every_way(index: RegistrationIndex, location: LocationService, tenant: Tenant) -> None:
    site = frozenset({"100", "1000", "105", "990"})
    for sees in (None, site.__contains__):
        for extension in (None, "105", "1000", "990", "nobody"):
            for reachable in (None, True, False):
                want = whole_list(location, tenant, sees, extension, reachable)
                for limit in (1, 3, 50):
                    totals, rows = paged(
                        index,
                        location,
                        tenant,
                        limit,
                        sees=sees,
                        extension=extension,
                        reachable=reachable,
                    )
                    assert rows == want, (extension, reachable, limit)
                    assert totals == {len(want)}


async def test_pages_are_the_sorted_whole_list(location: LocationService) -> None:
    rng = random.Random(17)
    extensions = [str(120 + i) for i in range(40)] + ["100", "105", "107", "1000", "1001", "10"]
    acme = _tenant("acme", "acme.test", extensions, {"105": "alice"})
    globex = _tenant("globex", "globex.test", ["100", "101"], {})
    for ext in extensions:
        _register(location, rng, f"sip:{ext}@acme.test", rng.choice([0, 1, 1, 2, 3]))
    _register(location, rng, "sip:alice@acme.test", 2)  # an older AOR by username
    _register(location, rng, "sip:107@ACME.test", 1)  # the domain in capitals
    _register(location, rng, "sip:990@acme.test", 2)  # not a user (any more)
    for ext in ("100", "101"):
        _register(location, rng, f"sip:{ext}@globex.test", 2)
    index = RegistrationIndex()
    _check_every_way(index, location, acme)
    _check_every_way(index, location, globex)

    # The registrar moves: new AORs, AORs gone, refreshes, expiry; provisioning moves.
    _register(location, rng, "sip:1002@acme.test", 2)
    location.update("sip:101@acme.test", (), list(location.current("sip:101@acme.test", NOW)))
    for aor in ("sip:100@acme.test", "sip:1000@acme.test"):
        _register(location, rng, aor, 1)  # more contacts of an AOR that is there
    acme = _tenant("acme", "acme.test", [*extensions, "1002", "990"], {"105": "alice"})
    _check_every_way(index, location, acme)
    # A change that keeps the users (a number re-pointed) keeps the rows; one of another
    # user set does not (990 is a user no more: its AOR pages under its own name).
    _check_every_way(index, location, acme.model_copy(update={"max_calls": 7}))
    _check_every_way(index, location, _tenant("acme", "acme.test", extensions, {}))


async def test_a_cursor_the_api_did_not_give_is_refused() -> None:
    from softswitch.api.errors import ApiError
    from softswitch.api.paging import encode_cursor
    from softswitch.api.routes_live import _after

    assert _after(None) is None
    assert _after(encode_cursor(["105", "sip:x@h"])) == ("105", "sip:x@h")
    for bad in (encode_cursor(50), encode_cursor(["105"]), encode_cursor([1, 2]), "%%"):
        with pytest.raises(ApiError):
            _after(bad)
