"""The OpenAPI document is generated from the code, valid, and covers API.md; the copy in the
repository (docs/openapi.json) is the one the service serves."""

from __future__ import annotations

import json
import os
from pathlib import Path

from openapi_spec_validator import validate

from tests.api.conftest import Api

API_MD_ROUTES = {
    ("post", "/v1/tenants/{tenant_id}/reservations"),
    ("post", "/v1/tenants/{tenant_id}/reservations/{reservation_id}/commit"),
    ("delete", "/v1/tenants/{tenant_id}/reservations/{reservation_id}"),
    ("post", "/v1/tenants/{tenant_id}/usage"),
    ("post", "/v1/tenants/{tenant_id}/quota-checks"),
    ("get", "/v1/tenants/{tenant_id}/quotas"),
    ("put", "/v1/tenants/{tenant_id}/quotas/{quota_id}"),
    ("delete", "/v1/tenants/{tenant_id}/quotas/{quota_id}"),
    ("post", "/v1/tenants"),
    ("post", "/v1/tenants/{tenant_id}/pause"),
    ("post", "/v1/tenants/{tenant_id}/unpause"),
    ("post", "/v1/tenants/{tenant_id}/api-keys"),
    ("delete", "/v1/tenants/{tenant_id}/api-keys/{key_id}"),
    ("get", "/v1/pricing"),
    ("put", "/v1/pricing/{provider}/{model}"),
    ("get", "/v1/platform/quotas"),
    ("put", "/v1/platform/quotas/{quota_id}"),
    ("delete", "/v1/platform/quotas/{quota_id}"),
    ("get", "/v1/tenants/{tenant_id}/usage"),
    ("get", "/v1/tenants/{tenant_id}/usage/records"),
    ("get", "/v1/tenants/{tenant_id}/summary"),
    ("get", "/v1/health"),
}


def test_the_document_is_valid_and_covers_api_md(api: Api) -> None:
    answer = api.call("GET", "/v1/openapi.json", key=None)
    assert answer.status == 200
    document = json.loads(answer.text)

    validate(document)

    present = {(m, p) for p, ops in document["paths"].items() for m in ops}
    assert present >= API_MD_ROUTES, API_MD_ROUTES - present


def test_interactive_docs_are_served(api: Api) -> None:
    answer = api.call("GET", "/v1/docs", key=None)
    assert answer.status == 200 and "swagger" in answer.text.lower()


COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def test_the_document_in_the_repository_is_the_one_served(api: Api) -> None:
    """`make openapi` writes it again (COSTGUARD_WRITE_OPENAPI=1) after a change of the API."""
    served = json.loads(api.call("GET", "/v1/openapi.json", key=None).text)
    text = json.dumps(served, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    if os.environ.get("COSTGUARD_WRITE_OPENAPI") == "1":
        COMMITTED.write_text(text, "utf-8")
    assert COMMITTED.read_text("utf-8") == text, "docs/openapi.json is stale: make openapi"
