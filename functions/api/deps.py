"""What routes depend on: the ledger, the keys, the bus. The API's composition root: each is
built here once per container from the settings; tests and the local runner give their own
through `app.dependency_overrides` (local/workers.py `serve_api_on`)."""

from __future__ import annotations

from functools import cache
from typing import Annotated

from aws_lambda_powertools.event_handler import Depends
from aws_lambda_powertools.event_handler.openapi.params import Header
from costguard.alerts import AlertBook
from costguard.auth import ApiKeys, fingerprint
from costguard.ledger import Ledger, ledger_from_settings
from costguard.notify import EventSink, event_sink_from_settings
from costguard.onboarding import Onboarding, plans_from_settings
from costguard.settings import Settings, get_settings


@cache
def get_ledger() -> Ledger:
    return ledger_from_settings(get_settings())


def admin_fingerprints(settings: Settings) -> frozenset[str]:
    """The admin keys this deployment accepts: from the environment and/or Secrets Manager."""
    prints = set()
    if settings.admin_key is not None:
        prints.add(fingerprint(settings.admin_key.get_secret_value()))
    if settings.admin_key_sha256:
        prints.add(settings.admin_key_sha256)
    if settings.admin_key_secret_arn:
        from aws_lambda_powertools.utilities.parameters import get_secret

        prints.add(fingerprint(str(get_secret(settings.admin_key_secret_arn)).strip()))
    return frozenset(prints)


def keys_for(ledger: Ledger, settings: Settings) -> ApiKeys:
    """The API keys stored in `ledger`'s table, and the admin keys of `settings`."""
    return ApiKeys(ledger.table, admin_fingerprints(settings), settings.api_key_cache_seconds)


@cache
def get_keys() -> ApiKeys:
    return keys_for(get_ledger(), get_settings())


def get_alerts(ledger: Annotated[Ledger, Depends(get_ledger)]) -> AlertBook:
    return AlertBook(ledger.table, ledger.now)


@cache
def get_events() -> EventSink:
    """The deployment's EventBridge bus (COSTGUARD_EVENT_BUS_NAME); nowhere when unset."""
    return event_sink_from_settings()


def get_onboarding(ledger: Annotated[Ledger, Depends(get_ledger)]) -> Onboarding:
    """Seeds default quotas when TenantCreated cannot be published (see announce_tenant)."""
    return Onboarding(ledger, plans_from_settings())


TENANT = "/v1/tenants/<tenant_id>"
CURSOR = r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$"
"""A page cursor is the id (a ULID: 26 Crockford base32 digits, the first at most 7) it follows."""
LedgerDep = Annotated[Ledger, Depends(get_ledger)]
KeysDep = Annotated[ApiKeys, Depends(get_keys)]
EventsDep = Annotated[EventSink, Depends(get_events)]
OnboardingDep = Annotated[Onboarding, Depends(get_onboarding)]
AlertsDep = Annotated[AlertBook, Depends(get_alerts)]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)]
"""Accepted on every mutating route; see docs/decisions.md D15."""
