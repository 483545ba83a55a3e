"""The error catalog (costguard.errors): every error class, found by walking the subclasses of
`CostguardError` after importing every module, declares its problem and stage, and the HTTP
answer, the telemetry stage and the OpenAPI document all say what the catalog says."""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import re
import typing
from decimal import Decimal
from typing import Any

import costguard
import pytest
from costguard import telemetry
from costguard.errors import CostguardError, QuotaFigures, Stage

import functions
from functions.api import handler
from functions.api.deps import get_ledger
from functions.api.problems import BASE
from tests.api.conftest import Api
from tests.api.test_telemetry import emf


def _import_everything() -> None:
    for package in (costguard, functions):
        for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            importlib.import_module(module.name)


def _error_classes() -> list[type[CostguardError]]:
    _import_everything()
    found: list[type[CostguardError]] = []
    pending = list(CostguardError.__subclasses__())
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return sorted(found, key=lambda c: c.__name__)


ERRORS = _error_classes()
FIGURES = QuotaFigures(
    "tenant:llm:month",
    "tenant",
    "llm",
    "month",
    "hard",
    Decimal("10"),
    Decimal("9"),
    Decimal("0.5"),
    "2026-11",
    "2026-12-01T00:00:00Z",
    3600,
)


class _Record:
    """What OverrunRejected reads of its cost record."""

    reservation_id = "r-1"
    cost_usd = Decimal("1")
    actual_usd = Decimal("2")

    def model_dump(self, **_: Any) -> dict[str, Any]:
        return {"reservation_id": self.reservation_id}


SAMPLES: dict[Any, Any] = {
    Any: _Record(),
    Decimal | None: Decimal("1"),
    list[str] | None: ["gpt-4o"],
    str: "acme",
    str | None: "acme",
    int: 1,
    Decimal: Decimal("2"),
    QuotaFigures: FIGURES,
}


def instance(cls: type[CostguardError]) -> CostguardError:
    """An instance built from the constructor's annotations (a new argument type: add a sample)."""
    hints = typing.get_type_hints(cls.__init__)
    args = {
        name: SAMPLES[hints[name]]
        for name, parameter in inspect.signature(cls.__init__).parameters.items()
        if name != "self" and parameter.kind is parameter.POSITIONAL_OR_KEYWORD
    }
    return cls(**args) if args or cls.__init__ is not Exception.__init__ else cls("why")


def test_the_walk_finds_the_errors_the_issue_named() -> None:
    names = {cls.__name__ for cls in ERRORS}
    assert {"IdempotencyMismatch", "KeyNotFound", "MalformedEvent", "UnknownPlan"} <= names
    assert len(ERRORS) >= 20


@pytest.mark.parametrize("cls", ERRORS, ids=lambda c: c.__name__)
def test_every_error_class_declares_its_problem_and_stage(cls: type[CostguardError]) -> None:
    problem = cls.problem

    assert problem is not CostguardError.problem, f"{cls.__name__} declares no problem"
    assert 400 <= problem.status <= 599
    assert re.fullmatch(r"[a-z]+(-[a-z0-9]+)*", problem.type)
    assert problem.title and problem.title[0].isupper()
    assert isinstance(problem.stage, Stage) and problem.stage is not Stage.UNKNOWN
    assert telemetry.stage_of(instance(cls)) is problem.stage


@pytest.mark.parametrize("cls", ERRORS, ids=lambda c: c.__name__)
def test_every_error_class_answers_its_problem_over_http_with_its_stage(
    api: Api, capsys: pytest.CaptureFixture[str], cls: type[CostguardError]
) -> None:
    # Given a route whose ledger dependency raises the error
    error = instance(cls)

    def raising() -> Any:
        raise error

    api.call("POST", "/v1/tenants", {"tenant_id": "acme", "name": "Acme"})
    handler.app.dependency_overrides[get_ledger] = raising
    capsys.readouterr()

    answer = api.call("GET", "/v1/tenants/acme/quotas")

    problem = cls.problem
    assert answer.status == problem.status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    body = answer.json
    assert (body["type"], body["title"], body["status"]) == (
        BASE + problem.type,
        problem.title,
        problem.status,
    )
    assert isinstance(body["detail"], str) and body["detail"]
    failures = [d["stage"] for d in emf(capsys.readouterr().out) if "Failures" in d]
    assert failures == [problem.stage.value]


def test_the_document_lists_for_each_status_exactly_the_catalogs_problem_types(api: Api) -> None:
    document = json.loads(api.call("GET", "/v1/openapi.json", key=None).text)
    by_status: dict[int, set[str]] = {}
    for cls in ERRORS:
        by_status.setdefault(cls.problem.status, set()).add(BASE + cls.problem.type)

    seen: dict[int, set[str]] = {}
    for operations in document["paths"].values():
        for operation in operations.values():
            for status, response in operation["responses"].items():
                content = response.get("content", {}).get("application/problem+json")
                if content is None:
                    continue
                declared = content["schema"]["allOf"][1]["properties"]["type"]["enum"]
                seen.setdefault(int(status), set()).update(declared)

    for status, types in by_status.items():
        if status in seen:  # statuses no route answers (a Slack refusal) are not documented
            assert types <= seen[status], status
    assert by_status.keys() - seen.keys() <= {502}
