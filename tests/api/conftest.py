"""The API handler invoked with API Gateway HTTP API (payload 2.0) events, on moto."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
from costguard.auth import ApiKeys, fingerprint
from costguard.ledger import Ledger

from functions.api import handler
from functions.api.deps import get_keys, get_ledger

ADMIN_KEY = "cg-admin-test-key-0123456789abcdef"
CONTEXT = SimpleNamespace(
    function_name="api",
    memory_limit_in_mb=512,
    aws_request_id="req",
    invoked_function_arn="arn:aws:lambda:us-east-1:1:function:api",
)


def http_event(
    method: str,
    path: str,
    body: Any = None,
    key: str | None = None,
    headers: dict[str, str] | None = None,
    raw_body: str | None = None,
    query: str = "",
) -> dict[str, Any]:
    all_headers = {"content-type": "application/json", "accept": "application/json"}
    if key:
        all_headers["authorization"] = f"Bearer {key}"
    all_headers.update({k.lower(): v for k, v in (headers or {}).items()})
    text = raw_body if raw_body is not None else (json.dumps(body) if body is not None else None)
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": all_headers,
        "queryStringParameters": dict(p.split("=", 1) for p in query.split("&")) if query else None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "costguard",
            "domainName": "localhost",
            "domainPrefix": "localhost",
            "requestId": "req-1",
            "routeKey": "$default",
            "stage": "$default",
            "time": "25/Nov/2026:12:00:00 +0000",
            "timeEpoch": 1795608000000,
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "pytest",
            },
        },
        "body": text,
        "isBase64Encoded": False,
    }


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    text: str

    @property
    def json(self) -> Any:
        return json.loads(self.text)


@dataclass
class Api:
    ledger: Ledger

    def call(
        self, method: str, path: str, body: Any = None, key: str | None = ADMIN_KEY, **kw: Any
    ) -> Answer:
        raw = handler.lambda_handler(http_event(method, path, body, key, **kw), CONTEXT)
        headers = {k.lower(): v for k, v in (raw.get("headers") or {}).items()}
        return Answer(raw["statusCode"], headers, raw.get("body") or "")

    def tenant_key(self, tenant_id: str) -> str:
        answer = self.call("POST", f"/v1/tenants/{tenant_id}/api-keys")
        assert answer.status == 201, answer.text
        return str(answer.json["api_key"])


@pytest.fixture
def api(ledger: Ledger) -> Iterator[Api]:
    keys = ApiKeys(ledger.table, frozenset({fingerprint(ADMIN_KEY)}), cache_seconds=0)
    handler.app.dependency_overrides[get_ledger] = lambda: ledger
    handler.app.dependency_overrides[get_keys] = lambda: keys
    try:
        yield Api(ledger)
    finally:
        handler.app.dependency_overrides.clear()
