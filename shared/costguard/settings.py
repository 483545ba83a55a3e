"""Deployment settings: one pydantic model, read from the environment once per cold start."""

from __future__ import annotations

import os
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr

ENV_PREFIX = "COSTGUARD_"


class EnvSettings(BaseModel):
    """A frozen model whose fields come from the environment, `COSTGUARD_<FIELD>` in any case,
    a value given to the constructor winning over the environment's. What pydantic-settings'
    `BaseSettings` did for these models (their fields are all scalars: strings given to
    pydantic's validation as they are, nothing parsed as JSON, no dotenv, no secrets
    directory), without importing it: ≈ 30 ms of the API's cold start, and ≈ 10 ms of its
    first request building the settings through its sources (D119)."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)
    env_prefix: ClassVar[str] = ENV_PREFIX

    def __init__(self, **values: Any) -> None:
        super().__init__(**{**self.from_environment(), **values})

    @classmethod
    def from_environment(cls) -> dict[str, str]:
        """The fields the environment sets; names match in any case, as BaseSettings read
        them (of two spellings of one name, the later in the environment wins)."""
        lowered = {name.lower(): value for name, value in os.environ.items()}
        prefix = cls.env_prefix.lower()
        return {
            field: lowered[prefix + field]
            for field in cls.model_fields
            if prefix + field in lowered
        }


class Enforcement(StrEnum):
    ENFORCE = "enforce"
    MONITOR = "monitor"
    """Count everything, refuse nothing (a deployment trying costguard out)."""


class FailMode(StrEnum):
    CLOSED = "closed"
    """Ledger unreachable → refuse (503 + Retry-After). The default."""
    OPEN = "open"
    """Ledger unreachable → let the call through unguarded; its commit is recorded later."""


class AnomalyMethod(StrEnum):
    AUTO = "auto"
    """mean + kσ, or median + k·MAD for a tenant whose own history has outliers (spiky)."""
    STDDEV = "stddev"
    MAD = "mad"


HELD_SWEEP_MINUTES = 1
"""The default of `held_sweep_minutes` (costguard/topology.py's HELD_SWEEP, D104)."""


class Settings(EnvSettings):
    table_name: str = Field(default="costguard-ledger", min_length=3, max_length=255)
    enforcement: Enforcement = Enforcement.ENFORCE
    fail_mode: FailMode = FailMode.CLOSED
    reservation_ttl_seconds: int = Field(default=900, ge=5, le=86_400)
    """How long a hold lives when the caller does not say; expired holds are returned."""
    max_reservation_ttl_seconds: int = Field(default=86_400, ge=5, le=7 * 86_400)
    single_item_reserve: bool = True
    """Reserve in one UpdateItem on the counter when every quota lives on it (D70); off:
    every reserve is a transaction with a record (the path before issue 22)."""
    held_sweep_minutes: int = Field(default=HELD_SWEEP_MINUTES, ge=1, le=1440)
    """The sweeper's walk of counters with in-item holds runs every this many minutes (D104)."""
    price_cache_seconds: int = Field(default=60, ge=0, le=3600)
    fallback_input_per_million_usd: Decimal | None = None
    """With the output price below: price unknown models at this instead of refusing them."""
    fallback_output_per_million_usd: Decimal | None = None
    transaction_attempts: int = Field(default=6, ge=1, le=20)
    """Attempts for a transaction that DynamoDB cancels with TransactionConflict."""
    ddb_connect_timeout_seconds: float = Field(default=1.0, gt=0, le=30)
    ddb_read_timeout_seconds: float = Field(default=2.0, gt=0, le=60)
    ddb_max_attempts: int = Field(default=3, ge=1, le=10)
    unavailable_retry_after_seconds: int = Field(default=2, ge=1, le=300)
    admin_key: SecretStr | None = None
    """The bootstrap admin key (local runs; in AWS it comes from Secrets Manager)."""
    admin_key_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    """Alternatively, only the SHA-256 of the admin key."""
    admin_key_secret_arn: str | None = None
    """In AWS: the Secrets Manager secret holding the admin key (read once per cold start)."""
    api_key_cache_seconds: float = Field(default=30, ge=0, le=300)
    """How long a process trusts a verified tenant key: revocation takes at most this long."""
    max_body_bytes: int = Field(default=16_384, ge=1024, le=1_048_576)
    event_bus_name: str | None = None
    """The EventBridge bus costguard puts its events on (TenantCreated, alerts); None: none."""
    event_source: str = Field(default="costguard", min_length=1, max_length=256)
    """The `source` of costguard's own events on that bus."""
    alerts_topic_arn: str | None = None
    """The SNS topic alerts are published to; None: alerts are recorded, not published."""
    slack_webhook_secret: str | None = None
    """Secrets Manager secret (name or ARN) holding the Slack incoming-webhook URL."""
    slack_webhook_url: SecretStr | None = None
    """Or the URL itself (local runs); never logged."""
    slack_attempts: int = Field(default=4, ge=1, le=10)
    """Posts per alert before the notifier gives up (then Lambda retries, then the DLQ)."""
    slack_max_wait_seconds: float = Field(default=20, ge=0, le=300)
    """The longest a Retry-After from Slack is honoured within one invocation."""
    anomaly_baseline_days: int = Field(default=30, ge=7, le=90)
    """Complete days before the day under test that make a tenant's baseline."""
    anomaly_min_history_days: int = Field(default=7, ge=3, le=60)
    """Fewer days of history than this: no verdict (reported as `insufficient_history`)."""
    anomaly_sigmas: Decimal = Field(default=Decimal(2), gt=0, le=10)
    """k in mean + kσ (and median + k·1.4826·MAD)."""
    anomaly_method: AnomalyMethod = AnomalyMethod.AUTO
    anomaly_min_usd: Decimal = Field(default=Decimal("1.00"), ge=0)
    """A day (or a model's, a user bucket's part of it) below this is never an anomaly."""
    anomaly_share_min_pct: int = Field(default=50, ge=1, le=100)
    """A model or user bucket is a share jump at this share of the day's spend or more…"""
    anomaly_share_jump_pct: int = Field(default=25, ge=1, le=100)
    """…and this many percentage points above its share of the baseline's spend."""
    forecast_medium_pct: int = Field(default=80, ge=1, le=100)
    """Risk `medium` from this projected utilization (%); `high` is a breach before the
    period ends; `critical` is a breach within `forecast_critical_hours` (or already)."""
    forecast_critical_hours: int = Field(default=48, ge=1, le=24 * 31)
    forecast_active_days: int = Field(default=7, ge=1, le=31)
    """Forecasts cover the tenants that spent on one of the last this many days."""
    schedule_time_reserve_seconds: int = Field(default=10, ge=1, le=300)
    """A scheduled run stops taking tenants when less than this is left of its timeout."""
    schedule_workers: int = Field(default=8, ge=1, le=64)
    """Tenants a scheduled run works on at once (threads; the work is DynamoDB round trips)."""


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process, validated once; a bad value fails the cold start."""
    return Settings()
