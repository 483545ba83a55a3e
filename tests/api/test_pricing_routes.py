"""Prices over the API: the paginated catalog, operator overrides, names as people write them,
and costs as billed through quota checks, commits and recorded usage."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import Api

T = "acme"


@pytest.fixture
def key(api: Api) -> str:
    assert api.call("POST", "/v1/tenants", {"tenant_id": T, "name": "Acme"}).status == 201
    quota = {"limit_usd": "100.00", "mode": "hard"}
    assert api.call("PUT", f"/v1/tenants/{T}/quotas/tenant:llm:month", quota).status == 200
    return api.tenant_key(T)


def check(api: Api, key: str, body: dict[str, Any]) -> Any:
    """A quota check priced as stated: `output_tokens` is the output cap (0 unless given;
    absent, the worst case would add the model's maximum output from the catalog)."""
    usage = {"resource": "llm", "output_tokens": 0, **body}
    return api.call("POST", f"/v1/tenants/{T}/quota-checks", usage, key=key)


def test_the_catalog_pages_through_every_model_once(api: Api, key: str) -> None:
    # Given the whole catalog, page by page
    seen: list[tuple[str, str, str]] = []
    cursor = None
    pages = 0
    while True:
        query = "limit=1000" + (f"&cursor={cursor}" if cursor else "")
        page = api.call("GET", "/v1/pricing", key=key, query=query)
        assert page.status == 200, page.text
        seen += [(m["provider"], m["model"], m["effective_from"]) for m in page.json["models"]]
        assert (page.json["sandbox_tiers"] != []) == (cursor is None)
        pages += 1
        cursor = page.json["next_cursor"]
        if cursor is None:
            break

    # Then every model comes once, in order, and there are more than a thousand
    assert pages >= 4 and len(seen) >= 1000
    assert seen == sorted(set(seen))


def test_the_catalog_filtered_by_provider_shows_schedules(api: Api, key: str) -> None:
    listed = api.call("GET", "/v1/pricing", key=key, query="provider=google&limit=1000")

    assert listed.status == 200 and listed.json["next_cursor"] is None
    models = {m["model"]: m for m in listed.json["models"]}
    assert {m["provider"] for m in listed.json["models"]} == {"google"}
    pro = models["gemini-2.5-pro"]
    assert (pro["input_per_million_usd"], pro["output_per_million_usd"]) == (
        "1.250000",
        "10.000000",
    )
    assert pro["long_context"][0] | {"reasoning_per_million_usd": "-"} == {
        "above_input_tokens": 200_000,
        "input_per_million_usd": "2.500000",
        "output_per_million_usd": "15.000000",
        "cached_input_per_million_usd": "0.250000",
        "cache_write_per_million_usd": "2.500000",
        "cache_write_1h_per_million_usd": "2.500000",
        "reasoning_per_million_usd": "-",
    }
    assert pro["service_tiers"]["batch"]["input_per_million_usd"] == "0.625000"
    assert pro["max_output_tokens"] == 65_536
    assert pro["source"] == "litellm==1.110.2:gemini/gemini-2.5-pro"


def test_an_override_is_listed_with_its_reason(api: Api, key: str) -> None:
    listed = api.call("GET", "/v1/pricing", key=key, query="provider=anthropic&limit=1000")

    sonnet = next(m for m in listed.json["models"] if m["model"] == "claude-sonnet-4-5")
    assert "long-context" in sonnet["override"]
    assert sonnet["cache_write_per_million_usd"] == "3.750000"
    assert sonnet["cache_write_1h_per_million_usd"] == "6.000000"
    assert sonnet["long_context"][0]["output_per_million_usd"] == "22.500000"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("cursor=not%20a%20cursor", "cursor"),
        ("cursor=Zm9v", "cursor"),  # base64 of "foo": not one of ours
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("provider=Open%20AI", "provider"),
    ],
)
def test_a_bad_listing_query_is_a_422_that_names_it(
    api: Api, key: str, query: str, field: str
) -> None:
    answer = api.call("GET", "/v1/pricing", key=key, query=query)

    assert (answer.status, answer.headers["content-type"]) == (422, "application/problem+json")
    assert field in answer.text


def test_long_context_and_cache_writes_are_priced_as_billed(api: Api, key: str) -> None:
    # Gemini 2.5 Pro, 300k prompt: every token at $2.50/M in, $15/M out (was $0.385)
    gemini = check(
        api, key, {"model": "gemini-2.5-pro", "input_tokens": 300_000, "output_tokens": 1_000}
    )
    # Claude Sonnet 4.5, 250k prompt: $6/M in, $22.50/M out (was $0.765)
    claude = check(
        api, key, {"model": "claude-sonnet-4-5", "input_tokens": 250_000, "output_tokens": 1_000}
    )
    # 8k of 10k prompt tokens written to the 1-hour cache: 2k×$3 + 8k×$6
    written = check(
        api,
        key,
        {
            "model": "anthropic/claude-sonnet-4-5",
            "input_tokens": 10_000,
            "cache_write_1h_input_tokens": 8_000,
        },
    )

    assert gemini.json["requested_usd"] == "0.765000"
    assert claude.json["requested_usd"] == "1.522500"
    assert written.json["requested_usd"] == "0.054000"


@pytest.mark.parametrize(
    "model", ["gpt-4o-2024-08-06", "openai/gpt-4o", "claude-3-5-sonnet-latest"]
)
def test_names_that_were_422_are_priced(api: Api, key: str, model: str) -> None:
    answer = check(api, key, {"model": model, "input_tokens": 1_000, "output_tokens": 500})

    assert answer.status == 200, answer.text


def test_an_unknown_model_is_a_422_listing_the_nearest_names(api: Api, key: str) -> None:
    answer = check(api, key, {"model": "gpt-4o-mnii", "input_tokens": 1})

    assert (answer.status, answer.headers["content-type"]) == (422, "application/problem+json")
    assert answer.json["type"].endswith("/unknown-price")
    assert "gpt-4o-mini" in answer.json["nearest"]
    assert "gpt-4o-mini" in answer.json["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {"input_tokens": 10, "cached_input_tokens": 6, "cache_write_input_tokens": 5},
            "input_tokens",
        ),
        ({"input_tokens": 10, "output_tokens": 1, "reasoning_tokens": 2}, "reasoning_tokens"),
        ({"input_tokens": 10, "service_tier": "turbo"}, "service_tier"),
        ({"input_tokens": 10, "cache_write_1h_input_tokens": -1}, "cache_write_1h_input_tokens"),
        ({"input_tokens": 10, "service_tier": "priority"}, "model"),  # haiku has no priority rates
    ],
)
def test_inconsistent_usage_is_a_422_that_changes_nothing(
    api: Api, key: str, body: dict[str, Any], field: str
) -> None:
    answer = check(api, key, {"model": "claude-haiku-4-5", **body})

    assert (answer.status, answer.headers["content-type"]) == (422, "application/problem+json")
    assert field in answer.text
    quotas = api.call("GET", f"/v1/tenants/{T}/quotas", key=key).json["quotas"]
    assert quotas[0]["spent_usd"] == "0.000000" and quotas[0]["reserved_usd"] == "0.000000"


def test_a_committed_record_shows_the_price_components(api: Api, key: str) -> None:
    reserved = api.call(
        "POST",
        f"/v1/tenants/{T}/reservations",
        {
            "resource": "llm",
            "model": "claude-sonnet-4-5",
            "input_tokens": 300_000,
            "output_tokens": 2_000,
        },
        key=key,
    )
    assert reserved.status == 201, reserved.text
    usage = {
        "resource": "llm",
        "model": "claude-sonnet-4-5",
        "input_tokens": 300_000,
        "cached_input_tokens": 100_000,
        "cache_write_input_tokens": 50_000,
        "cache_write_1h_input_tokens": 50_000,
        "output_tokens": 2_000,
        "reasoning_tokens": 500,
    }

    record = api.call(
        "POST",
        f"/v1/tenants/{T}/reservations/{reserved.json['reservation_id']}/commit",
        usage,
        key=key,
    )

    assert record.status == 200, record.text
    body = record.json
    # 100k×6 + 100k×0.6 + 50k×7.5 + 50k×12 + 2k×22.5 (reasoning is output)
    assert body["cost_usd"] == "1.680000"
    assert (body["cache_write_input_tokens"], body["cache_write_1h_input_tokens"]) == (
        50_000,
        50_000,
    )
    assert (body["reasoning_tokens"], body["service_tier"]) == (500, "standard")
    assert body["price"] | {"source": "-"} == {
        "input_per_million_usd": "6",
        "output_per_million_usd": "22.5",
        "cached_input_per_million_usd": "0.6",
        "cache_write_per_million_usd": "7.5",
        "cache_write_1h_per_million_usd": "12",
        "reasoning_per_million_usd": "22.5",
        "service_tier": "standard",
        "long_context_above_input_tokens": "200000",
        "input_usd": "0.6",
        "cached_input_usd": "0.06",
        "cache_write_usd": "0.375",
        "cache_write_1h_usd": "0.6",
        "output_usd": "0.03375",
        "reasoning_usd": "0.01125",
        "priced_as": "anthropic/claude-sonnet-4-5",
        "effective_from": "2026-11-01T00:00:00Z",
        "source": "-",
    }


def test_an_operator_price_with_cache_writes_and_long_context_wins(api: Api, key: str) -> None:
    # Given an operator's price for a model, with a long-context band
    put = api.call(
        "PUT",
        "/v1/pricing/anthropic/claude-haiku-4-5",
        {
            "input_per_million_usd": "2",
            "output_per_million_usd": "10",
            "max_output_tokens": 32_000,
            "request_usd": "0.001",
            "long_context": [
                {
                    "above_input_tokens": 100_000,
                    "input_per_million_usd": "4",
                    "output_per_million_usd": "15",
                }
            ],
            "effective_from": "2026-11-02T00:00:00Z",
        },
    )
    assert put.status == 200, put.text
    assert put.json["cache_write_per_million_usd"] == "2.500000"  # Claude: 1.25× input
    assert put.json["cache_write_1h_per_million_usd"] == "4.000000"  # 2× input
    assert put.json["max_output_tokens"] == 32_000

    # When calls are priced, the operator's schedule is used (bands and fee included)
    small = check(api, key, {"model": "claude-haiku-4-5", "input_tokens": 100_000})
    large = check(api, key, {"model": "claude-haiku-4-5", "input_tokens": 100_001})
    written = check(
        api,
        key,
        {"model": "claude-haiku-4-5", "input_tokens": 1_000, "cache_write_input_tokens": 1_000},
    )

    assert small.json["requested_usd"] == "0.201000"  # 100k×2 + 0.001
    assert large.json["requested_usd"] == "0.401004"  # 100,001×4 + 0.001
    assert written.json["requested_usd"] == "0.003500"  # 1k×2.5 + 0.001


@pytest.mark.parametrize(
    "body",
    [
        {
            "long_context": [
                {
                    "above_input_tokens": 0,
                    "input_per_million_usd": "1",
                    "output_per_million_usd": "1",
                }
            ]
        },
        {
            "long_context": [
                {
                    "above_input_tokens": 5,
                    "input_per_million_usd": "1",
                    "output_per_million_usd": "1",
                }
            ]
            * 2
        },
        {"cache_write_per_million_usd": 1.5},
        {"max_output_tokens": 0},
        {"request_usd": "-0.01"},
    ],
)
def test_a_bad_operator_price_is_a_422_that_changes_nothing(
    api: Api, key: str, body: dict[str, Any]
) -> None:
    price = {
        "input_per_million_usd": "9",
        "output_per_million_usd": "9",
        "effective_from": "2026-11-02T00:00:00Z",
    }

    answer = api.call("PUT", "/v1/pricing/openai/gpt-4o", price | body)

    assert (answer.status, answer.headers["content-type"]) == (422, "application/problem+json")
    cost = check(api, key, {"model": "gpt-4o", "input_tokens": 1_000_000})
    assert cost.json["requested_usd"] == "2.500000"


@pytest.mark.parametrize(
    ("path", "priced_as"),
    [
        ("/v1/pricing/openai/gpt-4o-2024-08-06", ("openai", "gpt-4o-2024-08-06")),
        ("/v1/pricing/anthropic/claude-3-5-sonnet-latest", ("anthropic", "claude-3-5-sonnet-20241022")),
        ("/v1/pricing/gemini/gemini-2.5-pro", ("google", "gemini-2.5-pro")),
        ("/v1/pricing/bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0",
         ("bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0")),
        ("/v1/pricing/azure/claude-sonnet-4-5", ("anthropic", "claude-sonnet-4-5")),
    ],
)  # fmt: skip
def test_a_name_says_which_schedule_prices_it(
    api: Api, key: str, path: str, priced_as: tuple[str, str]
) -> None:
    answer = api.call("GET", path, key=key)

    assert answer.status == 200, answer.text
    assert (answer.json["provider"], answer.json["model"]) == priced_as
    assert answer.json["max_output_tokens"] is not None


def test_an_unknown_name_is_a_422_with_the_nearest_and_needs_a_key(api: Api, key: str) -> None:
    unknown = api.call("GET", "/v1/pricing/openai/gpt-4o-mnii", key=key)

    assert (unknown.status, unknown.headers["content-type"]) == (422, "application/problem+json")
    assert "openai/gpt-4o-mini" in unknown.json["nearest"]
    assert api.call("GET", "/v1/pricing/openai/gpt-4o", key=None).status == 401
