"""`CostGuard`, the synchronous client, and `Hold`, the reservation as a context manager."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
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
HoldState = Literal["new", "held", "committed", "released", "abandoned"]


class CostGuard:
    """A costguard API client. Thread-safe; reuse one per process.

    `base_url` and `api_key` default to `COSTGUARD_URL` and `COSTGUARD_API_KEY`. Every
    mutating call carries an Idempotency-Key made once per call and reused by its retries;
    retries follow `retry` (connection errors and 5xx, bounded, jittered; never a 4xx).
    `transport` or `http_client` replace the HTTP layer (proxies, tests).
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        http_client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url, api_key = settings(base_url, api_key)
        self.retry = retry or RetryPolicy()
        self._own_client = http_client is None
        self._http = http_client or httpx.Client(timeout=timeout, transport=transport)
        self._headers = default_headers(api_key)
        self._sleep = sleep
        self._rng = random.Random()  # noqa: S311 - retry jitter, not a secret

    def __enter__(self) -> CostGuard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._own_client:
            self._http.close()

    def _run(self, call: Call[T]) -> T:
        key = call.key()
        content = call.content()
        headers = self._headers | call.request_headers(key)
        url = self.base_url + call.path
        for attempt in range(1, self.retry.attempts + 1):
            last = attempt == self.retry.attempts
            try:
                response = self._http.request(
                    call.method, url, content=content, params=call.params, headers=headers
                )
            except httpx.TransportError as exc:
                if last or not call.may_retry_after(exc):
                    raise CostGuardUnavailable(
                        None, {"title": "Unreachable", "detail": f"{type(exc).__name__}: {exc}"}
                    ) from exc
                wait = self.retry.backoff(attempt, self._rng)
                log_retry(call, attempt, type(exc).__name__, wait)
                self._sleep(wait)
                continue
            if not last and retryable_status(response.status_code):
                delay = self.retry.delay(attempt, response, self._rng)
                if delay is not None:
                    log_retry(call, attempt, f"HTTP {response.status_code}", delay)
                    self._sleep(delay)
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
    ) -> Hold:
        """A hold on the estimated cost, as a context manager.

        The reservation is made when the `with` block is entered (raising `QuotaExceeded`
        or `TenantPaused` there). Inside, `hold.commit(usage=...)` records what was spent.
        Leaving the block without a commit releases the hold; an exception releases it too
        and propagates.
        """
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
        return Hold(self, tenant_id, body, minimal=minimal)

    def create_reservation(
        self,
        tenant_id: str,
        body: ReserveRequest,
        *,
        minimal: bool = False,
        idempotency_key: str | None = None,
    ) -> Reservation:
        return self._run(
            _api.reserve(tenant_id, body, minimal=minimal, idempotency_key=idempotency_key)
        )

    def commit(self, tenant_id: str, reservation_id: str, usage: Usage) -> CostRecord:
        return self._run(_api.commit(tenant_id, reservation_id, usage))

    def release(self, tenant_id: str, reservation_id: str) -> Release:
        return self._run(_api.release(tenant_id, reservation_id))

    def record_usage(
        self, tenant_id: str, body: RecordRequest, *, idempotency_key: str | None = None
    ) -> CostRecord:
        """Usage that had no reservation; pass your own `idempotency_key` to dedupe upstream
        retries too (one is made per call otherwise)."""
        return self._run(_api.record_usage(tenant_id, body, idempotency_key=idempotency_key))

    def check(self, tenant_id: str, usage: Usage) -> CheckResult:
        return self._run(_api.check(tenant_id, usage))

    # ------------------------------------------------------------------------ quotas
    def quotas(self, tenant_id: str) -> QuotaList:
        return self._run(_api.quotas(tenant_id))

    def put_quota(
        self,
        tenant_id: str,
        quota_id: str,
        limit_usd: Money,
        *,
        mode: Literal["hard", "soft"] = "hard",
        thresholds: list[int] | None = None,
        grace_pct: Money | None = None,
    ) -> QuotaState:
        return self._run(
            _api.put_quota(tenant_id, quota_id, limit_usd, mode, thresholds, grace_pct)
        )

    def delete_quota(self, tenant_id: str, quota_id: str) -> None:
        self._run(_api.delete_quota(tenant_id, quota_id))

    def platform_quotas(self) -> QuotaList:
        return self._run(_api.quotas(None))

    def put_platform_quota(
        self,
        quota_id: str,
        limit_usd: Money,
        *,
        mode: Literal["hard", "soft"] = "hard",
        thresholds: list[int] | None = None,
        grace_pct: Money | None = None,
    ) -> QuotaState:
        return self._run(_api.put_quota(None, quota_id, limit_usd, mode, thresholds, grace_pct))

    def delete_platform_quota(self, quota_id: str) -> None:
        self._run(_api.delete_quota(None, quota_id))

    # ------------------------------------------------------------------------ tenants, keys
    def create_tenant(
        self, name: str, *, tenant_id: str | None = None, plan: str | None = None
    ) -> Tenant:
        return self._run(_api.create_tenant(name, tenant_id, plan))

    def pause(self, tenant_id: str, *, user_id: str | None = None) -> PauseState:
        return self._run(_api.set_paused(tenant_id, True, user_id))

    def unpause(self, tenant_id: str, *, user_id: str | None = None) -> PauseState:
        return self._run(_api.set_paused(tenant_id, False, user_id))

    def issue_key(self, tenant_id: str) -> IssuedApiKey:
        return self._run(_api.issue_key(tenant_id))

    def revoke_key(self, tenant_id: str, key_id: str) -> None:
        self._run(_api.revoke_key(tenant_id, key_id))

    # ------------------------------------------------------------------------ reading
    def usage(
        self,
        tenant_id: str,
        *,
        from_: date | None = None,
        to: date | None = None,
        group_by: GroupBy | None = None,
    ) -> UsageReport:
        return self._run(_api.usage(tenant_id, from_, to, group_by))

    def usage_records(
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
        return self._run(
            _api.usage_records(tenant_id, from_, to, user_id, conversation_id, limit, cursor)
        )

    def summary(self, tenant_id: str) -> Summary:
        return self._run(_api.summary(tenant_id))

    def alerts(
        self,
        tenant_id: str,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        type_: AlertType | None = None,
    ) -> AlertPage:
        """Recent threshold, anomaly and forecast alerts, newest first (`next_cursor` pages)."""
        return self._run(_api.alerts(tenant_id, limit, cursor, type_))

    def platform_alerts(
        self,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        type_: AlertType | None = None,
    ) -> AlertPage:
        return self._run(_api.alerts(None, limit, cursor, type_))

    def forecast(self, tenant_id: str, **params: str) -> dict[str, Any]:
        """The latest forecast per quota, as the server sends it (a JSON object)."""
        return self._run(_api.forecast(tenant_id, params or None))

    # ------------------------------------------------------------------------ pricing, service
    def pricing(self) -> PriceList:
        return self._run(_api.pricing())

    def put_price(self, provider: str, model: str, body: PricePut) -> ModelPriceOut:
        return self._run(_api.put_price(provider, model, body))

    def health(self) -> Health:
        return self._run(_api.health())

    def openapi(self) -> dict[str, Any]:
        return self._run(_api.openapi())


class Hold:
    """A reservation inside a `with` block: commit what was spent, or it is released.

    States: `new` (before the block), `held`, then `committed` or `released`; `abandoned`
    when the release on leaving failed (the hold then comes back at its expiry).
    """

    def __init__(
        self, guard: CostGuard, tenant_id: str, body: ReserveRequest, *, minimal: bool = False
    ) -> None:
        self.guard = guard
        self.tenant_id = tenant_id
        self.request = body
        self.minimal = minimal
        self.state: HoldState = "new"
        self._reservation: Reservation | None = None
        self.record: CostRecord | None = None
        """The cost record, once committed."""

    @property
    def reservation(self) -> Reservation:
        if self._reservation is None:
            raise RuntimeError("the hold is made when its `with` block is entered")
        return self._reservation

    @property
    def reservation_id(self) -> str:
        return self.reservation.reservation_id

    @property
    def reserved_usd(self) -> Decimal:
        return self.reservation.reserved_usd

    def __enter__(self) -> Hold:
        if self.state != "new":
            raise RuntimeError("a hold is entered once")
        self._reservation = self.guard.create_reservation(
            self.tenant_id, self.request, minimal=self.minimal
        )
        self.state = "held"
        return self

    def commit(
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
        """Record what was really spent and free the hold.

        `usage` is the provider's usage object or whole response (OpenAI, Anthropic, Google),
        or give the counts (`seconds` for a sandbox, or `cost_usd`).
        """
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
        self.record = self.guard.commit(self.tenant_id, self.reservation_id, body)
        self.state = "committed"
        return self.record

    def release(self) -> Release | None:
        """Give the hold back now (leaving the block does it for you)."""
        if self.state != "held":
            return None
        result = self.guard.release(self.tenant_id, self.reservation_id)
        self.state = "released"
        return result

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.state != "held":
            return
        try:
            self.release()
        except CostGuardError as error:
            # Never mask the block's own exception, nor fail a block whose work is done: a
            # hold that cannot be released now comes back by itself when it expires.
            self.state = "abandoned"
            log.warning(
                "costguard: could not release %s (%s); it is returned at expiry",
                self.reservation_id,
                error,
            )
