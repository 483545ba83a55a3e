"""Recommendations: advice that saves money, computed from the ledger's own records.

Five kinds, each with the dollars it would save per month, its evidence (numbers and the
period they come from) and a confidence:

- `model_right_sizing`: calls to a premium model whose outputs are short, priced again at the
  cheaper sibling's catalog price (`DOWNGRADES`, else `<model>-mini` when the catalog has it);
- `prompt_caching`: in a conversation each call's input repeats the previous call's input
  (the chat history), so that prefix could be read from the provider's cache; what the calls
  paid for it above the cached-input price, net of the cache reads they already got;
- `output_caps`: reservations whose hold (the worst case) is many times what the call spent:
  the excess locks budget while the call runs and refuses other calls for nothing;
- `sandbox_time`: sessions per tier that ran past `sandbox_long_seconds` (an idle timeout would
  have stopped them) or that reported idle seconds (`metadata.idle_seconds`);
- `quota_limits`: a hard quota that ended most recent periods at its limit (it refuses often),
  or a quota that never passed 10 % (it protects nothing).

`output_caps` and `quota_limits` save no spend (their `monthly_savings_usd` is 0): what they
free or tighten is in their evidence. Everything here reads: records (A11), counters of past
periods (A8) and the catalog; nothing is written except the weekly digest's alert.
"""

from __future__ import annotations

import math
import re
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import ROUND_CEILING, Decimal
from itertools import pairwise
from typing import Any, Literal

from pydantic import Field

from costguard.activity import active_tenants, around, local_now
from costguard.alerts import AlertBook, AlertDraft, AlertType, Severity
from costguard.errors import CostguardError
from costguard.ledger import Ledger
from costguard.models import Model, UsdOut
from costguard.money import MICRO, MILLION, ZERO, format_usd
from costguard.periods import Period, period_key, period_start
from costguard.pricing import ModelPrice
from costguard.quotas import QuotaId, Resource, Scope
from costguard.schedules import RunReport, TimeLeft, count_found, scheduled_run
from costguard.store.items import CostRecordItem

Kind = Literal[
    "model_right_sizing", "prompt_caching", "output_caps", "sandbox_time", "quota_limits"
]
Confidence = Literal["low", "medium", "high"]
PCT = Decimal("0.1")

DOWNGRADES: dict[tuple[str, str], str] = {
    ("openai", "gpt-4o"): "gpt-4o-mini",
    ("openai", "gpt-4.1"): "gpt-4.1-mini",
    ("openai", "gpt-5"): "gpt-5-mini",
    ("openai", "gpt-5.1"): "gpt-5-mini",
    ("openai", "gpt-5.2"): "gpt-5-mini",
    ("openai", "gpt-5.4"): "gpt-5.4-mini",
    ("openai", "gpt-5.5"): "gpt-5.4-mini",
    ("openai", "gpt-5.6"): "gpt-5.4-mini",
    ("openai", "o3"): "o4-mini",
    ("google", "gemini-2.5-pro"): "gemini-2.5-flash",
    ("google", "gemini-3.1-pro-preview"): "gemini-3-flash-preview",
    ("mistral", "mistral-large-latest"): "mistral-small-latest",
    ("mistral", "mistral-medium-latest"): "mistral-small-latest",
    ("mistral", "magistral-medium-latest"): "magistral-small-latest",
    ("bedrock", "amazon.nova-pro-v1:0"): "amazon.nova-lite-v1:0",
}
"""A premium model → the cheaper model of the same provider that serves short answers well.
Families by pattern below; anything else: `<model>-mini` when the catalog prices it."""
FAMILY_DOWNGRADES: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("anthropic", re.compile(r"claude-opus-.*"), "claude-sonnet-4-6"),
    ("anthropic", re.compile(r"claude-sonnet-.*"), "claude-haiku-4-5"),
)


@dataclass(frozen=True)
class RecommendationRules:
    """The thresholds each kind uses (documented in docs/recommendations.md)."""

    window_days: int = 30
    min_monthly_usd: Decimal = Decimal("1.00")
    """A saving below this per month is not worth a recommendation."""
    short_output_tokens: int = 256
    min_cacheable_tokens: int = 1024
    """Providers cache prompts from about 1,024 tokens on (OpenAI, Anthropic)."""
    overhold_ratio: Decimal = Decimal(3)
    """Holds at least this many times the actual spend (median) are worth capping."""
    min_calls: int = 20
    sandbox_long_seconds: int = 1800
    quota_low_pct: Decimal = Decimal(10)
    quota_hit_pct: Decimal = Decimal(95)
    max_records: int = 20_000


class Recommendation(Model):
    """One piece of advice with what it saves, why, and how sure we are."""

    recommendation_id: str = Field(
        description="stable per kind and subject, e.g. `model_right_sizing:openai/gpt-4o`"
    )
    kind: Kind
    title: str
    action: str = Field(description="what to change")
    monthly_savings_usd: UsdOut = Field(
        description="spend saved per month at the observed rate (0 when the advice frees budget or tightens a limit rather than saving spend)"
    )
    confidence: Confidence
    period_from: datetime
    period_to: datetime
    evidence: dict[str, str] = Field(description="the numbers behind it, as strings")


class RecommendationList(Model):
    tenant_id: str
    generated_at: datetime
    period_from: datetime
    period_to: datetime
    days_observed: int = Field(
        description="days of the window with the tenant's records (the monthly scale is 30 / this)"
    )
    records_examined: int
    truncated: bool = Field(description="true when the window held more records than were read")
    monthly_savings_usd: UsdOut
    recommendations: list[Recommendation]


@dataclass
class Window:
    first: datetime
    last: datetime
    days: int
    records: list[CostRecordItem] = field(default_factory=list)
    truncated: bool = False

    @property
    def scale(self) -> Decimal:
        """Window figures → per month (30 days)."""
        return Decimal(30) / Decimal(self.days)


def _d(value: Any) -> Decimal:
    return Decimal(str(value)) if value is not None else ZERO


def _int(value: Any) -> int:
    return int(value) if value is not None else 0


def _usd(value: Decimal) -> Decimal:
    return value.quantize(MICRO)


def _pct(part: Decimal, whole: Decimal) -> str:
    return str((part / whole * 100).quantize(PCT)) if whole > 0 else "0.0"


def _confidence(samples: int, days: int, ceiling: Confidence = "high") -> Confidence:
    level: Confidence = "low"
    if samples >= 200 and days >= 14:
        level = "high"
    elif samples >= 30 and days >= 7:
        level = "medium"
    order = ("low", "medium", "high")
    return level if order.index(level) <= order.index(ceiling) else ceiling


def read_window(ledger: Ledger, tenant_id: str, rules: RecommendationRules) -> Window:
    """The tenant's settled records of the last `window_days` (at most `max_records`)."""
    now = ledger.now()
    first = now - timedelta(days=rules.window_days)
    records: list[CostRecordItem] = []
    after: str | None = None
    truncated = False
    while True:
        page, after = ledger.settled_records(
            tenant_id, first, now, limit=min(1000, rules.max_records - len(records)), after=after
        )
        records.extend(page)
        if after is None:
            break
        if len(records) >= rules.max_records:
            truncated = True
            break
    days = rules.window_days
    # Any day item before the window (spend or a day counter) means the tenant is older than
    # it: one key-only page of one item, whatever the tenant's history.
    earlier = ledger.any_day_between(
        tenant_id, first - timedelta(days=366), first - timedelta(days=1)
    )
    if records and not earlier:
        # a tenant younger than the window: scale its savings by the days it has existed
        oldest = min(r.created_at for r in records).date()
        days = min(rules.window_days, (now.date() - oldest).days + 1)
    return Window(first, now, max(1, days), records, truncated)


def _price(record: CostRecordItem, name: str) -> Decimal | None:
    price = record.price
    if isinstance(price, dict) and price.get(name) is not None:
        return Decimal(str(price[name]))
    return None


def cheaper_model(provider: str, model: str, known: set[tuple[str, str]]) -> str | None:
    """The cheaper sibling to try short answers on, if the catalog knows one."""
    name = model.split("/", 1)[1] if model.startswith(f"{provider}/") else model
    target = DOWNGRADES.get((provider, name))
    if target is None:
        for family_provider, pattern, candidate in FAMILY_DOWNGRADES:
            if provider == family_provider and pattern.fullmatch(name) and candidate != name:
                target = candidate
                break
    if target is None and (provider, f"{name}-mini") in known:
        target = f"{name}-mini"
    return target if target is not None and (provider, target) in known else None


def _llm_cost(
    tokens: tuple[int, int, int], per_million: tuple[Decimal, Decimal, Decimal]
) -> Decimal:
    fresh_in, cached_in, out = tokens
    p_in, p_cached, p_out = per_million
    return (fresh_in * p_in + cached_in * p_cached + out * p_out) / MILLION


def right_sizing(ledger: Ledger, w: Window, rules: RecommendationRules) -> list[Recommendation]:
    """Short-output calls of premium models, priced again at their cheaper sibling."""
    book = ledger.price_book()
    known = {(p.provider, p.model) for p in book.prices() if isinstance(p, ModelPrice)}
    calls: dict[tuple[str, str], int] = defaultdict(int)
    short: dict[tuple[str, str], list[CostRecordItem]] = defaultdict(list)
    for r in w.records:
        if r.resource != "llm" or not r.model or r.output_tokens is None:
            continue
        subject = (r.provider or "", r.model)
        calls[subject] += 1
        if r.output_tokens <= rules.short_output_tokens:
            short[subject].append(r)
    found = []
    for (provider, model), rows in sorted(short.items()):
        target = cheaper_model(provider, model, known)
        if target is None:
            continue
        try:
            cheap = book.model_price(provider, target, w.last)
        except CostguardError:
            continue
        prices = (
            cheap.input_per_million_usd,
            cheap.cached_input_per_million_usd,
            cheap.output_per_million_usd,
        )
        paid = sum((r.charged_usd for r in rows), ZERO)
        would = ZERO
        for r in rows:
            cached = _int(r.cached_input_tokens)
            tokens = (_int(r.input_tokens) - cached, cached, _int(r.output_tokens))
            would += _llm_cost(tokens, prices)
        monthly = _usd((paid - would) * w.scale)
        if monthly < rules.min_monthly_usd:
            continue
        outputs = [_int(r.output_tokens) for r in rows]
        name = f"{provider}/{model}"
        found.append(
            Recommendation(
                recommendation_id=f"model_right_sizing:{name}",
                kind="model_right_sizing",
                title=f"Serve short answers of {name} with {provider}/{target}",
                action=(
                    f"Route {name} calls that answer in ≤ {rules.short_output_tokens} output "
                    f"tokens (classification, extraction, routing) to {provider}/{target}; "
                    "check their quality on a sample first."
                ),
                monthly_savings_usd=monthly,
                # the ledger cannot tell whether the cheaper model answers as well
                confidence=_confidence(len(rows), w.days, ceiling="medium"),
                period_from=w.first,
                period_to=w.last,
                evidence={
                    "calls": str(calls[(provider, model)]),
                    "short_calls": str(len(rows)),
                    "short_share_pct": _pct(Decimal(len(rows)), Decimal(calls[(provider, model)])),
                    "median_output_tokens": str(int(statistics.median(outputs))),
                    "short_calls_spend_usd": format_usd(_usd(paid)),
                    "same_calls_on_cheaper_usd": format_usd(_usd(would)),
                    "cheaper_model": f"{provider}/{target}",
                    "cheaper_input_per_million_usd": str(cheap.input_per_million_usd),
                    "cheaper_output_per_million_usd": str(cheap.output_per_million_usd),
                    "days": str(w.days),
                },
            )
        )
    return found


def prompt_caching(w: Window, rules: RecommendationRules) -> list[Recommendation]:
    """Inputs that repeat the previous call of their conversation, paid at the full price."""
    conversations: dict[str, list[CostRecordItem]] = defaultdict(list)
    llm_input = 0
    for r in w.records:
        if r.resource != "llm" or r.input_tokens is None:
            continue
        llm_input += _int(r.input_tokens)
        if r.conversation_id:
            conversations[r.conversation_id].append(r)
    cacheable = cached = calls = 0
    saving = ZERO
    for rows in conversations.values():
        rows.sort(key=lambda r: r.record_id)
        for before, r in pairwise(rows):
            prefix = min(_int(before.input_tokens), _int(r.input_tokens))
            if prefix < rules.min_cacheable_tokens:
                continue
            p_in, p_cached = (
                _price(r, "input_per_million_usd"),
                _price(r, "cached_input_per_million_usd"),
            )
            read = min(prefix, _int(r.cached_input_tokens))
            calls += 1
            cacheable += prefix
            cached += read
            if p_in is not None and p_cached is not None and p_in > p_cached:
                saving += (prefix - read) * (p_in - p_cached) / MILLION
    monthly = _usd(saving * w.scale)
    if monthly < rules.min_monthly_usd:
        return []
    return [
        Recommendation(
            recommendation_id="prompt_caching:conversations",
            kind="prompt_caching",
            title="Cache the repeated conversation prefix",
            action=(
                "Put the stable part of the prompt (system prompt, tools, earlier turns) first "
                "and mark it cacheable (Anthropic cache_control; OpenAI and Gemini cache "
                "prefixes of ≥ 1,024 tokens automatically when they are identical)."
            ),
            monthly_savings_usd=monthly,
            confidence=_confidence(calls, w.days, ceiling="high"),
            period_from=w.first,
            period_to=w.last,
            evidence={
                "conversation_calls": str(calls),
                "input_tokens": str(llm_input),
                "cacheable_input_tokens": str(cacheable),
                "cacheable_share_pct": _pct(Decimal(cacheable), Decimal(llm_input)),
                "cached_read_tokens": str(cached),
                "cached_share_of_cacheable_pct": _pct(Decimal(cached), Decimal(cacheable)),
                "window_saving_usd": format_usd(_usd(saving)),
                "note": "cache write premiums (Anthropic 1.25×) are not deducted",
                "days": str(w.days),
            },
        )
    ]


def _peak_overlap(spans: Iterable[tuple[datetime, datetime, Decimal]]) -> Decimal:
    """The most money held at one instant by intervals [start, end) each holding an amount."""
    events = []
    for start, end, amount in spans:
        events.append((start, 1, amount))
        events.append((end, 0, -amount))  # an end sorts before a start at the same instant
    peak = level = ZERO
    for _, _, delta in sorted(events, key=lambda e: (e[0], e[1])):
        level += delta
        peak = max(peak, level)
    return peak


def output_caps(
    ledger: Ledger, tenant_id: str, w: Window, rules: RecommendationRules
) -> list[Recommendation]:
    """Holds many times the spend they settled to: budget locked and reserves refused for nothing."""
    groups: dict[str, list[CostRecordItem]] = defaultdict(list)
    for r in w.records:
        if r.status != "committed" or r.estimate_usd is None:
            continue
        subject = r.model or r.tier or r.resource
        if r.resource == "llm" and r.provider:
            subject = f"{r.provider}/{subject}"
        groups[subject].append(r)
    hard_limits = [
        (q.quota_id, q.limit_usd)
        for q in ledger.quotas(tenant_id)
        if q.mode == "hard" and Decimal(q.limit_usd) > 0
    ]
    found = []
    for subject, rows in sorted(groups.items()):
        if len(rows) < rules.min_calls:
            continue
        ratios = [_d(r.estimate_usd) / r.charged_usd if r.charged_usd > 0 else None for r in rows]
        finite = [x for x in ratios if x is not None]
        if not finite or Decimal(statistics.median(finite)) < rules.overhold_ratio:
            continue
        excess = [
            (r.created_at, r.recorded_at or r.created_at,
             max(ZERO, _d(r.estimate_usd) - r.charged_usd))
            for r in rows
        ]  # fmt: skip
        held = sum((_d(r.estimate_usd) for r in rows), ZERO)
        spent = sum((r.charged_usd for r in rows), ZERO)
        peak = _peak_overlap(excess)
        outputs = sorted(_int(r.output_tokens) for r in rows if r.output_tokens is not None)
        evidence = {
            "calls": str(len(rows)),
            "median_hold_to_spend_ratio": str(Decimal(statistics.median(finite)).quantize(PCT)),
            "held_usd": format_usd(_usd(held)),
            "spent_usd": format_usd(_usd(spent)),
            "excess_held_usd": format_usd(_usd(held - spent)),
            "peak_excess_held_at_once_usd": format_usd(_usd(peak)),
            "days": str(w.days),
        }
        action = f"Send a tighter output cap (max_tokens) with {subject} reserves"
        if outputs:
            p95 = outputs[min(len(outputs) - 1, math.ceil(0.95 * len(outputs)) - 1)]
            cap = max(16, math.ceil(p95 * 1.2))
            evidence["p95_output_tokens"] = str(p95)
            evidence["suggested_output_cap_tokens"] = str(cap)
            action += f": {cap} tokens covers 95 % of its calls with 20 % to spare"
        if hard_limits:
            qid, limit = min(hard_limits, key=lambda x: Decimal(x[1]))
            evidence["tightest_hard_quota"] = qid
            evidence["peak_excess_share_of_its_limit_pct"] = _pct(peak, Decimal(limit))
        found.append(
            Recommendation(
                recommendation_id=f"output_caps:{subject}",
                kind="output_caps",
                title=f"Holds for {subject} are {evidence['median_hold_to_spend_ratio']}× what the calls spend",
                action=action
                + "; the hold is the worst case, and what it locks other calls cannot use.",
                monthly_savings_usd=ZERO,
                confidence=_confidence(len(rows), w.days),
                period_from=w.first,
                period_to=w.last,
                evidence=evidence,
            )
        )
    return found


def sandbox_time(ledger: Ledger, w: Window, rules: RecommendationRules) -> list[Recommendation]:
    """Per tier: time past an idle timeout, or reported idle, that was paid for."""
    tiers: dict[str, list[CostRecordItem]] = defaultdict(list)
    for r in w.records:
        if r.resource == "sandbox" and r.seconds is not None:
            tiers[r.tier or "-"].append(r)
    book = ledger.price_book()
    found = []
    for tier, rows in sorted(tiers.items()):
        long = idle_reported = 0
        wasted_seconds = ZERO
        saving = ZERO
        for r in rows:
            seconds = _d(r.seconds)
            idle = _d((r.metadata or {}).get("idle_seconds"))
            beyond = max(ZERO, seconds - rules.sandbox_long_seconds)
            long += beyond > 0
            idle_reported += idle > 0
            waste = min(seconds, max(beyond, idle))
            if waste <= 0:
                continue
            rate = _price(r, "per_second_usd")
            if rate is None:
                try:
                    rate = book.tier_price(tier, r.created_at).per_second_usd
                except CostguardError:
                    continue
            wasted_seconds += waste
            saving += waste * rate
        monthly = _usd(saving * w.scale)
        if monthly < rules.min_monthly_usd:
            continue
        seconds_all = [_d(r.seconds) for r in rows]
        found.append(
            Recommendation(
                recommendation_id=f"sandbox_time:{tier}",
                kind="sandbox_time",
                title=f"{tier} sandboxes run long or idle",
                action=(
                    f"Set an idle timeout on {tier} sandboxes (at most "
                    f"{rules.sandbox_long_seconds // 60} min) and kill them when the task ends."
                ),
                monthly_savings_usd=monthly,
                confidence=_confidence(len(rows), w.days, "high" if idle_reported else "medium"),
                period_from=w.first,
                period_to=w.last,
                evidence={
                    "sessions": str(len(rows)),
                    "long_sessions": str(long),
                    "sessions_reporting_idle": str(idle_reported),
                    "median_seconds": str(statistics.median(seconds_all)),
                    "longest_seconds": str(max(seconds_all)),
                    "seconds_past_timeout_or_idle": str(wasted_seconds),
                    "timeout_seconds": str(rules.sandbox_long_seconds),
                    "window_saving_usd": format_usd(_usd(saving)),
                    "days": str(w.days),
                },
            )
        )
    return found


def _previous_starts(period: Period, now: datetime, count: int, tz: tzinfo = UTC) -> list[datetime]:
    """The first instants of the `count` complete periods before the current one, newest first
    (periods of the calendar in `tz`)."""
    starts = []
    at = period_start(period, now, tz)
    for _ in range(count):
        at = period_start(period, at - timedelta(seconds=1), tz)
        starts.append(at)
    return starts


PAST_PERIODS = {Period.DAY: 14, Period.WEEK: 8, Period.MONTH: 3}
MIN_PERIODS = {Period.DAY: 7, Period.WEEK: 4, Period.MONTH: 2}


def quota_limits(
    ledger: Ledger, tenant_id: str, rules: RecommendationRules
) -> list[Recommendation]:
    """Quotas that ended most recent periods at their limit, or never passed `quota_low_pct`
    (the tenant's periods, in its zone)."""
    local = local_now(ledger, tenant_id)
    now, tz = local.astimezone(UTC), local.tzinfo or UTC
    found = []
    for q in ledger.quotas(tenant_id):
        qid = QuotaId.parse(q.quota_id)
        period = qid.period
        starts = _previous_starts(period, now, PAST_PERIODS[period], tz)
        # every slice of a sliced quota, summed (D77)
        totals = ledger.period_totals(tenant_id, qid, [period_key(period, s, tz) for s in starts])
        live: list[tuple[datetime, Decimal, Decimal]] = [
            (s, *totals[k]) for s in starts if (k := period_key(period, s, tz)) in totals
        ]
        if len(live) < MIN_PERIODS[period]:
            continue
        oldest = min(s for s, _, _ in live)
        shares = [spent / limit * 100 if limit > 0 else Decimal(100) for _, spent, limit in live]
        top_spent = max(spent for _, spent, _ in live)
        at_limit = sum(1 for x in shares if x >= rules.quota_hit_pct)
        current = Decimal(q.utilization) * 100
        evidence = {
            "periods": str(len(live)),
            "period": period.value,
            "limit_usd": format_usd(_usd(Decimal(q.limit_usd))),
            "max_spent_usd": format_usd(_usd(top_spent)),
            "max_utilization_pct": str(max(shares).quantize(PCT)),
            "periods_at_limit": str(at_limit),
            "current_utilization_pct": str(current.quantize(PCT)),
        }
        common = {
            "monthly_savings_usd": ZERO,
            "period_from": oldest,
            "period_to": now,
            "evidence": evidence,
        }
        if q.mode == "hard" and at_limit >= 2 and at_limit * 2 >= len(live):
            raise_to = (top_spent * Decimal("1.25")).quantize(Decimal(1), rounding=ROUND_CEILING)
            evidence["suggested_limit_usd"] = format_usd(_usd(raise_to))
            found.append(
                Recommendation(
                    recommendation_id=f"quota_limits:{q.quota_id}",
                    kind="quota_limits",
                    title=f"{q.quota_id} ends {at_limit} of {len(live)} {period.value}s at its limit",
                    action=(
                        f"It refuses calls near every {period.value}'s end: raise it (e.g. to "
                        f"${evidence['suggested_limit_usd']}), or set user quotas to find who "
                        "uses it up."
                    ),
                    confidence="high" if at_limit >= 3 else "medium",
                    **common,
                )
            )
        elif max(shares) < rules.quota_low_pct and current < rules.quota_low_pct:
            lower = max(Decimal(1), (top_spent * 3).quantize(Decimal(1), rounding=ROUND_CEILING))
            evidence["suggested_limit_usd"] = format_usd(_usd(lower))
            evidence["exposure_removed_usd"] = format_usd(
                _usd(max(ZERO, Decimal(q.limit_usd) - lower))
            )
            found.append(
                Recommendation(
                    recommendation_id=f"quota_limits:{q.quota_id}",
                    kind="quota_limits",
                    title=f"{q.quota_id} never passed {rules.quota_low_pct} % in {len(live)} {period.value}s",
                    action=(
                        f"A limit this far above the spend stops nothing: lower it to "
                        f"${evidence['suggested_limit_usd']} (3× the highest {period.value}) so a "
                        "runaway is stopped early."
                    ),
                    confidence="high" if len(live) >= PAST_PERIODS[period] else "medium",
                    **common,
                )
            )
    return found


def recommend(
    ledger: Ledger, tenant_id: str, rules: RecommendationRules | None = None
) -> RecommendationList:
    """Every recommendation for a tenant, the largest monthly saving first."""
    rules = rules or RecommendationRules()
    w = read_window(ledger, tenant_id, rules)
    found = [
        *right_sizing(ledger, w, rules),
        *prompt_caching(w, rules),
        *output_caps(ledger, tenant_id, w, rules),
        *sandbox_time(ledger, w, rules),
        *quota_limits(ledger, tenant_id, rules),
    ]
    found.sort(key=lambda r: (-r.monthly_savings_usd, r.recommendation_id))
    return RecommendationList(
        tenant_id=tenant_id,
        generated_at=w.last,
        period_from=w.first,
        period_to=w.last,
        days_observed=w.days,
        records_examined=len(w.records),
        truncated=w.truncated,
        monthly_savings_usd=sum((r.monthly_savings_usd for r in found), ZERO),
        recommendations=found,
    )


# ---------------------------------------------------------------------- weekly digest
def iso_week(at: datetime) -> str:
    year, week, _ = at.astimezone(UTC).isocalendar()
    return f"{year}-W{week:02d}"


def digest_draft(advice: RecommendationList, now: datetime) -> AlertDraft | None:
    """The week's digest of a tenant's recommendations (None when there is nothing to say)."""
    if not advice.recommendations:
        return None
    week = iso_week(now)
    top = advice.recommendations[:3]
    lines = "; ".join(
        f"{r.title} (${format_usd(r.monthly_savings_usd)}/month, {r.confidence})" for r in top
    )
    more = len(advice.recommendations) - len(top)
    return AlertDraft(
        alert_type=AlertType.RECOMMENDATION,
        severity=Severity.INFO,
        dedup_key=f"digest#{week}",
        tenant_id=advice.tenant_id,
        title=(
            f"{advice.tenant_id}: {len(advice.recommendations)} "
            f"recommendation{'' if len(advice.recommendations) == 1 else 's'}, "
            f"${format_usd(advice.monthly_savings_usd)}/month to save ({week})"
        ),
        message=f"{lines}{f'; and {more} more' if more > 0 else ''}.",
        period_key=f"WEEK#{week}",
        spent_usd=advice.monthly_savings_usd,
        details={
            "week": week,
            "count": str(len(advice.recommendations)),
            "monthly_savings_usd": format_usd(advice.monthly_savings_usd),
            **{f"top_{i + 1}": r.recommendation_id for i, r in enumerate(top)},
        },
    )


def run_digests(
    ledger: Ledger,
    book: AlertBook,
    rules: RecommendationRules,
    *,
    time_left: TimeLeft | None = None,
    workers: int = 1,
) -> RunReport:
    """The weekly run: every tenant with spend in the last 7 days gets its digest, once a week."""
    now = ledger.now()

    def one(tenant: str) -> tuple[int, int]:
        draft = digest_draft(recommend(ledger, tenant, rules), now)
        if draft is None:
            return 0, 0
        return 1, len(book.record([draft]))

    return scheduled_run(
        now,
        lambda: active_tenants(ledger.table, around(now.date(), 6)),
        one,
        count_found,
        time_left,
        workers,
    )


__all__ = [
    "Recommendation",
    "RecommendationList",
    "RecommendationRules",
    "Resource",
    "Scope",
    "digest_draft",
    "recommend",
    "run_digests",
]
