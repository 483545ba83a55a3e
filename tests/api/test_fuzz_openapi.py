"""Hostile input generated from the service's own OpenAPI document (schemathesis).

Every operation of `GET /v1/openapi.json` is fed schema-valid and schema-violating requests
through the local runner's WSGI app (`local.server.Runner.wsgi`: werkzeug request → API
Gateway v2 event → the real Lambda handler → the embedded store). In process rather than over
a socket: the same code path minus the TCP hop, deterministic (`derandomize`), and fast enough
for CI. The e2e tests cover the socket.

Asserted for every request: no 5xx, the status code, content type, headers and body are the
ones the document declares, schema-violating requests are refused, and a route that needs a
key refuses a request without one. After the run, the ledger still reconciles.

Checks left out on purpose:
- `positive_data_acceptance`: the document cannot express cross-field rules (an llm usage
  needs a model or an explicit cost; `tier` belongs to sandbox), so some schema-valid bodies
  are rightly a 422.
- `missing_required_header`: Powertools validates a body before the auth middleware runs
  (decisions D14), so a request without a key *and* with an invalid body is a 422, not a 401.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from functions.api.routes.health import openapi_document
from local.server import Runner, build

ADMIN = "cg-admin-fuzz-0123456789"
TENANT = "fuzz-acme"
EXAMPLES = int(os.environ.get("COSTGUARD_FUZZ_EXAMPLES", "25"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    ignored_auth,
]


@pytest.fixture(scope="module")
def runner() -> Iterator[Runner]:
    from costguard.settings import Settings

    from functions.api.handler import app

    runner, close = build(Settings(admin_key=ADMIN, api_key_cache_seconds=0), None)  # type: ignore[arg-type]
    try:
        runner.ledger.create_tenant(TENANT, "Fuzz Acme", "pro")
        from tests.helpers import quota

        runner.ledger.put_quota(TENANT, quota("tenant:llm:month", "100"))
        runner.ledger.put_quota(TENANT, quota("tenant:all:month", "150"))
        _current.append(runner)
        yield runner
    finally:
        _current.clear()
        app.dependency_overrides.clear()
        close()


_current: list[Runner] = []


def _app(environ: dict[str, Any], start_response: Any) -> Any:
    """The WSGI app schemathesis calls: the runner of the running module."""
    return _current[-1].wsgi(environ, start_response)


# The document the runner serves at GET /v1/openapi.json, loaded at collection time (the
# runner and its store exist only while this module's tests run).
schema = schemathesis.openapi.from_dict(json.loads(openapi_document()))
schema.app = _app


@schema.auth()
class AdminKey:
    """The admin key on every request, except those generated without their credentials."""

    def get(self, case: Any, context: Any) -> str:
        return ADMIN

    def set(self, case: Any, data: str, context: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


def _aim_at_the_seeded_tenant(case: Any) -> None:
    """Half of the generated tenant ids (chosen by the data, so still deterministic) are
    replaced by the tenant that exists, so the routes get past "no such tenant" too."""
    params = case.path_parameters or {}
    generated = params.get("tenant_id")
    if isinstance(generated, str):
        digest = hashlib.sha256(generated.encode()).digest()[0]
        if digest % 2 == 0:
            params["tenant_id"] = TENANT


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_every_operation_answers_as_documented_and_never_5xx(case: Any, runner: Runner) -> None:
    _aim_at_the_seeded_tenant(case)

    response = case.call()

    case.validate_response(response, checks=CHECKS)
    if response.status_code >= 400:
        assert response.headers["content-type"][0].startswith("application/problem+json") or (
            response.status_code == 429
        ), response.text
        assert "Traceback (most recent call last)" not in response.text
        json.loads(response.text)


def test_the_ledger_still_reconciles_after_the_fuzzing(runner: Runner) -> None:
    assert runner.ledger.reconcile(TENANT) == []
