"""`make smoke URL=… KEY=…`: the post-deploy check, against a deployment (or `make run`).

With the admin key it creates a throwaway tenant `smoke-<time>` with a $1.00 daily quota,
issues the tenant a key, and with that key reserves $0.60 and commits it, asks for $0.50 more
(refused: 429 problem+json with Retry-After, the quota's own refusal), then waits for the 50 %
threshold alert to be recorded and delivered (the ledger stream, the alerts function, SNS and
EventBridge). At the end the tenant's key is revoked; the tenant stays, with its $0.60.

Standard library only (it runs from any checkout); the admin key comes from the environment
(COSTGUARD_SMOKE_KEY), not the command line, so it stays out of process lists.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

LIMIT_USD = "1.00"
FIRST_USD = "0.60"
SECOND_USD = "0.50"


class SmokeFailed(AssertionError):
    """A check of the smoke test did not hold."""


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any


def call(base: str, method: str, path: str, key: str | None, body: Any = None) -> Answer:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(  # noqa: S310 - the operator's own API URL
        base.rstrip("/") + path, data=data, method=method
    )
    request.add_header("accept", "application/json")
    if data is not None:
        request.add_header("content-type", "application/json")
    if key:
        request.add_header("authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            status, headers, raw = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        status, headers, raw = error.code, dict(error.headers), error.read()
    text = raw.decode() if raw else ""
    try:
        parsed: Any = json.loads(text) if text else None
    except ValueError:
        parsed = text
    return Answer(status, {k.lower(): v for k, v in headers.items()}, parsed)


def expect(answer: Answer, status: int, what: str) -> Any:
    if answer.status != status:
        raise SmokeFailed(f"{what}: expected {status}, got {answer.status}: {answer.body}")
    return answer.body


def run(
    base: str,
    admin_key: str,
    log: Callable[[str], None] = print,
    alert_timeout: float = 120.0,
) -> dict[str, Any]:
    """Every check in order; raises SmokeFailed at the first that does not hold."""
    health = expect(call(base, "GET", "/v1/health", None), 200, "GET /v1/health")
    log(f"ok   health: {health}")
    tenant = f"smoke-{int(time.time())}-{os.getpid() % 1000}"
    expect(
        call(base, "POST", "/v1/tenants", admin_key, {"tenant_id": tenant, "name": "smoke test"}),
        201,
        "create tenant",
    )
    log(f"ok   tenant {tenant} created")
    quota = f"/v1/tenants/{tenant}/quotas/tenant:all:day"
    expect(
        call(
            base,
            "PUT",
            quota,
            admin_key,
            {"limit_usd": LIMIT_USD, "mode": "hard", "thresholds": [50, 80, 90, 100]},
        ),
        200,
        "PUT quota",
    )
    issued = expect(
        call(base, "POST", f"/v1/tenants/{tenant}/api-keys", admin_key), 201, "issue a key"
    )
    key = str(issued["api_key"])
    log(f"ok   quota tenant:all:day ${LIMIT_USD}, tenant key {issued['key_id']} issued")
    try:
        reservations = f"/v1/tenants/{tenant}/reservations"
        held = expect(
            call(
                base,
                "POST",
                reservations,
                key,
                {"resource": "llm", "estimated_cost_usd": FIRST_USD},
            ),
            201,
            "reserve",
        )
        committed = expect(
            call(
                base,
                "POST",
                f"{reservations}/{held['reservation_id']}/commit",
                key,
                {"resource": "llm", "cost_usd": FIRST_USD},
            ),
            200,
            "commit",
        )
        log(f"ok   reserve → commit ${committed.get('cost_usd', FIRST_USD)}")
        refused = call(
            base, "POST", reservations, key, {"resource": "llm", "estimated_cost_usd": SECOND_USD}
        )
        problem = expect(refused, 429, "reserve over the quota")
        if not refused.headers.get("content-type", "").startswith("application/problem+json"):
            raise SmokeFailed(f"429 without problem+json: {refused.headers}")
        if "retry-after" not in refused.headers:
            raise SmokeFailed(f"429 without Retry-After: {refused.headers}")
        if problem.get("quota_id") != "tenant:all:day":
            raise SmokeFailed(f"429 is not the quota's refusal: {problem}")
        log(f"ok   429 problem+json, Retry-After {refused.headers['retry-after']} s")
        alert = wait_for_alert(base, tenant, key, alert_timeout)
        log(
            f"ok   alert {alert['alert_id']} ({alert.get('threshold_pct')} %) recorded, "
            f"delivery {alert.get('delivery')}"
        )
    finally:
        revoked = call(
            base, "DELETE", f"/v1/tenants/{tenant}/api-keys/{issued['key_id']}", admin_key
        )
        log(
            f"{'ok  ' if revoked.status in (200, 204) else 'warn'} tenant key revoked ({revoked.status})"
        )
    return {"tenant": tenant, "alert": alert, "retry_after": refused.headers["retry-after"]}


def wait_for_alert(base: str, tenant: str, key: str, timeout: float) -> dict[str, Any]:
    """The 50 % alert, recorded and delivered (the stream and the alerts function ran)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = expect(call(base, "GET", f"/v1/tenants/{tenant}/alerts", key), 200, "alerts")
        for alert in last.get("alerts", []) if isinstance(last, dict) else []:
            if alert.get("notify") and alert.get("delivery") == "sent":
                return dict(alert)
        time.sleep(1)
    raise SmokeFailed(f"no delivered alert within {timeout:.0f} s: {last}")


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not os.environ.get("COSTGUARD_SMOKE_KEY"):
        print(
            "usage: COSTGUARD_SMOKE_KEY=<admin key> python -m infra.smoke <ApiUrl>", file=sys.stderr
        )
        return 2
    try:
        run(argv[0], os.environ["COSTGUARD_SMOKE_KEY"])
    except (SmokeFailed, OSError) as failure:
        print(f"FAIL {failure}", file=sys.stderr)
        return 1
    print("smoke: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
