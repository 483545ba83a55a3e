"""Hostile input generated from the service's own OpenAPI document (schemathesis), against
`make run` over a real socket.

The module starts the local runner as `make run` does (`python -m local`: the API handler in
its worker processes, the stream poller, the bus, the schedules) on a free 127.0.0.1 port, on
a table of its own of the session's DynamoDB Local (`AWS_ENDPOINT_URL_DYNAMODB`, as `make run`
takes one), and stops it at the end (SIGTERM, waited for). Every operation of the served
document is fed schema-valid and schema-violating requests over HTTP; then sequences of calls
chained by the links schemathesis infers (create a tenant → issue its key → reserve →
commit…: the stateful phase), each scenario on a runner and table of its own. Deterministic in
what it sends (`derandomize`); bounded by the example and step counts, a 120 s readiness
deadline per runner, a 29 s timeout per request (API Gateway waits 30) and a 30 s stop.

Every check schemathesis has runs on every answer (no 5xx; status, content type, headers and
body as documented; schema-violating requests refused, schema-valid ones accepted; no key →
401; use after free; resources available after creation…). After each scenario and after the
run, the ledger still reconciles (read by this process from the runner's table).

One check is narrowed, not dropped: `positive_data_acceptance` tolerates the refusals of a
schema-valid request that depend on state or on a comparison JSON Schema cannot state, each
named below (`TOLERATED`), and nothing else.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from costguard.ledger import Ledger, ledger_from_settings
from costguard.quotas import TENANT_ID
from costguard.settings import Settings
from hypothesis import HealthCheck, settings
from schemathesis.core.failures import Failure
from schemathesis.specs.openapi.checks import positive_data_acceptance

from functions.api.handler import app
from functions.api.routes.health import openapi_document
from local.store import client_for
from tests.e2e.conftest import ADMIN, Server, start_runner, stop_runner
from tests.helpers import quota

TENANT = "fuzz-acme"
REQUEST_TIMEOUT = 29
"""Seconds: API Gateway's HTTP API waits 30 s for its integration; slower is a failure there."""
EXAMPLES = int(os.environ.get("COSTGUARD_FUZZ_EXAMPLES", "25"))
STEPS = int(os.environ.get("COSTGUARD_FUZZ_STEPS", "10"))
TOLERATED: dict[str, str] = {
    # problem type → why a schema-valid request may get it
    "paused": "423: the run paused that tenant or user (a state, like a 409 or a 429)",
    "unknown-price": "422: prices are data, the document cannot list the priced models",
    "idempotency-key-reused": "422: the run used that Idempotency-Key with another body",
}
TOLERATED_REASONS = (
    # a 422 `validation` naming only these: comparisons between fields or with today's date,
    # and what the price catalog (data) says of a model
    "cannot exceed input_tokens",
    "reasoning_tokens cannot exceed output_tokens",
    "a range may span at most",
    "is after",
    "the catalog has no maximum output",
    "the worst case of this call is $0",
    # the zone database (data) decides which names of a zone's shape are zones
    "must be an IANA time zone",
    # a list whose items must differ by one field; a cursor valid only if the API issued it
    "share a threshold",
    "not a cursor this API returned",
)


def _state_or_inexpressible(response: Any) -> bool:
    try:
        body = json.loads(response.text)
    except ValueError:
        return False
    kind = str(body.get("type", "")).rsplit("/", 1)[-1]
    if kind in TOLERATED:
        return True
    reasons = [str(p.get("reason", "")) for p in body.get("invalid_params") or []]
    return (
        kind == "validation"
        and bool(reasons)
        and all(any(t in r for t in TOLERATED_REASONS) for r in reasons)
    )


def _path_is_as_documented(case: Any) -> bool:
    """Whether each path parameter matches its documented pattern. Not so for a value the
    stateful phase carried over an inferred link from another operation's answer (a platform
    quota's id into a tenant quota's path): schemathesis does not check those against the
    target's schema, and the API rightly refuses them."""
    operation = DOCUMENT["paths"][case.operation.path].get(case.method.lower(), {})
    for parameter in operation.get("parameters", []):
        pattern = parameter.get("schema", {}).get("pattern")
        value = (case.path_parameters or {}).get(parameter["name"])
        located = parameter["in"] == "path" and isinstance(pattern, str)
        if located and isinstance(value, str) and not re.search(pattern, value):
            return False
    return True


@schemathesis.check
def positive_data_accepted_unless_state(ctx: Any, response: Any, case: Any) -> bool | None:
    """`positive_data_acceptance`, except for the refusals `TOLERATED` names."""
    if not _path_is_as_documented(case):
        return None
    try:
        return positive_data_acceptance(ctx, response, case)
    except Failure:
        if _state_or_inexpressible(response):
            return None
        raise


EXCLUDED = [positive_data_acceptance]
ADDED = [positive_data_accepted_unless_state]


class Fuzzed:
    """A runner under fuzz (`make run` in a process of its own, on a table of its own of the
    session's DynamoDB Local) and a ledger on its table."""

    def __init__(self, endpoint: str, workers: int | None = None) -> None:
        self.table = f"costguard-fuzz-{uuid.uuid4().hex[:8]}"
        self.server: Server = start_runner(
            {
                "AWS_ENDPOINT_URL_DYNAMODB": endpoint,
                "COSTGUARD_TABLE_NAME": self.table,
                "COSTGUARD_API_KEY_CACHE_SECONDS": "0",  # a revoked key is refused at once
                **({"COSTGUARD_WORKERS": str(workers)} if workers else {}),
            }
        )
        settings = Settings(admin_key=ADMIN, api_key_cache_seconds=0, table_name=self.table)
        self.client = client_for(endpoint)
        self.ledger: Ledger = ledger_from_settings(settings, self.client)
        try:
            self.ledger.create_tenant(TENANT, "Fuzz Acme", "pro")
            self.ledger.put_quota(TENANT, quota("tenant:llm:month", "100"))
            self.ledger.put_quota(TENANT, quota("tenant:all:month", "150"))
        except BaseException:
            self.close()  # a runner is never left behind
            raise

    def close(self) -> None:
        """Stop the runner (SIGTERM, waited for), then drop its table."""
        try:
            stop_runner(self.server)
        finally:
            self.client.delete_table(TableName=self.table)


@pytest.fixture(scope="module", autouse=True)
def runner(ddb_local: str) -> Iterator[Fuzzed]:
    _endpoint.append(ddb_local)
    fuzzed = Fuzzed(ddb_local)
    try:
        served = fuzzed.server.http.request("GET", fuzzed.server.url + "/v1/openapi.json")
        assert json.loads(served.data) == json.loads(SERVED)  # the contract fuzzed is served
        yield fuzzed
    finally:
        _endpoint.clear()
        fuzzed.close()


_endpoint: list[str] = []
"""The session's DynamoDB Local, for the stateful scenarios' runners."""


# The document the runner serves at GET /v1/openapi.json, built at collection time (the
# runner exists only while this module's tests run; the fixture checks it serves this one).
SERVED = openapi_document(app)
DOCUMENT = json.loads(SERVED)
schema = schemathesis.openapi.from_dict(json.loads(SERVED))  # a copy: schemathesis edits it


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
    if isinstance(generated, str) and TENANT_ID.fullmatch(generated):  # not a negative case
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
def test_every_operation_answers_as_documented_and_never_5xx(case: Any, runner: Fuzzed) -> None:
    _aim_at_the_seeded_tenant(case)

    response = case.call(base_url=runner.server.url, timeout=REQUEST_TIMEOUT)

    case.validate_response(response, excluded_checks=EXCLUDED, additional_checks=ADDED)
    if response.status_code >= 400:
        assert response.headers["content-type"][0].startswith("application/problem+json") or (
            response.status_code == 429
        ), response.text
        assert "Traceback (most recent call last)" not in response.text
        json.loads(response.text)


class Workflow(schema.as_state_machine()):  # type: ignore[misc]
    """The stateful phase: chains of calls along the inferred links, every check on each. Each
    scenario starts a runner of its own on an empty table (one worker): Hypothesis replays a
    scenario's prefix while it explores, and the same calls must meet the same state (a tenant
    created twice would be a 409, and the next rule drawn would differ)."""

    def setup(self) -> None:
        self._fuzzed = Fuzzed(_endpoint[-1], workers=1)

    def teardown(self) -> None:
        try:
            assert self._fuzzed.ledger.reconcile(TENANT) == []
        finally:
            self._fuzzed.close()

    def get_call_kwargs(self, case: Any) -> dict[str, Any]:
        return {"base_url": self._fuzzed.server.url, "timeout": REQUEST_TIMEOUT}

    def validate_response(
        self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any
    ) -> None:
        case.validate_response(
            response,
            excluded_checks=EXCLUDED,
            additional_checks=[*ADDED, *(additional_checks or [])],
            transport_kwargs=kwargs or None,
            recorder=self.recorder,
        )


TestStatefulWorkflows = Workflow.TestCase
TestStatefulWorkflows.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    database=None,
)


def test_the_ledger_still_reconciles_after_the_fuzzing(runner: Fuzzed) -> None:
    assert runner.ledger.reconcile(TENANT) == []
    assert runner.server.process.poll() is None, runner.server.output()
