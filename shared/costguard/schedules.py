"""The scheduled-run engine the hourly and daily jobs share (anomalies, forecasts,
recommendations): which tenants a run takes, in what order, on a small thread pool, within
its deadline, and the report it returns."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from opentelemetry import context as otel_context

from costguard import telemetry


@dataclass
class RunReport:
    """What one scheduled run did (returned by the handler, logged, turned into metrics)."""

    tenants: int = 0
    examined: int = 0
    skipped: int = 0
    """Tenants left for the next run because the time ran out."""
    findings: int = 0
    recorded: int = 0
    """Alerts recorded by this run (a finding already alerted is not recorded again)."""
    insufficient_history: int = 0
    failed: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "tenants": self.tenants,
            "examined": self.examined,
            "skipped": self.skipped,
            "findings": self.findings,
            "recorded": self.recorded,
            "insufficient_history": self.insufficient_history,
            "failed": self.failed,
            "seconds": round(self.seconds, 3),
            "notes": self.notes[:20],
        }


TimeLeft = Callable[[], float]
"""Seconds left before the run must stop taking tenants (Lambda: remaining time − reserve)."""


def rotated(tenants: list[str], now: datetime) -> list[str]:
    """Start each hour's run elsewhere in the list: a run cut short by its deadline does not
    leave the same tenants out every time."""
    if not tenants:
        return tenants
    offset = (int(now.timestamp()) // 3600) % len(tenants)
    return tenants[offset:] + tenants[:offset]


def for_each_tenant(
    tenants: list[str],
    work: Callable[[str], Any],
    report: RunReport,
    time_left: TimeLeft | None,
    workers: int,
) -> list[Any]:
    """Run `work` per tenant on a small thread pool (the work is DynamoDB round trips),
    stopping when the deadline nears; a tenant that fails is counted and skipped."""
    results: list[Any] = []
    run = otel_context.get_current()  # the pool's threads do not inherit it

    def guarded(tenant: str) -> tuple[str, Any, Exception | None]:
        with telemetry.tracer.start_as_current_span(
            "schedule.tenant", context=run, record_exception=False
        ) as span:
            span.set_attribute("costguard.tenant_id", tenant)
            try:
                return tenant, work(tenant), None
            except Exception as exc:  # one broken tenant must not stop everyone else's run
                telemetry.failed(telemetry.Stage.SCHEDULE, exc, span)
                return tenant, None, exc

    batch = max(1, workers) * 4
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for start in range(0, len(tenants), batch):
            if time_left is not None and time_left() <= 0:
                report.skipped = len(tenants) - start
                break
            for tenant, result, error in pool.map(guarded, tenants[start : start + batch]):
                if error is not None:
                    report.failed += 1
                    report.notes.append(f"{tenant}: {type(error).__name__}: {error}"[:300])
                else:
                    results.append(result)
    return results


R = TypeVar("R")


def count_found(report: RunReport, result: tuple[int, int]) -> None:
    """Tally a tenant's (findings, alerts recorded)."""
    report.findings += result[0]
    report.recorded += result[1]


def scheduled_run(
    now: datetime,
    tenants: Callable[[], list[str]],
    work: Callable[[str], R],
    tally: Callable[[RunReport, R], None],
    time_left: TimeLeft | None,
    workers: int,
) -> RunReport:
    """One scheduled run: the `tenants` it takes (listed now, rotated by the hour), `work` per
    tenant on the pool within the deadline, each result tallied into the timed report."""
    started = time.perf_counter()
    order = rotated(tenants(), now)
    report = RunReport(tenants=len(order))
    for result in for_each_tenant(order, work, report, time_left, workers):
        report.examined += 1
        tally(report, result)
    report.seconds = time.perf_counter() - started
    return report
