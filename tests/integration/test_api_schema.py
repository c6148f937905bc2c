"""The OpenAPI document fuzzed with schemathesis (a bounded run, on SQLite and PostgreSQL):
no answer is a server error, and every answer matches what the document says of it
(status code, content type, body schema, headers)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.integration.apikit import TENANT_A, LiveApi, api_config, cdr, pg_schema

pytestmark = pytest.mark.integration

EXAMPLES = 12  # per operation: a bounded run (about 40 operations)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def fuzzed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveApi, str]]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('fuzz')}/switch.db"
    else:
        url = pg_schema(request.getfixturevalue("pg_dsn"))
    live = LiveApi(api_config(url)).start()
    token = live.login("fuzzer", "operator", password="fuzzer-password")
    live.login("someone", "user", tenants=[TENANT_A], extension="100")
    live.add_cdrs([cdr("c-1", TENANT_A, "100", "101"), cdr("c-2", TENANT_A, "101", "100")])
    yield live, token
    live.stop()


def test_openapi_document_holds_under_fuzzing(fuzzed: tuple[LiveApi, str]) -> None:
    live, token = fuzzed
    # /v1/logout would revoke the fuzzer's own token and leave the rest of the run at 401
    schema = schemathesis.openapi.from_url(f"{live.url}/openapi.json").exclude(path="/v1/logout")
    headers = {"Authorization": f"Bearer {token}"}
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: Any) -> None:
            if case.path_parameters and case.path_parameters.get("tenant") == "":
                case.path_parameters["tenant"] = TENANT_A
            case.call_and_validate(base_url=live.url, headers=headers, checks=CHECKS)

        try:
            fuzz()
        except Exception as exc:  # every operation is fuzzed; all failures are reported
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert operations >= 30
    assert not failures, "\n\n".join(failures)
