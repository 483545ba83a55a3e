"""`AsyncCostGuard` and `AsyncHold`: the same client for asyncio applications."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping
from datetime import date
from decimal import Decimal
from types import TracebackType
from typing import Any, Literal, TypeVar

import httpx

from costguard_client import _api
from costguard_client._api import AlertType, Money
from costguard_client._core import (
    Call,
    RetryPolicy,
    default_headers,
    log,
    log_retry,
    retryable_status,
    settings,
)
from costguard_client.client import HoldState
from costguard_client.errors import CostGuardError, CostGuardUnavailable
from costguard_client.models import (
    AlertPage,
    CheckResult,
    CostRecord,
    GroupBy,
    Health,
    IssuedApiKey,
    ModelPriceOut,
    PauseState,
    PriceList,
    PricePut,
    QuotaList,
    QuotaState,
    RecordPage,
    RecordRequest,
    Release,
    Reservation,
    ReserveRequest,
    Summary,
    Tenant,
    Usage,
    UsageReport,
)

T = TypeVar("T")


class AsyncCostGuard:
    """The asyncio twin of `CostGuard`: the same methods, awaited."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        http_client: httpx.AsyncClient | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.base_url, api_key = settings(base_url, api_key)
        self.retry = retry or RetryPolicy()
        self._own_client = http_client is None
        self._http = http_client or httpx.AsyncClient(timeout=timeout, transport=transport)
        self._headers = default_headers(api_key)
        self._sleep = sleep
        self._rng = random.Random()  # noqa: S311 - retry jitter, not a secret

    async def __aenter__(self) -> AsyncCostGuard:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._own_client:
            await self._http.aclose()

    async def _run(self, call: Call[T]) -> T:
        key = call.key()
        content = call.content()
        headers = self._headers | call.request_headers(key)
        url = self.base_url + call.path
        for attempt in range(1, self.retry.attempts + 1):
            last = attempt == self.retry.attempts
            try:
                response = await self._http.request(
                    call.method, url, content=content, params=call.params, headers=headers
                )
            except httpx.TransportError as exc:
                if last or not call.may_retry_after(exc):
                    raise CostGuardUnavailable(
                        None, {"title": "Unreachable", "detail": f"{type(exc).__name__}: {exc}"}
                    ) from exc
                wait = self.retry.backoff(attempt, self._rng)
                log_retry(call, attempt, type(exc).__name__, wait)
                await self._sleep(wait)
                continue
            if not last and retryable_status(response.status_code):
                delay = self.retry.delay(attempt, response, self._rng)
                if delay is not None:
                    log_retry(call, attempt, f"HTTP {response.status_code}", delay)
                    await self._sleep(delay)
                    continue
            return call.parse(response)
        raise AssertionError("unreachable: the last attempt returns or raises")

    # ------------------------------------------------------------------------ spending
    def reserve(
        self,
        tenant_id: str,
        *,
        model: str | None = None,
        input_tokens: int | None = None,
        max_output_tokens: int | None = None,
        cached_input_tokens: int | None = None,
        provider: str | None = None,
        estimated_cost_usd: Money | None = None,
        resource: Literal["llm", "sandbox"] = "llm",
        tier: str | None = None,
        seconds: Decimal | int | float | str | None = None,
        user_id: str | None = None,
        conversation_id: str | None = None,
        task_id: str | None = None,
        operation: str | None = None,
        metadata: Mapping[str, str] | None = None,
        ttl_seconds: int | None = None,
        minimal: bool = False,
    ) -> AsyncHold:
        """`async with guard.reserve(...) as hold:` — see `CostGuard.reserve`."""
        body = _api.estimate(
            resource=resource,
            model=model,
            provider=provider,
            input_tokens=input_tokens,
            max_output_tokens=max_output_tokens,
            cached_input_tokens=cached_input_tokens,
            estimated_cost_usd=estimated_cost_usd,
            tier=tier,
            seconds=seconds,
            user_id=user_id,
            conversation_id=conversation_id,
            task_id=task_id,
            operation=operation,
            metadata=metadata,
            ttl_seconds=ttl_seconds,
        )
        return AsyncHold(self, tenant_id, body, minimal=minimal)

    async def create_reservation(
        self,
        tenant_id: str,
        body: ReserveRequest,
        *,
        minimal: bool = False,
        idempotency_key: str | None = None,
    ) -> Reservation:
        return await self._run(
            _api.reserve(tenant_id, body, minimal=minimal, idempotency_key=idempotency_key)
        )

    async def commit(self, tenant_id: str, reservation_id: str, usage: Usage) -> CostRecord:
        return await self._run(_api.commit(tenant_id, reservation_id, usage))

    async def release(self, tenant_id: str, reservation_id: str) -> Release:
        return await self._run(_api.release(tenant_id, reservation_id))

    async def record_usage(
        self, tenant_id: str, body: RecordRequest, *, idempotency_key: str | None = None
    ) -> CostRecord:
        return await self._run(_api.record_usage(tenant_id, body, idempotency_key=idempotency_key))

    async def check(self, tenant_id: str, usage: Usage) -> CheckResult:
        return await self._run(_api.check(tenant_id, usage))

    # ------------------------------------------------------------------------ quotas
    async def quotas(self, tenant_id: str) -> QuotaList:
        return await self._run(_api.quotas(tenant_id))

    async def put_quota(
        self,
        tenant_id: str,
        quota_id: str,
        limit_usd: Money,
        *,
        mode: Literal["hard", "soft"] = "hard",
        thresholds: list[int] | None = None,
        grace_pct: Money | None = None,
    ) -> QuotaState:
        return await self._run(
            _api.put_quota(tenant_id, quota_id, limit_usd, mode, thresholds, grace_pct)
        )

    async def delete_quota(self, tenant_id: str, quota_id: str) -> None:
        await self._run(_api.delete_quota(tenant_id, quota_id))

    async def platform_quotas(self) -> QuotaList:
        return await self._run(_api.quotas(None))

    async def put_platform_quota(
        self,
        quota_id: str,
        limit_usd: Money,
        *,
        mode: Literal["hard", "soft"] = "hard",
        thresholds: list[int] | None = None,
        grace_pct: Money | None = None,
    ) -> QuotaState:
        return await self._run(
            _api.put_quota(None, quota_id, limit_usd, mode, thresholds, grace_pct)
        )

    async def delete_platform_quota(self, quota_id: str) -> None:
        await self._run(_api.delete_quota(None, quota_id))

    # ------------------------------------------------------------------------ tenants, keys
    async def create_tenant(
        self, name: str, *, tenant_id: str | None = None, plan: str | None = None
    ) -> Tenant:
        return await self._run(_api.create_tenant(name, tenant_id, plan))

    async def pause(self, tenant_id: str, *, user_id: str | None = None) -> PauseState:
        return await self._run(_api.set_paused(tenant_id, True, user_id))

    async def unpause(self, tenant_id: str, *, user_id: str | None = None) -> PauseState:
        return await self._run(_api.set_paused(tenant_id, False, user_id))

    async def issue_key(self, tenant_id: str) -> IssuedApiKey:
        return await self._run(_api.issue_key(tenant_id))

    async def revoke_key(self, tenant_id: str, key_id: str) -> None:
        await self._run(_api.revoke_key(tenant_id, key_id))

    # ------------------------------------------------------------------------ reading
    async def usage(
        self,
        tenant_id: str,
        *,
        from_: date | None = None,
        to: date | None = None,
        group_by: GroupBy | None = None,
    ) -> UsageReport:
        return await self._run(_api.usage(tenant_id, from_, to, group_by))

    async def usage_records(
        self,
        tenant_id: str,
        *,
        from_: date | None = None,
        to: date | None = None,
        user_id: str | None = None,
        conversation_id: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> RecordPage:
        return await self._run(
            _api.usage_records(tenant_id, from_, to, user_id, conversation_id, limit, cursor)
        )

    async def summary(self, tenant_id: str) -> Summary:
        return await self._run(_api.summary(tenant_id))

    async def alerts(
        self,
        tenant_id: str,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        type_: AlertType | None = None,
    ) -> AlertPage:
        """Recent threshold, anomaly and forecast alerts, newest first (`next_cursor` pages)."""
        return await self._run(_api.alerts(tenant_id, limit, cursor, type_))

    async def platform_alerts(
        self,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        type_: AlertType | None = None,
    ) -> AlertPage:
        return await self._run(_api.alerts(None, limit, cursor, type_))

    async def forecast(self, tenant_id: str, **params: str) -> dict[str, Any]:
        return await self._run(_api.forecast(tenant_id, params or None))

    # ------------------------------------------------------------------------ pricing, service
    async def pricing(self) -> PriceList:
        return await self._run(_api.pricing())

    async def put_price(self, provider: str, model: str, body: PricePut) -> ModelPriceOut:
        return await self._run(_api.put_price(provider, model, body))

    async def health(self) -> Health:
        return await self._run(_api.health())

    async def openapi(self) -> dict[str, Any]:
        return await self._run(_api.openapi())


class AsyncHold:
    """`Hold` for asyncio: made on `async with`, released on leaving without a commit."""

    def __init__(
        self,
        guard: AsyncCostGuard,
        tenant_id: str,
        body: ReserveRequest,
        *,
        minimal: bool = False,
    ) -> None:
        self.guard = guard
        self.tenant_id = tenant_id
        self.request = body
        self.minimal = minimal
        self.state: HoldState = "new"
        self._reservation: Reservation | None = None
        self.record: CostRecord | None = None

    @property
    def reservation(self) -> Reservation:
        if self._reservation is None:
            raise RuntimeError("the hold is made when its `async with` block is entered")
        return self._reservation

    @property
    def reservation_id(self) -> str:
        return self.reservation.reservation_id

    @property
    def reserved_usd(self) -> Decimal:
        return self.reservation.reserved_usd

    async def __aenter__(self) -> AsyncHold:
        if self.state != "new":
            raise RuntimeError("a hold is entered once")
        self._reservation = await self.guard.create_reservation(
            self.tenant_id, self.request, minimal=self.minimal
        )
        self.state = "held"
        return self

    async def commit(
        self,
        usage: Any = None,
        *,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        cached_input_tokens: int | None = None,
        seconds: Decimal | int | float | str | None = None,
        cost_usd: Money | None = None,
        model: str | None = None,
    ) -> CostRecord:
        if self.state != "held":
            raise RuntimeError(f"cannot commit a hold that is {self.state}")
        body = _api.actual(
            self.request,
            usage,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cached_input_tokens=cached_input_tokens,
            seconds=seconds,
            cost_usd=cost_usd,
            model=model,
        )
        self.record = await self.guard.commit(self.tenant_id, self.reservation_id, body)
        self.state = "committed"
        return self.record

    async def release(self) -> Release | None:
        if self.state != "held":
            return None
        result = await self.guard.release(self.tenant_id, self.reservation_id)
        self.state = "released"
        return result

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.state != "held":
            return
        try:
            await self.release()
        except CostGuardError as error:
            self.state = "abandoned"
            log.warning(
                "costguard: could not release %s (%s); it is returned at expiry",
                self.reservation_id,
                error,
            )
