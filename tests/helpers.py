"""Small builders the tests share."""

from __future__ import annotations

from decimal import Decimal

from costguard.ledger import Ledger
from costguard.models import QuotaState, Usage
from costguard.periods import Period
from costguard.quotas import Mode, QuotaDefinition, QuotaId, Resource, Scope


def usd(text: str) -> Decimal:
    return Decimal(text)


def estimate(amount: str, resource: str = "llm", **attribution: str) -> Usage:
    return Usage(resource=resource, estimated_cost_usd=amount, **attribution)


def actual(amount: str, resource: str = "llm", **attribution: str) -> Usage:
    return Usage(resource=resource, cost_usd=amount, **attribution)


def quota(text: str, limit: str, mode: Mode = Mode.HARD, grace: str = "0") -> QuotaDefinition:
    return QuotaDefinition(QuotaId.parse(text), Decimal(limit), mode, grace_pct=Decimal(grace))


def set_quota(
    ledger: Ledger,
    tenant: str | None,
    text: str,
    limit: str,
    mode: Mode = Mode.HARD,
    grace: str = "0",
) -> None:
    ledger.put_quota(tenant, quota(text, limit, mode, grace))


def one_token_at_30_cents_per_million(ledger: Ledger) -> Usage:
    """A usage that costs exactly $0.0000003: one input token of a model priced $0.30/M."""
    from costguard.pricing import ModelPrice

    ledger.put_price(
        ModelPrice(
            "mistral",
            "codestral-2508",
            Decimal("0.30"),
            Decimal("0.90"),
            Decimal("0.30"),
            ledger.now().replace(day=1),
        )
    )
    return Usage(
        resource="llm", provider="mistral", model="codestral-2508", input_tokens=1, output_tokens=0
    )


def quota_state(ledger: Ledger, tenant: str | None, quota_id: str) -> QuotaState:
    return next(q for q in ledger.quotas(tenant) if q.quota_id == quota_id)


__all__ = ["Mode", "Period", "QuotaId", "Resource", "Scope"]
