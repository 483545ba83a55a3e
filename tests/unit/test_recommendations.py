"""Recommendations on synthetic histories whose savings were computed by hand.

Histories go through the real ledger (`record_usage`, `reserve` + `commit`), so the records,
their prices and the counters are the ledger's own. The clock ends on 2026-11-30 12:00 UTC
and every history starts on 2026-11-01 (30 days observed), so a window's saving is its
monthly saving (× 30 / 30).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from costguard.alerts import AlertBook, AlertType, message_attributes, public_alert
from costguard.ledger import Ledger
from costguard.models import Usage
from costguard.pricing import ModelPrice
from costguard.recommendations import (
    Recommendation,
    RecommendationRules,
    cheaper_model,
    digest_draft,
    recommend,
    run_digests,
)
from costguard.slack import message

from tests.conftest import Clock
from tests.helpers import set_quota

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
FIRST = date(2026, 11, 1)


def at(day: date, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def record(ledger: Ledger, clock: Clock, tenant: str, when: datetime, **usage: object) -> None:
    clock.at = when
    ledger.record_usage(tenant, Usage(**usage), enforce=False)


def gpt4o(**kw: object) -> dict[str, object]:
    return {"resource": "llm", "provider": "openai", "model": "gpt-4o", **kw}


def advice(ledger: Ledger, clock: Clock, tenant: str) -> list[Recommendation]:
    clock.at = NOW
    return recommend(ledger, tenant, RecommendationRules()).recommendations


def test_short_answers_of_a_premium_model_are_priced_on_its_cheaper_sibling(
    ledger: Ledger, clock: Clock
) -> None:
    # Given 10 gpt-4o calls with 100,000 input and 200 output tokens over 30 days
    # ($0.25 + $0.002 = $0.252 each) and 5 with long answers (4,000 tokens)
    for n in range(10):
        record(ledger, clock, "big", at(FIRST + timedelta(days=3 * n)),
               **gpt4o(input_tokens=100_000, output_tokens=200))  # fmt: skip
    for n in range(5):
        record(ledger, clock, "big", at(FIRST + timedelta(days=n), 14),
               **gpt4o(input_tokens=1000, output_tokens=4000))  # fmt: skip
    # When the recommendations are computed
    [rec] = advice(ledger, clock, "big")
    # Then gpt-4o-mini ($0.15 in, $0.60 out per million) would have cost
    # 100,000 × 0.15/1e6 + 200 × 0.60/1e6 = $0.01512 a call: 10 × (0.252 − 0.01512) = $2.3688
    assert rec.kind == "model_right_sizing"
    assert rec.recommendation_id == "model_right_sizing:openai/gpt-4o"
    assert rec.monthly_savings_usd == Decimal("2.368800")
    assert rec.confidence == "low"  # 10 calls
    assert rec.evidence["calls"] == "15"
    assert rec.evidence["short_calls"] == "10"
    assert rec.evidence["short_share_pct"] == "66.7"
    assert rec.evidence["short_calls_spend_usd"] == "2.520000"
    assert rec.evidence["same_calls_on_cheaper_usd"] == "0.151200"
    assert rec.evidence["cheaper_model"] == "openai/gpt-4o-mini"
    assert rec.evidence["days"] == "30"
    assert rec.period_to == NOW and rec.period_from == NOW - timedelta(days=30)


def test_the_repeated_prefix_of_a_conversation_is_what_caching_would_save(
    ledger: Ledger, clock: Clock
) -> None:
    # Given one conversation on gpt-4.1-mini ($0.40 in, $0.10 cached) whose inputs grow
    # 1M, 2M, 3M, 4M tokens, the third call reading 1M tokens from the cache
    for n, (tokens, cached) in enumerate(
        [(1_000_000, 0), (2_000_000, 0), (3_000_000, 1_000_000), (4_000_000, 0)]
    ):
        record(ledger, clock, "chatty", at(FIRST + timedelta(days=n)), resource="llm",
               provider="openai", model="gpt-4.1-mini", input_tokens=tokens,
               cached_input_tokens=cached, output_tokens=50, conversation_id="c-1")  # fmt: skip
    # When the recommendations are computed
    [rec] = advice(ledger, clock, "chatty")
    # Then the prefixes are 1M, 2M and 3M tokens, of which 1M was read from the cache:
    # (1M + (2M − 1M) + 3M) × (0.40 − 0.10) / 1e6 = $1.50
    assert rec.kind == "prompt_caching"
    assert rec.monthly_savings_usd == Decimal("1.500000")
    assert rec.evidence["input_tokens"] == "10000000"
    assert rec.evidence["cacheable_input_tokens"] == "6000000"
    assert rec.evidence["cacheable_share_pct"] == "60.0"
    assert rec.evidence["cached_read_tokens"] == "1000000"
    assert rec.evidence["cached_share_of_cacheable_pct"] == "16.7"
    assert rec.confidence == "low"


def test_holds_far_above_the_spend_are_reported_with_the_budget_they_lock(
    ledger: Ledger, clock: Clock
) -> None:
    # Given a $100 monthly hard quota and 20 calls reserved at $0.05 each (4 at a time) that
    # commit 1,000 input and 100 output tokens of gpt-4o: $0.0025 + $0.001 = $0.0035
    clock.at = at(FIRST, 9)
    set_quota(ledger, "capless", "tenant:llm:month", "100")
    for group in range(5):
        clock.at = at(FIRST + timedelta(days=group))
        holds = [
            ledger.reserve("capless", Usage(resource="llm", estimated_cost_usd="0.05"))
            for _ in range(4)
        ]
        clock.advance(minutes=1)
        for hold in holds:
            ledger.commit(
                "capless",
                hold.reservation_id,
                Usage(**gpt4o(input_tokens=1000, output_tokens=100)),
            )
    # When the recommendations are computed
    [rec] = advice(ledger, clock, "capless")
    # Then the median hold is 0.05 / 0.0035 = 14.3× the spend; 4 × $0.0465 were locked at once
    assert rec.kind == "output_caps"
    assert rec.recommendation_id == "output_caps:openai/gpt-4o"
    assert rec.monthly_savings_usd == Decimal(0)
    assert rec.evidence["calls"] == "20"
    assert rec.evidence["median_hold_to_spend_ratio"] == "14.3"
    assert rec.evidence["held_usd"] == "1.000000"
    assert rec.evidence["spent_usd"] == "0.070000"
    assert rec.evidence["excess_held_usd"] == "0.930000"
    assert rec.evidence["peak_excess_held_at_once_usd"] == "0.186000"
    assert rec.evidence["suggested_output_cap_tokens"] == "120"  # p95 of 100 tokens, +20 %
    assert rec.evidence["tightest_hard_quota"] == "tenant:llm:month"
    assert rec.evidence["peak_excess_share_of_its_limit_pct"] == "0.2"


def test_sandbox_time_past_the_timeout_and_reported_idle_is_the_saving(
    ledger: Ledger, clock: Clock
) -> None:
    # Given 10 gpu sessions of an hour and 10 of 10 minutes with 5 idle ($0.0008 a second)
    for n in range(10):
        record(ledger, clock, "sandy", at(FIRST + timedelta(days=n)),
               resource="sandbox", tier="gpu", seconds="3600")  # fmt: skip
        record(ledger, clock, "sandy", at(FIRST + timedelta(days=n), 15),
               resource="sandbox", tier="gpu", seconds="600",
               metadata={"idle_seconds": "300"})  # fmt: skip
    # When the recommendations are computed
    [rec] = advice(ledger, clock, "sandy")
    # Then 10 × (3600 − 1800) s + 10 × 300 s = 21,000 s × $0.0008 = $16.80
    assert rec.kind == "sandbox_time"
    assert rec.recommendation_id == "sandbox_time:gpu"
    assert rec.monthly_savings_usd == Decimal("16.800000")
    assert rec.evidence["sessions"] == "20"
    assert rec.evidence["long_sessions"] == "10"
    assert rec.evidence["sessions_reporting_idle"] == "10"
    assert rec.evidence["seconds_past_timeout_or_idle"] == "21000"
    assert rec.evidence["longest_seconds"] == "3600"


def test_a_quota_at_its_limit_most_days_and_one_that_never_passes_ten_percent(
    ledger: Ledger, clock: Clock
) -> None:
    # Given a $10 daily llm quota that ended 8 days in a row at $9.60 (96 %)
    clock.at = at(date(2026, 10, 20))
    set_quota(ledger, "quoted", "tenant:llm:day", "10")
    set_quota(ledger, "quoted", "tenant:sandbox:week", "100")
    for n in range(8):
        record(ledger, clock, "quoted", at(date(2026, 11, 22) + timedelta(days=n)),
               resource="llm", cost_usd="9.60")  # fmt: skip
    # and a $100 weekly sandbox quota that spent $2 in each of 4 weeks
    for day in (date(2026, 10, 28), date(2026, 11, 4), date(2026, 11, 11), date(2026, 11, 18)):
        record(ledger, clock, "quoted", at(day, 16), resource="sandbox", cost_usd="2")
    # When the recommendations are computed
    recs = {r.recommendation_id: r for r in advice(ledger, clock, "quoted")}
    assert set(recs) == {"quota_limits:tenant:llm:day", "quota_limits:tenant:sandbox:week"}
    # Then the daily quota refuses often: raise it to 1.25 × $9.60 = $12
    often = recs["quota_limits:tenant:llm:day"]
    assert often.monthly_savings_usd == Decimal(0)
    assert often.confidence == "high"
    assert often.evidence["periods"] == "8"
    assert often.evidence["periods_at_limit"] == "8"
    assert often.evidence["max_utilization_pct"] == "96.0"
    assert often.evidence["suggested_limit_usd"] == "12.000000"
    assert often.period_from == at(date(2026, 11, 22), 0)  # the first period it counted
    # And the weekly one protects nothing: lower it to 3 × $2 = $6
    low = recs["quota_limits:tenant:sandbox:week"]
    assert low.evidence["periods"] == "4"
    assert low.evidence["max_utilization_pct"] == "2.0"
    assert low.evidence["suggested_limit_usd"] == "6.000000"
    assert low.evidence["exposure_removed_usd"] == "94.000000"
    assert low.confidence == "medium"  # 4 of the 8 weeks looked at


def test_a_sliced_quota_at_its_limit_is_read_as_one(
    ledger: Ledger, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from costguard.ledger import escrow
    from costguard.quotas import QuotaDefinition, QuotaId

    # Given a $10 daily llm quota in 4 slices that ended 8 days at $9.60 (96 %), spent on
    # slices 1–3 only ($3.20 each): slice 0 has nothing of any of those days
    clock.at = at(date(2026, 10, 20))
    ledger.put_quota(
        "sliced", QuotaDefinition(QuotaId.parse("tenant:llm:day"), Decimal(10), slices=4)
    )
    for n in range(8):
        for index in (1, 2, 3):
            monkeypatch.setattr(escrow, "pick", lambda n, rng=None, i=index: i)
            record(ledger, clock, "sliced", at(date(2026, 11, 22) + timedelta(days=n)),
                   resource="llm", cost_usd="3.20")  # fmt: skip
    # When the recommendations are computed
    [often] = advice(ledger, clock, "sliced")
    # Then each day is read as the whole: 96 % of $10, at the limit 8 days of 8
    assert often.recommendation_id == "quota_limits:tenant:llm:day"
    assert often.evidence["periods"] == "8"
    assert often.evidence["periods_at_limit"] == "8"
    assert often.evidence["max_utilization_pct"] == "96.0"
    assert often.evidence["suggested_limit_usd"] == "12.000000"


def steady(ledger: Ledger, clock: Clock, tenant: str) -> None:
    """A tenant doing everything right: small model, caches its prefix, caps its holds."""
    start = date(2026, 11, 20)
    clock.at = at(start, 9)
    set_quota(ledger, tenant, "tenant:llm:day", "1")
    for n in range(10):
        day = start + timedelta(days=n)
        record(ledger, clock, tenant, at(day), resource="llm", provider="openai",
               model="gpt-4o-mini", input_tokens=2000 * (n % 2 + 1),
               cached_input_tokens=2000 * (n % 2), output_tokens=100,
               conversation_id=f"c-{n // 2}")  # fmt: skip
        record(ledger, clock, tenant, at(day, 11), resource="llm", cost_usd="0.50")
        record(ledger, clock, tenant, at(day, 12), resource="sandbox", tier="gpu", seconds="600")
    for n in range(20):
        clock.at = at(start + timedelta(days=n // 2), 13, n)
        hold = ledger.reserve(tenant, Usage(resource="llm", estimated_cost_usd="0.0042"))
        ledger.commit(
            tenant, hold.reservation_id, Usage(**gpt4o(input_tokens=1000, output_tokens=100))
        )


def test_a_tenant_doing_everything_right_gets_no_recommendation(
    ledger: Ledger, clock: Clock
) -> None:
    # Given small models, cached prefixes, holds 1.2× the spend, 10-minute sandboxes, a
    # daily quota used about half
    steady(ledger, clock, "tidy")
    # When the recommendations are computed
    clock.at = NOW
    answer = recommend(ledger, "tidy")
    # Then there is nothing to say
    assert answer.recommendations == []
    assert answer.monthly_savings_usd == Decimal(0)
    assert answer.records_examined == 10 * 3 + 20
    assert answer.days_observed == 11
    assert digest_draft(answer, NOW) is None


@pytest.mark.parametrize(
    ("provider", "model", "cheaper"),
    [
        ("openai", "gpt-4o", "gpt-4o-mini"),
        ("openai", "openai/gpt-4o", "gpt-4o-mini"),
        ("anthropic", "claude-opus-4-7", "claude-sonnet-4-6"),
        ("anthropic", "claude-sonnet-4-5", "claude-haiku-4-5"),
        ("openai", "gpt-4o-mini", None),
        ("anthropic", "claude-haiku-4-5", None),
    ],
)
def test_the_cheaper_sibling_must_be_in_the_catalog(
    ledger: Ledger, provider: str, model: str, cheaper: str | None
) -> None:
    known = {
        (p.provider, p.model) for p in ledger.price_book().prices() if isinstance(p, ModelPrice)
    }
    assert cheaper_model(provider, model, known) == cheaper
    assert cheaper_model(provider, model, set()) is None


def test_the_weekly_digest_is_recorded_once_per_tenant_and_iso_week(
    ledger: Ledger, clock: Clock
) -> None:
    # Given a tenant with a sandbox saving and one with none, both active this week
    for n in range(10):
        record(ledger, clock, "sandy", at(FIRST + timedelta(days=3 * n)),
               resource="sandbox", tier="gpu", seconds="3600")  # fmt: skip
    record(ledger, clock, "tidy", at(date(2026, 11, 29)), resource="llm", cost_usd="0.01")
    book = AlertBook(ledger.table, clock)
    # When the weekly run runs on Monday and again on Wednesday of ISO week 2026-W49
    clock.at = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    first = run_digests(ledger, book, RecommendationRules())
    clock.at = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
    again = run_digests(ledger, book, RecommendationRules())
    # Then one digest for "sandy", none for "tidy", none on the rerun
    assert (first.tenants, first.findings, first.recorded) == (2, 1, 1)
    assert (again.findings, again.recorded) == (1, 0)
    [digest] = book.recent("sandy", alert_type=AlertType.RECOMMENDATION)[0]
    assert digest.dedup_key == "digest#2026-W49"
    assert digest.event == "RecommendationsDigest"
    assert digest.severity == "info"
    assert digest.period_key == "WEEK#2026-W49"
    assert digest.details["top_1"] == "sandbox_time:gpu"
    # and it goes out like every alert: SNS attributes to filter on, a Slack message
    assert message_attributes(digest)["alert_type"] == "recommendation"
    slack = message(public_alert(digest, for_subscribers=True))
    assert slack["blocks"][0]["text"]["text"] == digest.title
    assert book.recent("tidy", alert_type=AlertType.RECOMMENDATION)[0] == []
    # And the next ISO week gets its own digest
    clock.at = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
    record(ledger, clock, "sandy", clock.at, resource="sandbox", tier="gpu", seconds="3600")
    assert run_digests(ledger, book, RecommendationRules()).recorded == 1
    weeks = [a.period_key for a in book.recent("sandy", alert_type=AlertType.RECOMMENDATION)[0]]
    assert weeks == ["WEEK#2026-W50", "WEEK#2026-W49"]


def test_a_tenant_older_than_the_window_is_scaled_by_the_window_not_its_first_record(
    ledger: Ledger, clock: Clock
) -> None:
    # Given spend on Oct 15 (before the 30-day window) and two hour-long gpu sessions inside it
    record(ledger, clock, "old", at(date(2026, 10, 15)), resource="llm", cost_usd="1")
    for day in (date(2026, 11, 25), date(2026, 11, 28)):
        record(ledger, clock, "old", at(day), resource="sandbox", tier="gpu", seconds="3600")
    # When the recommendations are computed
    clock.at = NOW
    answer = recommend(ledger, "old")
    # Then 30 days are observed, not 6: 2 × 1,800 s × $0.0008 = $2.88 a month, not $14.40
    assert (answer.days_observed, answer.records_examined) == (30, 2)
    [rec] = answer.recommendations
    assert rec.monthly_savings_usd == Decimal("2.880000")
