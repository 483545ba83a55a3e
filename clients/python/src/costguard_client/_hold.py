"""What `Hold` and `AsyncHold` share: the hold's states and how it settles.

The rule: **what may have run is committed**. A hold whose call may have started (marked by
`hold.started()`, by `hold.call(...)` / `hold.stream(...)`, or by a commit) is settled by a
commit: the usage when it is known, `{"usage_unknown": true}` (the server charges the whole
hold) when it is not. Only a hold whose call surely never started is released.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any, Literal

from costguard_client import _api
from costguard_client._api import Money
from costguard_client._core import log
from costguard_client.errors import (
    CommitNotLanded,
    CostGuardError,
    OverrunRejected,
    ReservationNotHeld,
)
from costguard_client.models import CommitRequest, CostRecord, Reservation, ReserveRequest
from costguard_client.streams import StreamUsage

HoldState = Literal["new", "held", "committed", "released", "unsettled", "abandoned"]
"""`new` before the block; `held` inside; then `committed` (a commit landed, or the server
charged the hold: an overrun refused, or the reservation found already committed),
`released`, `unsettled` (a commit that never landed: `CommitNotLanded` was raised) or
`abandoned` (a release that failed: the hold comes back, or is charged, at its expiry)."""


class HoldBase:
    def __init__(
        self,
        tenant_id: str,
        body: ReserveRequest,
        *,
        minimal: bool,
        clock: Callable[[], float],
    ) -> None:
        self.tenant_id = tenant_id
        self.request = body
        self.minimal = minimal
        self.state: HoldState = "new"
        self._reservation: Reservation | None = None
        self.record: CostRecord | None = None
        """The cost record, once committed."""
        self._clock = clock
        self._deadline: float | None = None
        self._may_have_run = False
        self._stream: StreamUsage | None = None
        self._pending: CommitNotLanded | None = None
        """A settlement that failed where it could not be raised (a stream closed early):
        raised when the block is left, unless another exception is leaving it."""

    @property
    def reservation(self) -> Reservation:
        if self._reservation is None:
            raise RuntimeError("the hold is made when its block is entered")
        return self._reservation

    @property
    def reservation_id(self) -> str:
        return self.reservation.reservation_id

    @property
    def reserved_usd(self) -> Decimal:
        return self.reservation.reserved_usd

    @property
    def may_have_run(self) -> bool:
        """True once the guarded call may have started: leaving the block then commits."""
        return self._may_have_run

    def started(self) -> None:
        """Mark that the guarded call is about to start (or has): from now on, leaving the
        block without a commit charges the whole hold (`usage_unknown`) instead of releasing
        it. `call(...)`, `stream(...)` and `commit(...)` mark it for you."""
        if self.state == "new":
            raise RuntimeError("the hold is made when its block is entered")
        self._may_have_run = True

    # ------------------------------------------------------------------------ internals
    def _entered(self, reservation: Reservation) -> None:
        self._reservation = reservation
        # Retry a commit until the hold expires, timed on this machine's monotonic clock
        # (the server's TTL, not its wall clock: the two clocks may disagree).
        ttl = (reservation.expires_at - reservation.created_at).total_seconds()
        self._deadline = self._clock() + max(0.0, ttl)
        self.state = "held"

    def _require_held(self, action: str) -> None:
        if self.state != "held":
            raise RuntimeError(f"cannot {action} a hold that is {self.state}")

    def _commit_body(
        self,
        usage: Any,
        *,
        input_tokens: int | None,
        output_tokens: int | None,
        cached_input_tokens: int | None,
        seconds: Decimal | int | float | str | None,
        cost_usd: Money | None,
        model: str | None,
    ) -> CommitRequest:
        explicit = (input_tokens, output_tokens, cached_input_tokens, seconds, cost_usd)
        if _api.no_usage_in(usage) and all(v is None for v in explicit):
            # A response without usage (a stream without include_usage, a proxy that strips
            # it): the call ran, what it used is unknown, so the whole hold is charged.
            return _api.unknown(self.request)
        return _api.actual(
            self.request,
            None if _api.no_usage_in(usage) else usage,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cached_input_tokens=cached_input_tokens,
            seconds=seconds,
            cost_usd=cost_usd,
            model=model,
        )

    def _stream_body(self, seen: StreamUsage, completed: bool) -> CommitRequest:
        usage = seen.settlement(completed)
        return _api.unknown(self.request) if usage is None else _api.actual(self.request, usage)

    def _exit_body(self) -> CommitRequest | None:
        """What leaving the block while `held` sends: None (release: the call surely never
        started), the stream's final usage, or unknown usage."""
        if not self._may_have_run:
            return None
        if self._stream is not None:
            return self._stream_body(self._stream, completed=False)
        return _api.unknown(self.request)

    def _open_stream(self) -> StreamUsage:
        self._require_held("stream through")
        if self._stream is not None:
            raise RuntimeError("one stream per hold: reserve again for the next call")
        self._stream = StreamUsage()
        return self._stream

    def _committed(self, record: CostRecord) -> CostRecord:
        self.record = record
        self.state = "committed"
        return record

    def _failed(self, error: CostGuardError) -> None:
        """The state after a commit that raised `error`."""
        if isinstance(error, CommitNotLanded):
            self.state = "unsettled"
        elif isinstance(error, OverrunRejected):
            self.state = "committed"  # the server charged the hold instead
            self.record = error.record
        elif isinstance(error, ReservationNotHeld) and error.reservation_status == "committed":
            self.state = "committed"
        # Anything else (a 422 naming a field, a 404): still held; leaving the block then
        # charges the hold as unknown usage, since the call ran.

    def _unsettled_on_exit(self, error: CostGuardError, exc: BaseException | None) -> None:
        """A settlement failed where raising would mask another exception (or cannot reach
        the app): logged, noted on that exception, else kept to raise on leaving the block."""
        log.warning(
            "costguard: could not settle %s (%s)",
            self.reservation_id,
            error,
        )
        if exc is not None:
            exc.add_note(f"costguard: reservation {self.reservation_id} not settled: {error}")
        elif isinstance(error, CommitNotLanded):
            self._pending = error

    def _raise_pending(self, exc: BaseException | None) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            if exc is None:
                raise pending
            exc.add_note(f"costguard: reservation {self.reservation_id} not settled: {pending}")
