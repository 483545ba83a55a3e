"""`guard.reserve(...)` as a context manager against the real runner: commit, release on
exception and on early exit, typed refusals. Money is asserted exactly."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from costguard_client import (
    AsyncCostGuard,
    CostGuard,
    CostGuardError,
    QuotaExceeded,
    TenantPaused,
)
from costguard_client.models import RecordRequest

from tests.client.conftest import GPT4O, TenantKey
from tests.client.conftest import quota as one
from tests.client.test_adapters import load
from tests.e2e.conftest import Server


def figures(guard: CostGuard, tenant_id: str) -> tuple[Decimal, Decimal, Decimal]:
    quota = one(guard.quotas(tenant_id))
    return quota.spent_usd, quota.reserved_usd, quota.remaining_usd


def test_a_commit_inside_the_block_records_the_actual_cost_and_frees_the_hold(
    guard: CostGuard, tenant: TenantKey
) -> None:
    # Given a tenant with $1.00 a month
    # When an LLM call is guarded and commits what it really used
    with guard.reserve(tenant.tenant_id, user_id="u-1", **GPT4O) as hold:
        assert hold.reserved_usd == Decimal("0.045")
        assert figures(guard, tenant.tenant_id) == (
            Decimal(0),
            Decimal("0.045"),
            Decimal("0.955"),
        )
        record = hold.commit(input_tokens=10_000, output_tokens=1_000)

    # Then the actual cost is spent, nothing stays held, and the record says who spent it
    assert record.cost_usd == Decimal("0.035")
    assert (record.status, record.user_id, record.model) == ("committed", "u-1", "gpt-4o")
    assert hold.state == "committed"
    assert figures(guard, tenant.tenant_id) == (Decimal("0.035"), Decimal(0), Decimal("0.965"))


def test_a_commit_takes_a_provider_usage_object_with_cached_tokens(
    guard: CostGuard, tenant: TenantKey
) -> None:
    # Given an OpenAI chat completion whose 1,117 prompt tokens include 1,024 cached
    response = load("openai_chat_completion")

    with guard.reserve(
        tenant.tenant_id, model="gpt-4o", input_tokens=1_200, max_output_tokens=100
    ) as hold:
        record = hold.commit(usage=response["usage"])

    # Then the reservation's model prices it: 93 × 2.50 + 1,024 × 1.25 + 46 × 10.00 per million
    assert (record.input_tokens, record.cached_input_tokens, record.output_tokens) == (
        1117,
        1024,
        46,
    )
    assert record.model == "gpt-4o"
    assert record.cost_usd == Decimal("0.0019725")


def test_an_exception_inside_the_block_releases_the_hold_and_propagates(
    guard: CostGuard, tenant: TenantKey
) -> None:
    class ProviderDown(Exception):
        pass

    # When the LLM call fails inside the block
    with pytest.raises(ProviderDown), guard.reserve(tenant.tenant_id, **GPT4O) as hold:
        raise ProviderDown("503 from the provider")

    # Then the exception is the caller's, and the hold is back
    assert hold.state == "released"
    assert figures(guard, tenant.tenant_id) == (Decimal(0), Decimal(0), Decimal("1.000000"))


def test_leaving_the_block_early_without_a_commit_releases_the_hold(
    guard: CostGuard, tenant: TenantKey
) -> None:
    # Given a function that returns from inside the block (the answer came from a cache)
    def answer() -> str:
        with guard.reserve(tenant.tenant_id, **GPT4O):
            return "cached answer"

    # And a loop that breaks out of it
    for _ in range(3):
        with guard.reserve(tenant.tenant_id, **GPT4O):
            break

    # When both have left their blocks
    assert answer() == "cached answer"

    # Then nothing is held and nothing was spent
    assert figures(guard, tenant.tenant_id) == (Decimal(0), Decimal(0), Decimal(1))


def test_over_quota_raises_quota_exceeded_with_the_binding_quotas_figures(
    guard: CostGuard, tenant: TenantKey
) -> None:
    # Given $0.035 already spent of $1.00
    with guard.reserve(tenant.tenant_id, **GPT4O) as hold:
        hold.commit(input_tokens=10_000, output_tokens=1_000)

    # When a $0.97 estimate is asked for
    with (
        pytest.raises(QuotaExceeded) as refused,
        guard.reserve(tenant.tenant_id, estimated_cost_usd="0.97"),
    ):
        pytest.fail("the block must not run")

    # Then the error names the quota and its figures, exactly
    error = refused.value
    assert error.status == 429
    assert error.quota_id == "tenant:llm:month"
    assert (error.scope, error.resource, error.period) == ("tenant", "llm", "month")
    assert error.limit_usd == Decimal("1.00")
    assert error.spent_usd == Decimal("0.035")
    assert error.reserved_usd == Decimal(0)
    assert error.remaining_usd == Decimal("0.965")
    assert error.requested_usd == Decimal("0.97")
    assert error.retry_after_seconds is not None and error.retry_after_seconds > 0
    assert error.problem["remaining_usd"] == "0.965000"
    assert isinstance(error, CostGuardError)
    assert figures(guard, tenant.tenant_id)[1] == Decimal(0)


def test_a_paused_tenant_raises_tenant_paused(
    admin: CostGuard, guard: CostGuard, tenant: TenantKey
) -> None:
    admin.pause(tenant.tenant_id, user_id="u-9")
    try:
        with (
            pytest.raises(TenantPaused) as refused,
            guard.reserve(tenant.tenant_id, user_id="u-9", **GPT4O),
        ):
            pytest.fail("the block must not run")
        assert refused.value.status == 423
        assert (refused.value.tenant_id, refused.value.user_id) == (tenant.tenant_id, "u-9")
        with guard.reserve(tenant.tenant_id, user_id="u-8", **GPT4O) as other:
            assert other.state == "held"
    finally:
        admin.unpause(tenant.tenant_id, user_id="u-9")


def test_other_refusals_are_cost_guard_errors_carrying_the_problem(
    guard: CostGuard, tenant: TenantKey
) -> None:
    with pytest.raises(CostGuardError) as refused:
        guard.record_usage(
            tenant.tenant_id, RecordRequest(resource="llm", model="no-such-model", input_tokens=1)
        )

    assert refused.value.status == 422
    assert refused.value.type.endswith("/unknown-price")
    assert refused.value.problem["invalid_params"][0]["name"] == "model"
    assert not isinstance(refused.value, QuotaExceeded | TenantPaused)


def test_money_is_never_a_float_and_the_refusal_is_a_cost_guard_error() -> None:
    from costguard_client import InvalidArgument
    from pydantic import ValidationError

    guard = CostGuard("http://127.0.0.1:9", "unused")
    with pytest.raises(InvalidArgument, match="never a float") as refused:
        guard.reserve("acme", estimated_cost_usd=0.1)  # type: ignore[arg-type]
    guard.close()

    # One family, never pydantic's error; still a ValueError for code that caught that.
    assert isinstance(refused.value, CostGuardError) and isinstance(refused.value, ValueError)
    assert not isinstance(refused.value, ValidationError)
    assert refused.value.status is None
    assert refused.value.problem["invalid_params"][0]["name"] == "estimated_cost_usd"


def test_a_sandbox_run_commits_its_seconds(
    guard: CostGuard, tenant: TenantKey, admin: CostGuard
) -> None:
    admin.put_quota(tenant.tenant_id, "tenant:sandbox:month", "1.00")

    with guard.reserve(tenant.tenant_id, resource="sandbox", tier="standard", seconds=300) as hold:
        record = hold.commit(seconds=12.0004)  # measured with a float clock: rounded up to ms

    # standard is $0.000037 a second: 12.001 s
    assert (record.seconds, record.cost_usd) == (Decimal("12.001"), Decimal("0.000444037"))


def test_the_async_client_guards_the_same_way(server: Server, tenant: TenantKey) -> None:
    async def scenario() -> tuple[Decimal, str, str]:
        async with AsyncCostGuard(server.url, tenant.api_key) as guard:
            async with guard.reserve(tenant.tenant_id, **GPT4O) as hold:
                record = await hold.commit(input_tokens=10_000, output_tokens=1_000)
            with pytest.raises(RuntimeError):
                async with guard.reserve(tenant.tenant_id, **GPT4O) as failed:
                    raise RuntimeError("boom")
            with pytest.raises(QuotaExceeded) as refused:
                async with guard.reserve(tenant.tenant_id, estimated_cost_usd="5"):
                    pass
            quota = one(await guard.quotas(tenant.tenant_id))
            assert quota.reserved_usd == 0
            return record.cost_usd, failed.state, refused.value.quota_id

    assert asyncio.run(scenario()) == (Decimal("0.035"), "released", "tenant:llm:month")
