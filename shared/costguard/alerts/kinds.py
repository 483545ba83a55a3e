"""What an alert is: its types and severities."""

from __future__ import annotations

from enum import StrEnum

from costguard.store.keys import (
    ALERT_RECORD_PREFIX,
)

RECORD_PREFIX = ALERT_RECORD_PREFIX


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return ("info", "warning", "critical").index(self.value)


class AlertType(StrEnum):
    THRESHOLD = "threshold"
    ANOMALY = "anomaly"
    FORECAST = "forecast"
    OVERRUN = "overrun"
    RECOMMENDATION = "recommendation"
    """The weekly digest of a tenant's recommendations (costguard.recommendations)."""

    @property
    def event(self) -> str:
        """The detail-type on EventBridge and the `event` of the SNS message."""
        return {
            "threshold": "QuotaThresholdCrossed",
            "anomaly": "CostAnomalyDetected",
            "forecast": "QuotaBreachForecast",
            "overrun": "SpendOverrun",
            "recommendation": "RecommendationsDigest",
        }[self.value]


def threshold_severity(threshold_pct: int) -> Severity:
    """100 % and above is critical (a hard quota now refuses), 80 % and above a warning."""
    if threshold_pct >= 100:
        return Severity.CRITICAL
    if threshold_pct >= 80:
        return Severity.WARNING
    return Severity.INFO
