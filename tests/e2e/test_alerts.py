"""Threshold alerts through `make run`: the stream, the alerts handler, the console, Slack, the API.

The runner reads its store's stream (DynamoDB Local's
Streams API) and hands it to the same alerts handler as in AWS; a Slack webhook on 127.0.0.1
records what the notifier posts.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.e2e.conftest import Server, start_runner, stop_runner


@pytest.fixture(scope="module")
def slack() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/services/T/B/X", received
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def alerting_runner(
    request: pytest.FixtureRequest, slack: tuple[str, list[dict[str, Any]]]
) -> Iterator[Server]:
    server = start_runner({"COSTGUARD_SLACK_WEBHOOK_URL": slack[0]})
    try:
        yield server
    finally:
        request.node.runner_output = stop_runner(server)


def test_crossing_80_percent_is_recorded_once_and_reaches_console_slack_and_the_api(
    runner: Server,
) -> None:
    tenant = f"alerts-{runner.url.rsplit(':', 1)[1]}"
    assert runner.call("POST", "/v1/tenants", {"tenant_id": tenant, "name": "A"})[0] == 201
    status, _, _ = runner.call(
        "PUT", f"/v1/tenants/{tenant}/quotas/tenant:sandbox:month", {"limit_usd": "1.00"}
    )
    assert status == 200
    for amount in ("0.45", "0.40"):  # 45 %, then 85 %: 50 and 80 crossed by one cost
        status, _, _ = runner.call(
            "POST",
            f"/v1/tenants/{tenant}/usage",
            {"resource": "sandbox", "cost_usd": amount},
        )
        assert status == 201

    alerts = wait_for_alerts(runner, tenant, lambda a: a["delivery"] in ("sent", "grouped"), 2)

    assert sorted(a["threshold_pct"] for a in alerts) == [50, 80]
    [leader] = [a for a in alerts if a["notify"]]
    assert leader["threshold_pct"] == 80
    assert leader["severity"] == "warning"
    assert leader["spent_usd"] == "0.850000"
    assert leader["grouped"] == [50, 80]
    # the event went to the deployment's bus as well
    status, _, bus = runner.call("GET", "/local/events")
    assert status == 200
    crossed = [
        e for e in bus["events"] if json.dumps(e).count(leader["alert_id"]) and "Quota" in str(e)
    ]
    assert crossed


def test_a_sliced_quota_spent_concurrently_alerts_each_threshold_once_on_the_whole(
    runner: Server,
) -> None:
    """Through `make run`'s stream filters and poller: the slices' records reach the alerts
    handler, which records 50, 80 and 100 % of the whole once each."""
    from concurrent.futures import ThreadPoolExecutor

    tenant = f"sliced-{runner.url.rsplit(':', 1)[1]}"
    assert runner.call("POST", "/v1/tenants", {"tenant_id": tenant, "name": "S"})[0] == 201
    status, _, _ = runner.call(
        "PUT",
        f"/v1/tenants/{tenant}/quotas/tenant:llm:month",
        {"limit_usd": "8", "slices": 8, "thresholds": [50, 80, 100]},
    )
    assert status == 200

    def use(_: int) -> int:
        return runner.call(
            "POST", f"/v1/tenants/{tenant}/usage", {"resource": "llm", "cost_usd": "0.10"}
        )[0]

    with ThreadPoolExecutor(8) as pool:  # 80 × $0.10 on random slices: exactly the limit
        assert set(pool.map(use, range(80))) == {201}

    alerts = wait_for_alerts(runner, tenant, lambda a: a["delivery"] in ("sent", "grouped"), 3)
    assert sorted(a["threshold_pct"] for a in alerts) == [50, 80, 100]
    assert {a["limit_usd"] for a in alerts} == {"8.000000"}
    assert all(Decimal(a["spent_usd"]) >= Decimal(8) * a["threshold_pct"] / 100 for a in alerts)
    assert runner.call("POST", "/local/schedules/stream")[0] == 200
    status, _, page = runner.call("GET", f"/v1/tenants/{tenant}/alerts")
    assert len(page["alerts"]) == 3


def test_the_slack_notifier_posts_each_notification_once(
    alerting_runner: Server, slack: tuple[str, list[dict[str, Any]]]
) -> None:
    _, received = slack
    runner = alerting_runner
    assert runner.call("POST", "/v1/tenants", {"tenant_id": "slacked", "name": "S"})[0] == 201
    runner.call("PUT", "/v1/tenants/slacked/quotas/tenant:llm:day", {"limit_usd": "2"})
    runner.call("POST", "/v1/tenants/slacked/usage", {"resource": "llm", "cost_usd": "2"})

    wait_for_alerts(runner, "slacked", lambda a: a["delivery"] in ("sent", "grouped"), 4)
    assert runner.call("POST", "/local/schedules/stream")[0] == 200  # nothing new to deliver

    posts = [p for p in received if "slacked" in p["text"]]
    assert len(posts) == 1
    assert posts[0]["text"] == "[critical] slacked: tenant:llm:day passed 100%"


def wait_for_alerts(
    runner: Server, tenant: str, done: Any, count: int, seconds: float = 30
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + seconds
    alerts: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        runner.call("POST", "/local/schedules/stream")
        status, _, page = runner.call("GET", f"/v1/tenants/{tenant}/alerts")
        assert status == 200, page
        alerts = page["alerts"]
        if len(alerts) >= count and all(done(a) for a in alerts):
            return alerts
        time.sleep(0.2)
    raise AssertionError(f"alerts did not settle: {alerts}")


def test_a_commit_beyond_its_hold_is_alerted_once_through_the_streams_filters(
    runner: Server,
) -> None:
    """The overrun alert comes from the reservation's record, which the stream's filters must
    deliver (they are the deployment's: costguard.topology.LEDGER_STREAM)."""
    tenant = f"overrun-{runner.url.rsplit(':', 1)[1]}"
    assert runner.call("POST", "/v1/tenants", {"tenant_id": tenant, "name": "O"})[0] == 201
    path = f"/v1/tenants/{tenant}/quotas/tenant:sandbox:month"
    assert runner.call("PUT", path, {"limit_usd": "100"})[0] == 200
    status, _, held = runner.call(
        "POST",
        f"/v1/tenants/{tenant}/reservations",
        {"resource": "sandbox", "estimated_cost_usd": "0.10"},
    )
    assert status == 201, held
    rid = held["reservation_id"]
    status, _, done = runner.call(
        "POST",
        f"/v1/tenants/{tenant}/reservations/{rid}/commit",
        {"resource": "sandbox", "cost_usd": "0.25"},
    )
    assert status == 200, done

    alerts = wait_for_alerts(runner, tenant, lambda a: a["alert_type"] == "overrun", 1)

    [overrun] = alerts
    assert overrun["title"].endswith("spent $0.150000 beyond its hold"), overrun
