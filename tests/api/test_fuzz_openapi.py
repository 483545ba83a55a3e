"""Hostile input generated from the service's own OpenAPI document (schemathesis), against
`make run` over a real socket.

The module starts the local runner as `make run` does (`python -m local`: the API handler in
its worker processes, DynamoDB Local started by the runner in a temporary data folder, the
stream poller, the bus, the schedules) on a free 127.0.0.1 port, and stops it at the end
(SIGTERM, waited for). Every operation of the served document is fed schema-valid and
schema-violating requests over HTTP, then sequences of calls chained by the links
schemathesis infers (create a tenant → issue its key → reserve → commit…: the stateful
phase). Deterministic in what it sends (`derandomize`); bounded by the example and step
counts, a 120 s readiness deadline, a 29 s timeout per request (API Gateway waits 30) and a 30 s stop.

Every check schemathesis has runs on every answer (no 5xx; status, content type, headers and
body as documented; schema-violating requests refused, schema-valid ones accepted; no key →
401; use after free; resources available after creation…). After each scenario and after the
run, the ledger still reconciles (read by this process straight from the runner's DynamoDB
Local).

One check is narrowed, not dropped: `positive_data_acceptance` tolerates the refusals of a
schema-valid request that depend on state or on a comparison JSON Schema cannot state, each
named below (`TOLERATED`), and nothing else.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import socket
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Fuzzed:
    """The runner under fuzz (`make run` in a process of its own) and a ledger on its store."""

    def __init__(self) -> None:
        ddb_port = _free_port()
        self.server: Server = start_runner(
            {
                "COSTGUARD_DDB_PORT": str(ddb_port),
                "COSTGUARD_API_KEY_CACHE_SECONDS": "0",  # a revoked key is refused at once
            }
        )
        settings = Settings(admin_key=ADMIN, api_key_cache_seconds=0)
        client = client_for(f"http://127.0.0.1:{ddb_port}")
        self.ledger: Ledger = ledger_from_settings(settings, client)
        self.scenarios = itertools.count()

    def seed(self, tenant: str) -> None:
        """The tenant the generated ids are half aimed at, with two quotas."""
        self.ledger.create_tenant(tenant, "Fuzz Acme", "pro")
        self.ledger.put_quota(tenant, quota("tenant:llm:month", "100"))
        self.ledger.put_quota(tenant, quota("tenant:all:month", "150"))


@pytest.fixture(scope="module", autouse=True)
def runner() -> Iterator[Fuzzed]:
    fuzzed = Fuzzed()
    try:
        served = fuzzed.server.http.request("GET", fuzzed.server.url + "/v1/openapi.json")
        assert json.loads(served.data) == json.loads(SERVED)  # the contract fuzzed is served
        fuzzed.seed(TENANT)
        _current.append(fuzzed)
        yield fuzzed
    finally:
        _current.clear()
        stop_runner(fuzzed.server)


_current: list[Fuzzed] = []
_seeded: list[str] = [TENANT]
"""The seeded tenant of the running phase: TENANT, or the stateful scenario's own."""


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
            params["tenant_id"] = _seeded[-1]


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
    """The stateful phase: chains of calls along the inferred links, every check on each. The
    runner's store is shared by every scenario (as a developer's `make run` is); each
    scenario, and each replay of one while Hypothesis explores, gets a seeded tenant of its
    own, so its calls meet that tenant as the scenario left it and nothing else. A generated
    tenant id met again finds its tenant created (a 409, which a valid request may get)."""

    def setup(self) -> None:
        fuzzed = _current[-1]
        self._tenant = f"fuzz-s{next(fuzzed.scenarios)}"
        fuzzed.seed(self._tenant)
        _seeded.append(self._tenant)

    def teardown(self) -> None:
        _seeded.remove(self._tenant)
        assert _current[-1].ledger.reconcile(self._tenant) == []

    def get_call_kwargs(self, case: Any) -> dict[str, Any]:
        return {"base_url": _current[-1].server.url, "timeout": REQUEST_TIMEOUT}

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
