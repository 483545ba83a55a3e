"""`CostGuard`, the synchronous client, and `Hold`, the reservation as a context manager."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Generator, Iterable, Mapping
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
from costguard_client._hold import HoldBase, HoldState
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

T = TypeVar("T")
P = ParamSpec("P")
__all__ = ["CostGuard", "Hold", "HoldState"]


class CostGuard:
    """A costguard API client. Thread-safe; reuse one per process.

    `base_url` and `api_key` default to `COSTGUARD_URL` and `COSTGUARD_API_KEY`. Every
    mutating call carries an Idempotency-Key made once per call and reused by its retries;
    retries follow `retry` (connection errors, 5xx and throttling 429s, bounded, jittered;
    never another 4xx), and a commit is retried until its hold expires. `timeout` is per
    request (connect, read, write, pool). `transport` or `http_client` replace the HTTP
    layer (proxies, tests); `sleep` and `clock` (monotonic seconds) are the waits' own.
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
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_url, api_key = settings(base_url, api_key)
        self.retry = retry or RetryPolicy()
        self._own_client = http_client is None
        self._http = http_client or httpx.Client(timeout=timeout, transport=transport)
        self._headers = default_headers(api_key)
        self._sleep = sleep
        self._clock = clock
        self._rng = random.Random()  # noqa: S311 - retry jitter, not a secret

    def __enter__(self) -> CostGuard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._own_client:
            self._http.close()

    def _run(
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
                response = self._http.request(
                    call.method, url, content=content, params=call.params, headers=headers
                )
            except httpx.TransportError as exc:
                wait = retrying.after_error(call, exc)
                if wait is None:
                    raise unreachable(exc) from exc
                log_retry(call, attempt, type(exc).__name__, wait)
                self._sleep(wait)
                continue
            wait = retrying.after_answer(response)
            if wait is not None:
                log_retry(call, attempt, f"HTTP {response.status_code}", wait)
                self._sleep(wait)
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

    def commit(
        self,
        tenant_id: str,
        reservation_id: str,
        usage: Usage | Any = None,
        *,
        expires_at: datetime | None = None,
        reserved_usd: Decimal | None = None,
    ) -> CostRecord:
        """Commit a reservation: a `Usage`/`CommitRequest`, a provider usage object or response
        (priced as the model it names), or None for unknown usage (the whole hold is charged).

        Retried under one Idempotency-Key until it lands, or until `expires_at` passes (the
        policy's attempts without it); then `CommitNotLanded` carries the usage to record.
        `guard.reserve(...)` holds do all this for you."""
        if usage is None or _api.no_usage_in(usage):
            body = _api.unknown()
        elif isinstance(usage, Usage):
            body = _api.actual(ReserveRequest(resource=usage.resource or "llm"), usage)
        else:
            body = _api.actual(ReserveRequest(resource="llm"), usage)
        deadline = None
        if expires_at is not None:
            deadline = self._clock() + (expires_at - datetime.now(UTC)).total_seconds()
        return self._commit(tenant_id, reservation_id, body, deadline, reserved_usd)

    def _commit(
        self,
        tenant_id: str,
        reservation_id: str,
        body: CommitRequest,
        deadline: float | None,
        reserved_usd: Decimal | None,
    ) -> CostRecord:
        retrying = Retrying(self.retry, self._rng, self._clock, deadline)
        try:
            return self._run(_api.commit(tenant_id, reservation_id, body), retrying=retrying)
        except (CostGuardUnavailable, ReservationNotHeld) as error:
            landed = _not_landed(
                error, tenant_id, reservation_id, body, reserved_usd, retrying.maybe_delivered
            )
            if landed is error:
                raise
            raise landed from error

    def release(self, tenant_id: str, reservation_id: str) -> Release:
        return self._run(_api.release(tenant_id, reservation_id))

    def record_usage(
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
        """Usage that had no reservation: a `RecordRequest`, a `Usage`, a mapping of the API's
        fields, or the same provider usage objects and responses `commit` takes (priced as
        `model`, else the model the response names). `CommitNotLanded.record()` gives the
        body of a commit that never landed. Pass your own `idempotency_key` to dedupe
        upstream retries too (one is made per call otherwise)."""
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
        return self._run(_api.record_usage(tenant_id, request, idempotency_key=idempotency_key))

    def record_unlanded(self, error: CommitNotLanded) -> CostRecord | None:
        """Record the spend of a commit that never landed, once: all of it (`error.record()`),
        or, when the hold's expiry already charged `error.charged_usd`, only the cost beyond it
        (priced by a quota check); None when there is nothing more to record. Its
        Idempotency-Key is derived from the reservation, so calling it again counts once.
        Look at `error.maybe_landed` first."""
        request = _api.unlanded_request(error)
        if request is None:
            return None
        if error.charged_usd is not None:
            priced = self.check(error.tenant_id, _api.priced_as(request))
            request = _api.beyond(request, priced.requested_usd, error.charged_usd)
            if request is None:
                return None
        return self.record_usage(error.tenant_id, request, idempotency_key=_api.unlanded_key(error))

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
        self,
        name: str,
        *,
        tenant_id: str | None = None,
        plan: str | None = None,
        settings: TenantSettings | None = None,
    ) -> Tenant:
        return self._run(_api.create_tenant(name, tenant_id, plan, settings))

    def tenant_settings(self, tenant_id: str) -> TenantSettingsState:
        """How the tenant's holds settle: `overrun` (record | reject), `on_expiry`
        (charge | release)."""
        return self._run(_api.tenant_settings(tenant_id))

    def put_tenant_settings(
        self,
        tenant_id: str,
        *,
        overrun: Literal["record", "reject"] | None = None,
        on_expiry: Literal["charge", "release"] | None = None,
        timezone: str | None = None,
    ) -> TenantSettingsState:
        """Change the settings given; the others keep their current value (read first)."""
        current = self.tenant_settings(tenant_id)
        body = _api.merged_settings(
            current, overrun=overrun, on_expiry=on_expiry, timezone=timezone
        )
        return self._run(_api.put_tenant_settings(tenant_id, body))

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


class Hold(HoldBase):
    """A reservation inside a `with` block. What may have run is committed: see the README.

    Inside the block, `hold.commit(usage=...)` records what was spent; `hold.call(fn, ...)`
    and `hold.stream(...)` make the provider call and commit its usage for you. Leaving the
    block while still held: if the call may have started (`hold.started()`, `call`, `stream`),
    the hold is committed as unknown usage (the whole hold is charged) unless a stream had
    already reported its final usage; otherwise (the call surely never started) it is released.
    """

    def __init__(
        self, guard: CostGuard, tenant_id: str, body: ReserveRequest, *, minimal: bool = False
    ) -> None:
        super().__init__(tenant_id, body, minimal=minimal, clock=guard._clock)
        self.guard = guard

    def __enter__(self) -> Hold:
        if self.state != "new":
            raise RuntimeError("a hold is entered once")
        self._entered(
            self.guard.create_reservation(self.tenant_id, self.request, minimal=self.minimal)
        )
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
        or give the counts (`seconds` for a sandbox, or `cost_usd`). Nothing at all, or a
        response that carries no usage, commits unknown usage: the whole hold is charged.
        Retried until it lands or the hold expires; then `CommitNotLanded`.
        """
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
        return self._send(body)

    def commit_unknown(self) -> CostRecord:
        """The call ran but what it used cannot be known: charge the whole hold."""
        self._require_held("commit")
        self._may_have_run = True
        return self._send(_api.unknown(self.request))

    def _send(self, body: CommitRequest) -> CostRecord:
        try:
            record = self.guard._commit(
                self.tenant_id, self.reservation_id, body, self._deadline, self.reserved_usd
            )
        except CostGuardError as error:
            self._failed(error)
            raise
        return self._committed(record)

    def release(self) -> Release | None:
        """Give the hold back now: only when the call surely never ran (a cached answer)."""
        if self.state != "held":
            return None
        result = self.guard.release(self.tenant_id, self.reservation_id)
        self.state = "released"
        return result

    def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Make the provider call `fn(*args, **kwargs)` and commit the usage of its response
        (unknown usage when it carries none). If `fn` raises, the call may have run: leaving
        the block commits unknown usage. Returns the response; a stream (`stream=True`) comes
        back guarded as by `stream`, its usage committed when it ends."""
        self._require_held("call through")
        self.started()
        response = fn(*args, **kwargs)
        if hasattr(response, "__next__"):
            return cast(T, self._pass(self._open_stream(), cast(Any, response), (), {}))
        self.commit(response)
        return response

    def stream(
        self, events: Iterable[T] | Callable[P, Iterable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> Generator[T, None, None]:
        """Pass a provider's stream through, committing the usage it reports when it ends.

        `events` is the stream (OpenAI chat completions with `stream_options={"include_usage":
        True}`, OpenAI Responses events, Anthropic message events, Gemini chunks), or the
        function that opens it with its arguments (then an error while opening it counts
        as a started call too). Consumed to the end: its usage is committed (unknown usage if
        it reported none). Closed early, abandoned, or failed upstream before its final usage:
        unknown usage (the whole hold). Iterate it inside the block.
        """
        seen = self._open_stream()
        if not callable(events):
            self.started()  # the stream exists: its request was sent
        return self._pass(seen, events, args, kwargs)

    def _pass(
        self,
        seen: Any,
        events: Iterable[T] | Callable[..., Iterable[T]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Generator[T, None, None]:
        upstream: Any = None
        try:
            if callable(events):
                self.started()
                upstream = events(*args, **kwargs)
            else:
                upstream = events
            for event in upstream:
                _observe(seen, event)
                yield event
        except GeneratorExit:
            _close(upstream)
            self._settle_stream(seen, completed=False, exc=None, quiet=True)
            raise
        except BaseException as exc:
            self._settle_stream(seen, completed=False, exc=exc, quiet=True)
            raise
        self._settle_stream(seen, completed=True, exc=None, quiet=False)

    def _settle_stream(
        self, seen: Any, *, completed: bool, exc: BaseException | None, quiet: bool
    ) -> None:
        if self.state != "held":
            return
        try:
            self._send(self._stream_body(seen, completed))
        except CostGuardError as error:
            if not quiet:
                raise
            self._unsettled_on_exit(error, exc)

    def __exit__(
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
            self._release_quietly()
            return
        try:
            self._send(body)
        except CostGuardError as error:
            if exc is None:
                raise
            self._unsettled_on_exit(error, exc)

    def _release_quietly(self) -> None:
        try:
            self.release()
        except CostGuardError as error:
            # Never mask the block's own exception, nor fail a block whose work is done: a
            # hold that cannot be released now is settled by the server when it expires.
            self.state = "abandoned"
            log.warning(
                "costguard: could not release %s (%s); it is settled at expiry",
                self.reservation_id,
                error,
            )


def _observe(seen: Any, event: Any) -> None:
    """Read an event's usage; an event the adapters cannot read never breaks the stream (its
    usage is then unknown, and the whole hold is charged)."""
    try:
        seen.observe(event)
    except (TypeError, ValueError) as error:
        log.warning("costguard: unreadable usage in a stream event (%s)", error)
        seen.unreadable()


def _close(upstream: Any) -> None:
    """Close the provider's stream when the consumer stops early: it stops generating."""
    close = getattr(upstream, "close", None)
    if callable(close):
        try:
            close()
        except Exception as error:  # closing is best effort
            log.debug("costguard: closing the upstream stream failed (%s)", error)


def _not_landed(
    error: CostGuardError,
    tenant_id: str,
    reservation_id: str,
    body: CommitRequest,
    reserved_usd: Decimal | None,
    maybe_landed: bool,
) -> CostGuardError:
    """The error a commit that failed raises: `CommitNotLanded`, unless the reservation was
    found committed already (then the spend is in the ledger: the 409 as it is)."""
    if isinstance(error, ReservationNotHeld) and error.reservation_status == "committed":
        return error
    return CommitNotLanded(
        error.status,
        {
            "type": "about:blank",
            "title": "Commit not landed",
            "detail": f"reservation {reservation_id} was not committed ({error}); "
            "record the usage with record_usage(tenant_id, error.record())",
            "reservation_id": reservation_id,
            "cause": error.problem,
        },
        tenant_id=tenant_id,
        reservation_id=reservation_id,
        usage=body,
        reserved_usd=reserved_usd,
        maybe_landed=maybe_landed,
    )
