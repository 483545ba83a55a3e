"""Deployment configuration: CDK context keys (`-c key=value` or cdk.json), with defaults.

Every key is documented in docs/infrastructure.md; a bad value fails the synth, not the deploy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from aws_cdk import aws_logs as logs
from costguard.notify import SOURCE
from costguard.onboarding import SEED_PLANS, parse_plans
from costguard.settings import Enforcement, FailMode
from costguard.topology import (
    ANOMALY_SCHEDULE,
    FORECAST_SCHEDULE,
    HELD_SWEEP,
    SWEEP,
    Schedule,
)

REPO_ROOT = Path(__file__).resolve().parent.parent

PREFIX = "costguard:"
RETENTION = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    731: logs.RetentionDays.TWO_YEARS,
}
"""Log retention in days → CloudWatch Logs' value (a subset of what it accepts)."""


def cdk_json_context(path: Path = REPO_ROOT / "cdk.json") -> dict[str, Any]:
    """The context of cdk.json (feature flags and defaults): tests synthesize with exactly it."""
    context: dict[str, Any] = json.loads(path.read_text())["context"]
    return context


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"not a boolean: {value!r}")


def _list(value: Any) -> tuple[str, ...]:
    """A JSON list in cdk.json, or a comma-separated string from `-c key=a,b`."""
    if value is None or value == "":
        return ()
    if isinstance(value, list | tuple):
        return tuple(str(v).strip() for v in value if str(v).strip())
    return tuple(part.strip() for part in str(value).split(",") if part.strip())


def _source(name: str, value: Any) -> str:
    """An EventBridge `source`: 1-256 characters, and not `aws.…` (reserved for AWS)."""
    text = str(value).strip()
    if not 0 < len(text) <= 256 or text.startswith("aws."):
        raise ValueError(f"{PREFIX}{name}: {value!r} is not a source of your own")
    return text


def _plans(quotas: Any, fallback: Any) -> tuple[str | None, str | None]:
    """(`default_quotas` as compact JSON, `fallback_plan`), each None when unset; validated
    with the code that reads them at cold start, so a bad plan fails the synth."""
    if quotas is None and fallback is None:
        return None, None
    fallback_plan = None if fallback is None else str(fallback).strip()
    no_fallback = fallback_plan in ("", "none")
    try:
        plans = parse_plans(
            SEED_PLANS if quotas is None else quotas,
            None if no_fallback else (fallback_plan or "default"),
        )
    except ValueError as exc:
        raise ValueError(f"{PREFIX}default_quotas / fallback_plan: {exc}") from None
    text = plans.to_json()
    if len(text) > 3000:  # Lambda: 4 KB for all of a function's environment variables
        raise ValueError(f"{PREFIX}default_quotas: {len(text)} characters; at most 3000")
    return (
        None if quotas is None else text,
        None if fallback_plan is None else ("" if no_fallback else fallback_plan),
    )


def _asset_target(value: Any) -> str:
    text = str(value).strip().lower()
    if text not in ("lambda", "host"):
        raise ValueError(f"{PREFIX}asset_target must be lambda or host, not {value!r}")
    return text


def _layer(value: Any) -> str | None:
    text = str(value or "").strip()
    if not text or text.lower() == "none":
        return None
    if not text.startswith("arn:") or ":layer:" not in text:
        raise ValueError(f"{PREFIX}otel_collector_layer_arn must be a Lambda layer ARN: {text!r}")
    return text


def _rate(value: Any) -> float:
    rate = float(value)
    if not 0 <= rate <= 1:
        raise ValueError(f"{PREFIX}log_sample_rate must be between 0 and 1, not {value!r}")
    return rate


def _positive_int(name: str, value: Any) -> int:
    number = int(value)
    if number <= 0:
        raise ValueError(f"{PREFIX}{name} must be a positive integer, not {value!r}")
    return number


def _default_minutes(schedule: Schedule) -> int:
    if schedule.rate_minutes is None:
        raise ValueError(f"{schedule.function.name}: a cron, not a rate")
    return schedule.rate_minutes


@dataclass(frozen=True)
class Config:
    stack_name: str = "costguard"
    bundle: bool = True
    """Vendor the runtime dependencies into each Lambda asset (needs PyPI). False: sources only,
    for tests and quick template checks; such an asset does not run."""
    asset_target: str = "lambda"
    """`lambda`: wheels for arm64 Lambda. `host`: the same pinned packages for this machine, so
    the deploy rehearsal can run the synthesized assets here (never deploy those)."""
    table_name: str | None = None
    """None: CloudFormation names the table (two stacks can live in one account)."""
    log_level: str = "INFO"
    log_retention_days: int = 30
    """A key of RETENTION."""
    throttle_burst: int = 1000
    throttle_rate: int = 500
    cors_origins: tuple[str, ...] = ()
    """Empty: no CORS (the API is called server-to-server)."""
    sweep_rate_minutes: int = _default_minutes(SWEEP)
    anomaly_rate_minutes: int = _default_minutes(ANOMALY_SCHEDULE)
    forecast_rate_minutes: int = _default_minutes(FORECAST_SCHEDULE)
    """The rates of the topology's schedules (costguard/topology.py): their defaults."""
    held_sweep_minutes: int = HELD_SWEEP
    """How often the sweeper walks the counters with in-item holds (topology's HELD_SWEEP)."""
    alert_emails: tuple[str, ...] = ()
    """E-mail subscriptions to the quota alerts topic (threshold, anomaly, forecast alerts)."""
    alarm_emails: tuple[str, ...] = ()
    """E-mail subscriptions to the operations alarms topic (5xx, errors, queues, stream lag)."""
    slack_webhook_secret_name: str | None = None
    """Secrets Manager secret holding a Slack incoming-webhook URL: set → the Slack notifier."""
    api_5xx_alarm_threshold: int = 5
    """5xx answers in 5 minutes that raise the alarm."""
    enforcement: Enforcement | None = None
    """None: the code's default (enforce). Passed as COSTGUARD_ENFORCEMENT."""
    fail_mode: FailMode | None = None
    reservation_ttl_seconds: int | None = None
    otel_collector_layer_arn: str | None = None
    """An ADOT collector Lambda layer (arm64) ARN: set → every function exports its
    OpenTelemetry spans over OTLP to it (and on to X-Ray). None: X-Ray active tracing only."""
    log_sample_rate: float = 0.05
    """Share of invocations that log at DEBUG whatever the level (POWERTOOLS_LOGGER_SAMPLE_RATE)."""
    event_bus_name: str | None = None
    """An existing EventBridge bus to use (e.g. the platform's, or "default"); None: the stack
    creates one."""
    event_source: str = SOURCE
    """The `source` of costguard's own events (TenantCreated from the API, alerts)."""
    tenant_created_sources: tuple[str, ...] = ()
    """Further sources whose TenantCreated events onboard a tenant (the operator's platform)."""
    default_quotas: str | None = None
    """Plans → default tenant quotas, compact JSON; None: the seeds (costguard.onboarding)."""
    fallback_plan: str | None = None
    """The plan of an event whose plan is missing or unknown; "" for none (refused); None:
    the code's default (`default`)."""

    @classmethod
    def from_context(cls, get: Any) -> Self:
        """`get` is `node.try_get_context`: returns None for an unset key."""

        def value(name: str, default: Any) -> Any:
            found = get(PREFIX + name)
            return default if found is None else found

        defaults = cls()
        enforcement = value("enforcement", None)
        fail_mode = value("fail_mode", None)
        ttl = value("reservation_ttl_seconds", None)
        log_level = str(value("log_level", defaults.log_level)).upper()
        if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError(f"{PREFIX}log_level: unknown level {log_level!r}")
        default_quotas, fallback_plan = _plans(
            value("default_quotas", None), value("fallback_plan", None)
        )
        retention = int(value("log_retention_days", defaults.log_retention_days))
        if retention not in RETENTION:
            raise ValueError(f"{PREFIX}log_retention_days must be one of {sorted(RETENTION)}")
        return cls(
            stack_name=str(value("stack_name", defaults.stack_name)),
            bundle=_flag(value("bundle", defaults.bundle)),
            asset_target=_asset_target(value("asset_target", defaults.asset_target)),
            table_name=value("table_name", None) or None,
            log_level=log_level,
            log_retention_days=retention,
            throttle_burst=_positive_int(
                "throttle_burst", value("throttle_burst", defaults.throttle_burst)
            ),
            throttle_rate=_positive_int(
                "throttle_rate", value("throttle_rate", defaults.throttle_rate)
            ),
            cors_origins=_list(value("cors_origins", None)),
            sweep_rate_minutes=_positive_int(
                "sweep_rate_minutes", value("sweep_rate_minutes", defaults.sweep_rate_minutes)
            ),
            held_sweep_minutes=_positive_int(
                "held_sweep_minutes", value("held_sweep_minutes", defaults.held_sweep_minutes)
            ),
            anomaly_rate_minutes=_positive_int(
                "anomaly_rate_minutes",
                value("anomaly_rate_minutes", defaults.anomaly_rate_minutes),
            ),
            forecast_rate_minutes=_positive_int(
                "forecast_rate_minutes",
                value("forecast_rate_minutes", defaults.forecast_rate_minutes),
            ),
            alert_emails=_list(value("alert_emails", None)),
            alarm_emails=_list(value("alarm_emails", None)),
            slack_webhook_secret_name=value("slack_webhook_secret_name", None) or None,
            api_5xx_alarm_threshold=_positive_int(
                "api_5xx_alarm_threshold",
                value("api_5xx_alarm_threshold", defaults.api_5xx_alarm_threshold),
            ),
            enforcement=Enforcement(enforcement) if enforcement is not None else None,
            fail_mode=FailMode(fail_mode) if fail_mode is not None else None,
            reservation_ttl_seconds=(
                _positive_int("reservation_ttl_seconds", ttl) if ttl is not None else None
            ),
            otel_collector_layer_arn=_layer(value("otel_collector_layer_arn", None)),
            log_sample_rate=_rate(value("log_sample_rate", defaults.log_sample_rate)),
            event_bus_name=str(value("event_bus_name", "")).strip() or None,
            event_source=_source("event_source", value("event_source", defaults.event_source)),
            tenant_created_sources=tuple(
                _source("tenant_created_sources", s)
                for s in _list(value("tenant_created_sources", None))
            ),
            default_quotas=default_quotas,
            fallback_plan=fallback_plan,
        )

    @property
    def retention(self) -> logs.RetentionDays:
        return RETENTION[self.log_retention_days]

    def settings_environment(self) -> dict[str, str]:
        """COSTGUARD_* variables for every function: only what the deployer chose."""
        env: dict[str, str] = {}
        if self.enforcement is not None:
            env["COSTGUARD_ENFORCEMENT"] = self.enforcement.value
        if self.fail_mode is not None:
            env["COSTGUARD_FAIL_MODE"] = self.fail_mode.value
        if self.reservation_ttl_seconds is not None:
            env["COSTGUARD_RESERVATION_TTL_SECONDS"] = str(self.reservation_ttl_seconds)
        if self.otel_collector_layer_arn is not None:
            env["COSTGUARD_TRACES"] = "otlp"  # to the collector extension on localhost:4318
        return env

    def rate_minutes(self, schedule: Schedule) -> int:
        """A rate schedule's minutes in this deployment: its context key, else its default."""
        if schedule.context_key is None:
            raise ValueError(f"{schedule.function.name}: a cron, not a rate")
        return int(getattr(self, schedule.context_key))

    def onboarding_environment(self) -> dict[str, str]:
        """The plans, for whatever seeds default quotas (onboarding, and the API's fallback)."""
        env: dict[str, str] = {}
        if self.default_quotas is not None:
            env["COSTGUARD_DEFAULT_QUOTAS"] = self.default_quotas
        if self.fallback_plan is not None:
            env["COSTGUARD_FALLBACK_PLAN"] = self.fallback_plan
        return env

    @property
    def tenant_created_pattern_sources(self) -> list[str]:
        """The sources the TenantCreated rule matches: costguard's own, then the others."""
        return list(dict.fromkeys((self.event_source, *self.tenant_created_sources)))
