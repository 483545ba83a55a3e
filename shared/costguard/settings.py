"""Deployment settings: one pydantic model, read from the environment once per cold start."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from functools import lru_cache

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Enforcement(StrEnum):
    ENFORCE = "enforce"
    MONITOR = "monitor"
    """Count everything, refuse nothing (a deployment trying costguard out)."""


class FailMode(StrEnum):
    CLOSED = "closed"
    """Ledger unreachable → refuse (503 + Retry-After). The default."""
    OPEN = "open"
    """Ledger unreachable → let the call through unguarded; its commit is recorded later."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COSTGUARD_", frozen=True)

    table_name: str = Field(default="costguard-ledger", min_length=3, max_length=255)
    enforcement: Enforcement = Enforcement.ENFORCE
    fail_mode: FailMode = FailMode.CLOSED
    reservation_ttl_seconds: int = Field(default=900, ge=5, le=86_400)
    """How long a hold lives when the caller does not say; expired holds are returned."""
    max_reservation_ttl_seconds: int = Field(default=86_400, ge=5, le=7 * 86_400)
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


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process, validated once; a bad value fails the cold start."""
    return Settings()
