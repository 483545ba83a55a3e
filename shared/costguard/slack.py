"""Alerts as Slack messages: a readable Block Kit payload and an incoming-webhook poster.

The poster retries what is worth retrying (Slack's 429 with its Retry-After, 5xx, connection
errors) a bounded number of times and then raises `SlackUnavailable`, so the invocation fails
and Lambda's own retries and dead-letter queue take over: an alert is never dropped silently.
A 4xx other than 429 (a revoked webhook, a malformed payload) is not retried: it raises
`SlackRefused` at once, which also ends in the dead-letter queue, with Slack's reason.
"""

from __future__ import annotations

import json
import random
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from costguard.errors import CostguardError, Problem, Stage

SEVERITY_ICON = {
    "info": ":information_source:",
    "warning": ":warning:",
    "critical": ":rotating_light:",
}


class SlackUnavailable(CostguardError):
    code = "slack_unavailable"
    problem = Problem(502, "slack-unavailable", "Slack unavailable", Stage.PUBLISH)


class SlackRefused(CostguardError):
    code = "slack_refused"
    problem = Problem(502, "slack-refused", "Slack refused", Stage.PUBLISH)


def utilization_bar(utilization: str | None, width: int = 20) -> str:
    """`█████████████████░░░ 85%` (capped at a full bar; the number says how far beyond)."""
    try:
        used = Decimal(utilization) if utilization is not None else None
    except InvalidOperation:
        used = None
    if used is None or not used.is_finite():
        return "█" * width + " over limit" if used is not None else "n/a"
    filled = max(0, min(width, int(used * width)))
    return "█" * filled + "░" * (width - filled) + f" {(used * 100).quantize(Decimal(1))}%"


def _when(text: str | None) -> str:
    if not text:
        return "—"
    at = datetime.fromisoformat(text)
    return f"{at:%Y-%m-%d %H:%M} UTC"


def message(alert: Mapping[str, Any]) -> dict[str, Any]:
    """The webhook payload: a header, the figures as fields, the bar, and a plain-text fallback."""
    severity = str(alert.get("severity", "info"))
    icon = SEVERITY_ICON.get(severity, "")
    tenant = alert.get("tenant_id") or "platform (all tenants)"
    fields = [
        f"*Tenant*\n{tenant}",
        f"*Quota*\n`{alert.get('quota_id') or '—'}`",
    ]
    if alert.get("spent_usd") is not None and alert.get("limit_usd") is not None:
        fields.append(f"*Spent / limit*\n${alert['spent_usd']} / ${alert['limit_usd']}")
    fields.append(f"*Severity*\n{severity}")
    if alert.get("resets_at"):
        fields.append(f"*Period resets*\n{_when(alert.get('resets_at'))}")
    if alert.get("grouped") and len(alert["grouped"]) > 1:
        fields.append("*Thresholds crossed*\n" + ", ".join(f"{t}%" for t in alert["grouped"]))
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": f"{alert.get('title', 'costguard alert')}"[:150],
            },
        },
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": f"{icon} {alert.get('message', '')}"},
        },
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]},
    ]
    if alert.get("alert_type") == "threshold":
        blocks.append(
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": f"`{utilization_bar(alert.get('utilization'))}`",
                },
            }
        )
    blocks.append(
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": f"{alert.get('event', '')} · alert {alert.get('alert_id', '')} · "
                    f"{_when(alert.get('created_at'))}",
                }
            ],
        }
    )
    return {"text": f"[{severity}] {alert.get('title', '')}", "blocks": blocks}


class SlackWebhook:
    """POST to one incoming webhook with bounded retries."""

    def __init__(
        self,
        url: str,
        *,
        attempts: int = 4,
        max_wait_seconds: float = 20,
        timeout_seconds: float = 5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = url
        self.attempts = attempts
        self.max_wait = max_wait_seconds
        self.timeout = timeout_seconds
        self.sleep = sleep

    def post(self, payload: Mapping[str, Any]) -> int:
        """Send; returns the number of attempts it took. Raises SlackUnavailable/SlackRefused."""
        body = json.dumps(payload).encode()
        reason = ""
        for attempt in range(1, self.attempts + 1):
            wait = min(self.max_wait, 0.5 * 2**attempt) * random.uniform(0.5, 1)  # noqa: S311
            request = urllib.request.Request(  # noqa: S310 — the operator's https webhook
                self.url, data=body, headers={"Content-Type": "application/json"}, method="POST"
            )
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as answer:  # noqa: S310
                    answer.read()
                    return attempt
            except urllib.error.HTTPError as exc:
                text = exc.read().decode(errors="replace")[:200]
                reason = f"HTTP {exc.code} {text}".strip()
                if exc.code == 429:
                    wait = _retry_after(exc.headers.get("Retry-After"), wait)
                elif exc.code < 500:
                    raise SlackRefused(f"Slack refused the message: {reason}") from exc
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                reason = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
            if attempt < self.attempts:
                if wait > self.max_wait:
                    break  # Slack asks for more patience than one invocation has
                self.sleep(wait)
        raise SlackUnavailable(f"Slack did not take the message after {attempt} attempts: {reason}")


def _retry_after(header: str | None, default: float) -> float:
    try:
        return max(0.0, float(header)) if header is not None else default
    except ValueError:
        return default
