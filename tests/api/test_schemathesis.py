"""Property-based fuzzing of the whole OpenAPI schema: no input may produce a 5xx.

Drives schemathesis' per-operation strategies with hypothesis directly (its pytest plugin does not
work with pytest 9 here)."""

from __future__ import annotations

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from tests.api.conftest import Keys


@pytest.mark.slow
def test_no_server_errors(client_keys: tuple[TestClient, Keys]) -> None:
    client, keys = client_keys
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    auth = {"Authorization": f"Bearer {keys.admin}"}  # an admin key reaches every route
    failures: list[str] = []
    checked = 0
    for result in schema.get_all_operations():
        op = result.ok()  # type: ignore[union-attr]

        @given(case=op.as_strategy())
        @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case: schemathesis.Case) -> None:
            case.headers = {**(case.headers or {}), **auth}  # type: ignore[assignment,dict-item]
            response = case.call()
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:200]}"
                )

        check()
        checked += 1
    assert checked >= 15
    assert not failures, "\n".join(failures[:10])
