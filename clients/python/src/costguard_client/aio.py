"""`AsyncCostGuard` and `AsyncHold`: the same client for asyncio applications."""

from __future__ import annotations

import asyncio
import inspect
import random
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    Awaitable,
    Callable,
    Mapping,
)
from datetime import UTC, date, datetime
from decimal import Decimal
from types import TracebackType
from typing import Any, Literal, ParamSpec, TypeVar, cast

import httpx

from costguard_client import _api
from costguard_client._api import AlertType, Money
from costguard_client._core import (
    Call,
    Retrying,
    RetryPolicy,
    default_headers,
    log,
    log_retry,
    settings,
    unreachable,
)
from costguard_client._hold import HoldBase
from costguard_client.client import _not_landed, _observe
from costguard_client.errors import (
    CommitNotLanded,
    CostGuardError,
    CostGuardUnavailable,
    ReservationNotHeld,
)
from costguard_client.models import (
    AlertPage,
    CheckResult,
    CommitRequest,
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
    TenantSettings,
    TenantSettingsState,
    Usage,
    UsageReport,
)
from costguard_client.streams import StreamUsage

T = TypeVar("T")
P = ParamSpec("P")


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
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_url, api_key = settings(base_url, api_key)
        self.retry = retry or RetryPolicy()
        self._own_client = http_client is None
        self._http = http_client or httpx.AsyncClient(timeout=timeout, transport=transport)
        self._headers = default_headers(api_key)
        self._sleep = sleep
        self._clock = clock
        self._rng = random.Random()  # noqa: S311 - retry jitter, not a secret

    async def __aenter__(self) -> AsyncCostGuard:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._own_client:
            await self._http.aclose()

    async def _run(
        self, call: Call[T], *, deadline: float | None = None, retrying: Retrying | None = None
    ) -> T:
        key = call.key()
        content = call.content()
        headers = self._headers | call.request_headers(key)
        url = self.base_url + call.path
        retrying = retrying or Retrying(self.retry, self._rng, self._clock, deadline)
        while True:
            attempt = retrying.next()
            try:
                response = await self._http.request(
                    call.method, url, content=content, params=call.params, headers=headers
                )
            except httpx.TransportError as exc:
                wait = retrying.after_error(call, exc)
                if wait is None:
                    raise unreachable(exc) from exc
                log_retry(call, attempt, type(exc).__name__, wait)
                await self._sleep(wait)
                continue
            wait = retrying.after_answer(response)
            if wait is not None:
                log_retry(call, attempt, f"HTTP {response.status_code}", wait)
                await self._sleep(wait)
                continue
            return call.parse(response)

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

    async def commit(
        self,
        tenant_id: str,
        reservation_id: str,
        usage: Usage | Any = None,
        *,
        expires_at: datetime | None = None,
        reserved_usd: Decimal | None = None,
    ) -> CostRecord:
        """See `CostGuard.commit`."""
        if usage is None or _api.no_usage_in(usage):
            body = _api.unknown()
        elif isinstance(usage, Usage):
            body = _api.actual(ReserveRequest(resource=usage.resource or "llm"), usage)
        else:
            body = _api.actual(ReserveRequest(resource="llm"), usage)
        deadline = None
        if expires_at is not None:
            deadline = self._clock() + (expires_at - datetime.now(UTC)).total_seconds()
        return await self._commit(tenant_id, reservation_id, body, deadline, reserved_usd)

    async def _commit(
        self,
        tenant_id: str,
        reservation_id: str,
        body: CommitRequest,
        deadline: float | None,
        reserved_usd: Decimal | None,
    ) -> CostRecord:
        retrying = Retrying(self.retry, self._rng, self._clock, deadline)
        try:
            return await self._run(_api.commit(tenant_id, reservation_id, body), retrying=retrying)
        except (CostGuardUnavailable, ReservationNotHeld) as error:
            landed = _not_landed(
                error, tenant_id, reservation_id, body, reserved_usd, retrying.maybe_delivered
            )
            if landed is error:
                raise
            raise landed from error

    async def release(self, tenant_id: str, reservation_id: str) -> Release:
        return await self._run(_api.release(tenant_id, reservation_id))

    async def record_usage(
        self,
        tenant_id: str,
        body: RecordRequest | Usage | Mapping[str, Any] | Any,
        *,
        model: str | None = None,
        provider: str | None = None,
        user_id: str | None = None,
        conversation_id: str | None = None,
        task_id: str | None = None,
        operation: str | None = None,
        metadata: Mapping[str, str] | None = None,
        enforce: bool | None = None,
        idempotency_key: str | None = None,
    ) -> CostRecord:
        """See `CostGuard.record_usage`."""
        request = _api.record_body(
            body,
            model=model,
            provider=provider,
            user_id=user_id,
            conversation_id=conversation_id,
            task_id=task_id,
            operation=operation,
            metadata=metadata,
            enforce=enforce,
        )
        return await self._run(
            _api.record_usage(tenant_id, request, idempotency_key=idempotency_key)
        )

    async def record_unlanded(self, error: CommitNotLanded) -> CostRecord | None:
        """See `CostGuard.record_unlanded`."""
        request = _api.unlanded_request(error)
        if request is None:
            return None
        if error.charged_usd is not None:
            priced = await self.check(error.tenant_id, _api.priced_as(request))
            request = _api.beyond(request, priced.requested_usd, error.charged_usd)
            if request is None:
                return None
        return await self.record_usage(
            error.tenant_id, request, idempotency_key=_api.unlanded_key(error)
        )

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
        self,
        name: str,
        *,
        tenant_id: str | None = None,
        plan: str | None = None,
        settings: TenantSettings | None = None,
    ) -> Tenant:
        return await self._run(_api.create_tenant(name, tenant_id, plan, settings))

    async def tenant_settings(self, tenant_id: str) -> TenantSettingsState:
        return await self._run(_api.tenant_settings(tenant_id))

    async def put_tenant_settings(
        self,
        tenant_id: str,
        *,
        overrun: Literal["record", "reject"] | None = None,
        on_expiry: Literal["charge", "release"] | None = None,
        timezone: str | None = None,
    ) -> TenantSettingsState:
        current = await self.tenant_settings(tenant_id)
        body = _api.merged_settings(
            current, overrun=overrun, on_expiry=on_expiry, timezone=timezone
        )
        return await self._run(_api.put_tenant_settings(tenant_id, body))

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


class AsyncHold(HoldBase):
    """`Hold` for asyncio: `async with guard.reserve(...) as hold:`; the same rules."""

    def __init__(
        self,
        guard: AsyncCostGuard,
        tenant_id: str,
        body: ReserveRequest,
        *,
        minimal: bool = False,
    ) -> None:
        super().__init__(tenant_id, body, minimal=minimal, clock=guard._clock)
        self.guard = guard

    async def __aenter__(self) -> AsyncHold:
        if self.state != "new":
            raise RuntimeError("a hold is entered once")
        self._entered(
            await self.guard.create_reservation(self.tenant_id, self.request, minimal=self.minimal)
        )
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
        """See `Hold.commit`."""
        self._require_held("commit")
        self._may_have_run = True
        body = self._commit_body(
            usage,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cached_input_tokens=cached_input_tokens,
            seconds=seconds,
            cost_usd=cost_usd,
            model=model,
        )
        return await self._send(body)

    async def commit_unknown(self) -> CostRecord:
        """The call ran but what it used cannot be known: charge the whole hold."""
        self._require_held("commit")
        self._may_have_run = True
        return await self._send(_api.unknown(self.request))

    async def _send(self, body: CommitRequest) -> CostRecord:
        try:
            record = await self.guard._commit(
                self.tenant_id, self.reservation_id, body, self._deadline, self.reserved_usd
            )
        except CostGuardError as error:
            self._failed(error)
            raise
        return self._committed(record)

    async def release(self) -> Release | None:
        """Give the hold back now: only when the call surely never ran."""
        if self.state != "held":
            return None
        result = await self.guard.release(self.tenant_id, self.reservation_id)
        self.state = "released"
        return result

    async def call(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """See `Hold.call`: `response = await hold.call(client.chat.completions.create, ...)`."""
        self._require_held("call through")
        self.started()
        response = await fn(*args, **kwargs)
        if hasattr(response, "__anext__"):
            return cast(T, self._pass(self._open_stream(), response, (), {}))
        await self.commit(response)
        return response

    def stream(
        self,
        events: AsyncIterable[T] | Callable[P, Awaitable[AsyncIterable[T]] | AsyncIterable[T]],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> AsyncGenerator[T, None]:
        """See `Hold.stream`: `async for event in hold.stream(client.messages.create,
        ..., stream=True)`; the function may be a coroutine function (awaited when the
        iteration starts) or return an async iterator."""
        seen = self._open_stream()
        if not callable(events):
            self.started()
        return self._pass(seen, events, args, kwargs)

    async def _pass(
        self,
        seen: StreamUsage,
        events: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> AsyncGenerator[T, None]:
        upstream: Any = None
        try:
            if callable(events):
                self.started()
                upstream = events(*args, **kwargs)
                if inspect.isawaitable(upstream):
                    upstream = await upstream
            else:
                upstream = events
            async for event in upstream:
                _observe(seen, event)
                yield event
        except GeneratorExit:
            await _aclose(upstream)
            await self._settle_stream(seen, completed=False, exc=None, quiet=True)
            raise
        except BaseException as exc:
            await self._settle_stream(seen, completed=False, exc=exc, quiet=True)
            raise
        await self._settle_stream(seen, completed=True, exc=None, quiet=False)

    async def _settle_stream(
        self, seen: StreamUsage, *, completed: bool, exc: BaseException | None, quiet: bool
    ) -> None:
        if self.state != "held":
            return
        try:
            await self._send(self._stream_body(seen, completed))
        except CostGuardError as error:
            if not quiet:
                raise
            self._unsettled_on_exit(error, exc)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.state != "held":
            self._raise_pending(exc)
            return
        body = self._exit_body()
        if body is None:
            await self._release_quietly()
            return
        try:
            await self._send(body)
        except CostGuardError as error:
            if exc is None:
                raise
            self._unsettled_on_exit(error, exc)

    async def _release_quietly(self) -> None:
        try:
            await self.release()
        except CostGuardError as error:
            self.state = "abandoned"
            log.warning(
                "costguard: could not release %s (%s); it is settled at expiry",
                self.reservation_id,
                error,
            )


async def _aclose(upstream: Any) -> None:
    """Close the provider's async stream when the consumer stops early."""
    close = getattr(upstream, "aclose", None) or getattr(upstream, "close", None)
    if callable(close):
        try:
            result = close()
            if inspect.isawaitable(result):
                await result
        except Exception as error:  # closing is best effort
            log.debug("costguard: closing the upstream stream failed (%s)", error)
