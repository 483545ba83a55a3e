"""The client's models cannot drift from the API: each one is compared, field by field, with
the component of the same name in the OpenAPI document the running server publishes."""

from __future__ import annotations

from typing import Any

import pytest
from costguard_client import CostGuard
from costguard_client.models import REQUEST_MODELS, RESPONSE_MODELS
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode

Shape = dict[str, tuple[str, bool]]
"""field name → (type signature, required)."""

ROUTES = {
    ("post", "/v1/tenants/{tenant_id}/reservations"): ("ReserveRequest", "Reservation"),
    ("post", "/v1/tenants/{tenant_id}/reservations/{reservation_id}/commit"): (
        "CommitRequest",
        "CostRecord",
    ),
    ("delete", "/v1/tenants/{tenant_id}/reservations/{reservation_id}"): (None, "Release"),
    ("post", "/v1/tenants/{tenant_id}/usage"): ("RecordRequest", "CostRecord"),
    ("post", "/v1/tenants/{tenant_id}/quota-checks"): ("Usage", "CheckResult"),
    ("get", "/v1/tenants/{tenant_id}/quotas"): (None, "QuotaList"),
    ("put", "/v1/tenants/{tenant_id}/quotas/{quota_id}"): ("QuotaPut", "QuotaState"),
    ("get", "/v1/platform/quotas"): (None, "QuotaList"),
    ("put", "/v1/platform/quotas/{quota_id}"): ("QuotaPut", "QuotaState"),
    ("post", "/v1/tenants"): ("TenantCreate", "Tenant"),
    ("post", "/v1/tenants/{tenant_id}/pause"): ("PauseRequest", "PauseState"),
    ("post", "/v1/tenants/{tenant_id}/unpause"): ("PauseRequest", "PauseState"),
    ("post", "/v1/tenants/{tenant_id}/api-keys"): (None, "IssuedApiKey"),
    ("get", "/v1/tenants/{tenant_id}/usage"): (None, "UsageReport"),
    ("get", "/v1/tenants/{tenant_id}/usage/records"): (None, "RecordPage"),
    ("get", "/v1/tenants/{tenant_id}/summary"): (None, "Summary"),
    ("get", "/v1/pricing"): (None, "PriceList"),
    ("put", "/v1/pricing/{provider}/{model}"): ("PricePut", "ModelPriceOut"),
    ("get", "/v1/pricing/{provider}/{model}"): (None, "ModelPriceOut"),
    ("get", "/v1/health"): (None, "Health"),
    ("get", "/v1/tenants/{tenant_id}/alerts"): (None, "AlertPage"),
    ("get", "/v1/platform/alerts"): (None, "AlertPage"),
    ("get", "/v1/tenants/{tenant_id}/recommendations"): (None, "RecommendationList"),
    ("get", "/v1/tenants/{tenant_id}/settings"): (None, "TenantSettingsState"),
    ("put", "/v1/tenants/{tenant_id}/settings"): ("TenantSettings", "TenantSettingsState"),
}
"""Every route the client calls with a typed body: (request model, response model)."""


def _name(ref: str) -> str:
    return ref.rsplit("/", 1)[1]


def _signature(schema: dict[str, Any]) -> str:
    """A property's type, without constraints: what a client must agree on to read or send it."""
    if "$ref" in schema:
        return _name(schema["$ref"])
    if "anyOf" in schema:
        parts: set[str] = set()
        for option in schema["anyOf"]:
            parts.update(_signature(option).split(" | "))
        return " | ".join(sorted(parts))
    if "const" in schema:
        return f"const {schema['const']!r}"
    if "enum" in schema:
        return "enum " + ",".join(sorted(map(str, schema["enum"])))
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array[{_signature(schema.get('items', {}))}]"
    if kind == "object":
        return f"object[{_signature(schema.get('additionalProperties', {}))}]"
    if "format" in schema:
        return f"{kind}:{schema['format']}"
    return str(kind)


def shape(schema: dict[str, Any]) -> Shape:
    required = set(schema.get("required", []))
    return {
        name: (_signature(prop), name in required)
        for name, prop in schema.get("properties", {}).items()
    }


@pytest.fixture(scope="module")
def components(admin: CostGuard) -> dict[str, Any]:
    document = admin.openapi()
    assert document["openapi"].startswith("3.")
    schemas: dict[str, Any] = document["components"]["schemas"]
    return schemas


@pytest.fixture(scope="module")
def paths(admin: CostGuard) -> dict[str, Any]:
    result: dict[str, Any] = admin.openapi()["paths"]
    return result


@pytest.fixture(scope="module")
def admin(server: Any) -> Any:
    from tests.e2e.conftest import ADMIN

    with CostGuard(server.url, ADMIN) as guard:
        yield guard


def _client_shape(model: type[BaseModel], mode: JsonSchemaMode) -> Shape:
    return shape(model.model_json_schema(mode=mode))


@pytest.mark.parametrize("model", REQUEST_MODELS, ids=lambda m: m.__name__)
def test_each_request_model_matches_the_servers(
    model: type[BaseModel], components: dict[str, Any]
) -> None:
    assert model.__name__ in components, f"the server has no component {model.__name__}"
    assert _client_shape(model, "validation") == shape(components[model.__name__])


@pytest.mark.parametrize("model", RESPONSE_MODELS, ids=lambda m: m.__name__)
def test_each_response_model_matches_the_servers(
    model: type[BaseModel], components: dict[str, Any]
) -> None:
    assert model.__name__ in components, f"the server has no component {model.__name__}"
    assert _client_shape(model, "serialization") == shape(components[model.__name__])


def test_every_route_the_client_types_takes_and_returns_those_models(
    paths: dict[str, Any],
) -> None:
    for (method, path), (request, response) in ROUTES.items():
        operation = paths[path][method]
        if request is not None:
            body = operation["requestBody"]["content"]["application/json"]["schema"]
            assert request in _signature(body).split(" | "), (method, path)
        # The success status is the API tests' business; here, what the success carries.
        (answer,) = (
            r["content"]["application/json"]["schema"]
            for status, r in operation["responses"].items()
            if status.startswith("2") and "application/json" in r.get("content", {})
        )
        assert _signature(answer) == response, (method, path)


def test_the_comparison_notices_a_drift() -> None:
    """The check is only worth something if a renamed, retyped or newly required field fails it."""
    server = {
        "properties": {"cost_usd": {"type": "string"}, "model": {"type": "string"}},
        "required": ["cost_usd"],
    }
    assert shape(server) == {"cost_usd": ("string", True), "model": ("string", False)}
    for drifted in (
        {
            "properties": {"cost": {"type": "string"}, "model": {"type": "string"}},
            "required": ["cost"],
        },
        {
            "properties": {"cost_usd": {"type": "number"}, "model": {"type": "string"}},
            "required": ["cost_usd"],
        },
        {
            "properties": {"cost_usd": {"type": "string"}, "model": {"type": "string"}},
            "required": ["cost_usd", "model"],
        },
    ):
        assert shape(drifted) != shape(server)
