"""`make demo`: realistic traffic against a running `make run`, with a readable summary.

Needs the server's admin key: COSTGUARD_ADMIN_KEY (the one `make run` printed or was given).
"""

from __future__ import annotations

import json
import os
import random
import sys
import uuid
from typing import Any

import urllib3

URL = f"http://{os.environ.get('COSTGUARD_HOST', '127.0.0.1')}:{os.environ.get('COSTGUARD_PORT', '8080')}"
MODELS = [
    ("openai", "gpt-4o"),
    ("openai", "gpt-4o-mini"),
    ("anthropic", "claude-sonnet-4-5"),
    ("google", "gemini-2.5-flash"),
]
http = urllib3.PoolManager()


def call(
    method: str, path: str, key: str, body: Any = None, **headers: str
) -> tuple[int, dict[str, str], Any]:
    answer = http.request(
        method,
        URL + path,
        body=json.dumps(body) if body is not None else None,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json", **headers},
    )
    return answer.status, dict(answer.headers), json.loads(answer.data or b"null")


def main() -> int:
    admin = os.environ.get("COSTGUARD_ADMIN_KEY")
    if not admin:
        print("set COSTGUARD_ADMIN_KEY to the admin key `make run` printed", file=sys.stderr)
        return 2
    rng = random.Random(7)  # noqa: S311 - traffic shape, not secrets
    tenant = f"demo-{uuid.uuid4().hex[:6]}"
    call("POST", "/v1/tenants", admin, {"tenant_id": tenant, "name": "Demo Co", "plan": "pro"})
    for quota, limit in (
        ("tenant:llm:month", "2.00"),
        ("tenant:sandbox:month", "1.00"),
        ("tenant:all:month", "2.50"),
        ("user:alice:llm:day", "0.50"),
    ):
        call("PUT", f"/v1/tenants/{tenant}/quotas/{quota}", admin, {"limit_usd": limit})
    key = call("POST", f"/v1/tenants/{tenant}/api-keys", admin)[2]["api_key"]
    print(f"tenant {tenant}: quotas llm $2.00, sandbox $1.00, all $2.50 a month; alice $0.50 a day")

    status, _, first = call(
        "POST",
        f"/v1/tenants/{tenant}/reservations",
        key,
        {
            "resource": "llm",
            "provider": "openai",
            "model": "gpt-4o",
            "input_tokens": 2000,
            "output_tokens": 800,
            "user_id": "alice",
        },
    )
    print(f"\nreserve → {status}: hold {first['reserved_usd']} as {first['reservation_id'][:26]}…")
    for q in first["quotas"]:
        print(
            f"  {q['quota_id']:<22} limit {q['limit_usd']:>10}  reserved {q['reserved_usd']:>10}  "
            f"remaining {q['remaining_usd']:>10}"
        )
    status, _, record = call(
        "POST",
        f"/v1/tenants/{tenant}/reservations/{first['reservation_id']}/commit",
        key,
        {
            "resource": "llm",
            "provider": "openai",
            "model": "gpt-4o",
            "input_tokens": 2000,
            "output_tokens": 350,
        },
    )
    print(f"commit  → {status}: cost {record['cost_usd']} (estimate {record['estimated_usd']})")

    refused = None
    for i in range(200):
        provider, model = rng.choice(MODELS)
        user = rng.choice(["alice", "bob", "carol"])
        body: dict[str, Any]
        if i % 9 == 0:
            body = {
                "resource": "sandbox",
                "tier": "standard",
                "seconds": str(rng.randint(30, 600)),
                "user_id": user,
            }
        else:
            body = {
                "resource": "llm",
                "provider": provider,
                "model": model,
                "user_id": user,
                "input_tokens": rng.randint(500, 8000),
                "output_tokens": rng.randint(100, 2000),
            }
        status, headers, answer = call("POST", f"/v1/tenants/{tenant}/reservations", key, body)
        if status == 429:
            refused = refused or (headers, answer)
            continue
        if status != 201:
            print(f"unexpected {status}: {answer}", file=sys.stderr)
            return 1
        actual = dict(body)
        if body["resource"] == "llm":
            actual["output_tokens"] = int(body["output_tokens"] * rng.uniform(0.3, 1.0))
        call(
            "POST",
            f"/v1/tenants/{tenant}/reservations/{answer['reservation_id']}/commit",
            key,
            actual,
        )

    if refused:
        headers, p = refused
        print(
            f"\n429 → {p['quota_id']}: limit {p['limit_usd']}, spent {p['spent_usd']}, "
            f"reserved {p['reserved_usd']}, remaining {p['remaining_usd']}, asked "
            f"{p['requested_usd']}; Retry-After {headers.get('Retry-After')} s"
        )
    summary = call("GET", f"/v1/tenants/{tenant}/summary", key)[2]
    print(f"\nmonth to date {summary['month_to_date_usd']}, today {summary['today_usd']}")
    print("top models: " + ", ".join(f"{m['key']} {m['cost_usd']}" for m in summary["top_models"]))
    print("top users:  " + ", ".join(f"{u['key']} {u['cost_usd']}" for u in summary["top_users"]))
    call("POST", "/local/schedules/stream", key)  # deliver the stream now, not in a second
    alerts = call("GET", f"/v1/tenants/{tenant}/alerts", key)[2].get("alerts", [])
    print(f"\nalerts ({len(alerts)}, newest first; the runner printed each notification):")
    for alert in alerts[:8]:
        sent = "notified" if alert["notify"] else f"grouped into {alert['notified_in'][:10]}…"
        print(f"  [{alert['severity']:8}] {alert['title']} ({sent})")
    print("\nAPI docs: " + URL + "/v1/docs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
