"""The `costguard` CLI (click's test runner) against the real runner: tables for people,
`--json` for scripts, refusals as one clean line and exit code 1."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from click.testing import CliRunner, Result
from costguard_client import CostGuard, CostGuardError, TenantPaused
from costguard_client._commands import cli

from tests.client.conftest import TenantKey, new_tenant
from tests.e2e.conftest import ADMIN, Server

Run = Callable[..., Result]


@pytest.fixture
def run(server: Server) -> Run:
    """`costguard ARGS` with the URL and admin key from the environment, as an operator has."""

    def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
        return CliRunner().invoke(
            cli,
            list(args),
            env={"COSTGUARD_URL": server.url, "COSTGUARD_API_KEY": ADMIN, **(env or {})},
            catch_exceptions=False,
        )

    return invoke


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output + result.stderr
    return result.stdout


def as_json(result: Result) -> Any:
    return json.loads(ok(result))


def test_tenants_create_prints_the_tenant_and_json_for_scripts(run: Run) -> None:
    tenant_id = f"t-{uuid.uuid4().hex[:10]}"

    out = ok(run("tenants", "create", "--id", tenant_id, "--name", "Acme Inc", "--plan", "pro"))
    assert out.splitlines()[:3] == [
        f"tenant_id   {tenant_id}",
        "name        Acme Inc",
        "plan        pro",
    ]

    body = as_json(run("--json", "tenants", "create", "--name", "Generated"))
    assert body["name"] == "Generated" and body["tenant_id"].startswith("t-")


def test_quotas_set_list_delete(run: Run, admin: CostGuard) -> None:
    tenant = new_tenant(admin, "10")

    out = ok(
        run(
            "quotas",
            "set",
            tenant.tenant_id,
            "user:u-42:all:day",
            "--limit",
            "2.50",
            "--mode",
            "soft",
            "--thresholds",
            "50,100",
        )
    )
    assert "user:u-42:all:day  soft   2.50" in out

    table = ok(run("quotas", "list", tenant.tenant_id)).splitlines()
    assert table[0].split() == [
        "QUOTA",
        "MODE",
        "LIMIT",
        "SPENT",
        "RESERVED",
        "REMAINING",
        "USED",
        "RESETS",
    ]
    rows = {line.split()[0]: line.split()[1:7] for line in table[1:]}
    mine = {"tenant:llm:month", "user:u-42:all:day"}
    assert {k: v for k, v in rows.items() if k in mine} == {
        "tenant:llm:month": ["hard", "10.00", "0.00", "0.00", "10.00", "0.0%"],
        "user:u-42:all:day": ["soft", "2.50", "0.00", "0.00", "2.50", "0.0%"],
    }

    listed = as_json(run("quotas", "list", tenant.tenant_id, "--json"))
    assert {
        q["quota_id"]: (q["limit_usd"], q["thresholds"])
        for q in listed["quotas"]
        if q["quota_id"] in mine
    } == {
        "tenant:llm:month": ("10.000000", [50, 80, 90, 100]),
        "user:u-42:all:day": ("2.500000", [50, 100]),
    }

    assert ok(run("quotas", "delete", tenant.tenant_id, "user:u-42:all:day")) == (
        f"deleted user:u-42:all:day of {tenant.tenant_id}\n"
    )
    left = {q.quota_id for q in admin.quotas(tenant.tenant_id).quotas}
    assert "tenant:llm:month" in left and "user:u-42:all:day" not in left


def test_platform_quotas_need_no_tenant(run: Run, admin: CostGuard) -> None:
    quota_id = "platform:sandbox:week"
    try:
        body = as_json(run("quotas", "set", "--platform", quota_id, "--limit", "100000", "--json"))
        assert (body["quota_id"], body["scope"], body["limit_usd"]) == (
            quota_id,
            "platform",
            "100000.000000",
        )
        assert quota_id in ok(run("quotas", "list", "--platform"))
    finally:
        ok(run("quotas", "delete", "--platform", quota_id))
    assert quota_id not in {q.quota_id for q in admin.platform_quotas().quotas}

    wrong = run("quotas", "list")
    assert wrong.exit_code == 2 and "expected TENANT" in wrong.stderr


def test_pause_and_unpause_a_tenant(run: Run, server: Server, tenant: TenantKey) -> None:
    assert ok(run("pause", tenant.tenant_id)) == f"{tenant.tenant_id}: paused\n"
    with (
        CostGuard(server.url, tenant.api_key) as guard,
        pytest.raises(TenantPaused),
        guard.reserve(tenant.tenant_id, estimated_cost_usd="0.01"),
    ):
        pass

    assert as_json(run("unpause", tenant.tenant_id, "--json")) == {
        "tenant_id": tenant.tenant_id,
        "user_id": None,
        "paused": False,
    }
    with (
        CostGuard(server.url, tenant.api_key) as guard,
        guard.reserve(tenant.tenant_id, estimated_cost_usd="0.01") as hold,
    ):
        assert hold.state == "held"
    assert ok(run("pause", tenant.tenant_id, "--user", "u-7")) == (
        f"user u-7 of {tenant.tenant_id}: paused\n"
    )


def test_usage_grouped_by_model(run: Run, server: Server, tenant: TenantKey) -> None:
    # Given $0.035 on gpt-4o and $0.0018 on gpt-4o-mini (1,000 in at 0.15 + 2,750 out at 0.60)
    with CostGuard(server.url, tenant.api_key) as guard:
        for model, tokens in (("gpt-4o", (10_000, 1_000)), ("gpt-4o-mini", (1_000, 2_750))):
            with guard.reserve(
                tenant.tenant_id, model=model, input_tokens=tokens[0], max_output_tokens=tokens[1]
            ) as hold:
                hold.commit(input_tokens=tokens[0], output_tokens=tokens[1])

    out = ok(run("usage", tenant.tenant_id, "--group-by", "model"))
    head, table = out.split("\n\n")
    assert "total_usd  0.0368" in head and "calls      2" in head
    assert [line.split() for line in table.splitlines()] == [
        ["MODEL", "COST", "SHARE"],
        ["openai/gpt-4o", "0.035", "95.1%"],
        ["openai/gpt-4o-mini", "0.0018", "4.9%"],
    ]

    body = as_json(run("usage", tenant.tenant_id, "--group-by", "model", "--json"))
    assert body["total_usd"] == "0.036800"
    assert body["groups"] == [
        {"key": "openai/gpt-4o", "cost_usd": "0.035000"},
        {"key": "openai/gpt-4o-mini", "cost_usd": "0.001800"},
    ]


def test_keys_issue_and_revoke(run: Run, server: Server, admin: CostGuard) -> None:
    tenant = new_tenant(admin)

    issued = as_json(run("keys", "issue", tenant.tenant_id, "--json"))
    assert (issued["role"], issued["tenant_id"]) == ("tenant", tenant.tenant_id)
    human = ok(run("keys", "issue", tenant.tenant_id))
    assert "shown once" in human

    assert ok(run("keys", "revoke", tenant.tenant_id, issued["key_id"])) == (
        f"revoked {issued['key_id']} of {tenant.tenant_id}\n"
    )
    with (
        CostGuard(server.url, issued["api_key"]) as revoked,
        pytest.raises(CostGuardError) as refused,
    ):
        revoked.quotas(tenant.tenant_id)
    assert refused.value.status == 401


def test_alerts_are_listed(run: Run, tenant: TenantKey) -> None:
    body = as_json(run("alerts", tenant.tenant_id, "--json", "--type", "threshold"))
    assert set(body) == {"alerts", "next_cursor"}
    assert all(a["tenant_id"] == tenant.tenant_id for a in body["alerts"])
    out = ok(run("alerts", tenant.tenant_id))
    assert out == "(none)\n" or out.startswith("CREATED")


def test_forecast_prints_what_the_api_answers_or_its_refusal(
    run: Run, admin: CostGuard, tenant: TenantKey
) -> None:
    result = run("forecast", tenant.tenant_id, "--json")
    if "/v1/tenants/{tenant_id}/forecast" in admin.openapi()["paths"]:
        assert result.exit_code == 0 and isinstance(json.loads(result.stdout), dict)
    else:
        # Not served yet: the refusal is one line and the problem, never a traceback.
        assert result.exit_code == 1
        problem = json.loads(result.stdout)
        assert problem["status"] in (403, 404)
        assert result.stderr.startswith(f"costguard: {problem['status']} ")
        assert "Traceback" not in result.output


def test_a_refusal_is_one_clean_line_naming_the_field(run: Run, tenant: TenantKey) -> None:
    result = run("quotas", "set", tenant.tenant_id, "tenant:gpu:month", "--limit", "5")

    assert (result.exit_code, result.stdout) == (1, "")
    first, *params = result.stderr.splitlines()
    assert first.startswith("costguard: 422 Invalid request: ")
    assert params[0].startswith("  quota_id: ")


def test_url_and_key_come_from_flags_before_the_environment(run: Run, server: Server) -> None:
    bad_env = {"COSTGUARD_URL": "http://127.0.0.1:9", "COSTGUARD_API_KEY": "cg-wrong"}

    flags = run(
        "--url", server.url, "--api-key", ADMIN, "quotas", "list", "--platform", env=bad_env
    )
    assert flags.exit_code == 0

    wrong_key = run("--url", server.url, "quotas", "list", "--platform", env=bad_env)
    assert wrong_key.exit_code == 1 and "401 Unauthenticated" in wrong_key.stderr

    missing = CliRunner().invoke(
        cli, ["quotas", "list", "--platform"], env={"COSTGUARD_URL": "", "COSTGUARD_API_KEY": ""}
    )
    assert missing.exit_code == 2 and "COSTGUARD_URL" in missing.stderr


def test_the_console_script_runs() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "costguard_client", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.strip() == "costguard, version 0.1.0"


def test_money_is_shown_exactly() -> None:
    from costguard_client._commands import _usd

    assert [_usd(Decimal(v)) for v in ("12.500000", "0.035000", "0.000003", "0E-6", "100")] == [
        "12.50",
        "0.035",
        "0.000003",
        "0.00",
        "100.00",
    ]


def test_recommendations_show_the_saving_per_month_and_the_action(
    run: Run, admin: CostGuard, tenant: TenantKey
) -> None:
    # Given three gpu sandbox sessions of an hour today ($0.0008 a second, 1,800 s past the
    # timeout each): 3 × 1,800 × 0.0008 = $4.32 in the one day observed, × 30 a month
    from costguard_client.models import RecordRequest

    for _ in range(3):
        body = RecordRequest(resource="sandbox", tier="gpu", seconds=Decimal(3600))
        admin.record_usage(tenant.tenant_id, body)
    # When the operator asks for the tenant's recommendations
    advice = as_json(run("recommendations", tenant.tenant_id, "--json"))
    # Then the saving per month, as a decimal string, and the table with the action
    assert advice["monthly_savings_usd"] == "129.600000"
    [rec] = advice["recommendations"]
    assert (rec["recommendation_id"], rec["confidence"]) == ("sandbox_time:gpu", "low")
    out = ok(run("recommendations", tenant.tenant_id, "--days", "7"))
    assert out.splitlines()[0] == f"{tenant.tenant_id}: $129.60/month to save, 3 records over 1 day"
    assert "sandbox_time  low" in out and "- sandbox_time:gpu: Set an idle timeout" in out
    refused = run("recommendations", tenant.tenant_id, "--days", "3")
    assert refused.exit_code == 2  # click refuses it before any call


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["quotas", "set", "T", "tenant:llm:month", "--limit", "abc"], "limit_usd: not a decimal"),
        (
            ["quotas", "set", "T", "tenant:llm:month", "--limit", "NaN"],
            "limit_usd: must be a finite",
        ),
        (["quotas", "set", "T", "tenant:llm:month", "--limit", "5", "--grace-pct", "x"], "grace"),
        (["quotas", "set", "T", "tenant:llm:month", "--limit", "5", "--thresholds", "a"], "thre"),
        (["quotas", "set", "T", "tenant:llm:month"], "--limit"),
        (["settings", "set", "T"], "nothing to set"),
        (["settings", "set", "T", "--overrun", "maybe"], "--overrun"),
        (["--timeout", "soon", "quotas", "list", "T"], "--timeout"),
    ],
    ids=["limit-abc", "limit-nan", "grace", "thresholds", "no-limit", "no-setting", "choice", "t"],
)
def test_bad_input_is_one_line_and_a_non_zero_exit_never_a_traceback(
    run: Run, args: list[str], says: str
) -> None:
    result = run(*args)  # catch_exceptions=False: a traceback would fail the test here

    assert result.exit_code in (1, 2)
    assert result.stdout == ""
    assert says in result.stderr
    assert "Traceback" not in result.stderr
    if result.exit_code == 1:  # refused by the client: exactly one line
        assert len(result.stderr.splitlines()) == 1, result.stderr


def test_an_unreachable_server_is_one_line_without_the_retry_chatter(run: Run) -> None:
    result = run("--url", "http://127.0.0.1:9", "--timeout", "0.5", "quotas", "list", "T")

    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "costguard: Unreachable: ConnectError: [Errno 111] Connection refused"
    ]
