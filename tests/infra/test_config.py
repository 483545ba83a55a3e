"""Context keys: each one reaches the template; a bad value fails the synth, not the deploy."""

from __future__ import annotations

from typing import Any

import pytest

from infra.config import Config
from tests.infra.conftest import Synth


def config(**context: Any) -> Config:
    return Config.from_context(lambda key: context.get(key.removeprefix("costguard:")))


def test_defaults() -> None:
    c = config()
    assert (c.stack_name, c.bundle, c.table_name, c.log_level) == ("costguard", True, None, "INFO")
    assert (c.throttle_burst, c.throttle_rate, c.cors_origins) == (1000, 500, ())
    assert (c.sweep_rate_minutes, c.log_retention_days, c.alert_emails) == (1, 30, ())
    assert c.settings_environment() == {}
    assert c.held_sweep_minutes == 1


def test_the_held_sweep_cadence_is_read() -> None:
    assert config(held_sweep_minutes="10").held_sweep_minutes == 10


@pytest.mark.parametrize(
    "context",
    [
        {"throttle_rate": 0},
        {"throttle_burst": "-5"},
        {"sweep_rate_minutes": "soon"},
        {"held_sweep_minutes": 0},
        {"log_retention_days": 31},
        {"log_level": "LOUD"},
        {"enforcement": "sometimes"},
        {"fail_mode": "ajar"},
        {"bundle": "maybe"},
    ],
)
def test_bad_values_are_refused(context: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        config(**context)


def test_cli_strings_are_read_like_json_values() -> None:
    c = config(bundle="false", cors_origins="https://a.example, https://b.example", alert_emails="")
    assert c.bundle is False
    assert c.cors_origins == ("https://a.example", "https://b.example")
    assert c.alert_emails == ()


def test_every_key_reaches_the_template(configured: Synth) -> None:
    t = configured.json["Resources"]
    assert configured.stack.stack_name == "costguard-staging"

    [table] = [r for r in t.values() if r["Type"] == "AWS::DynamoDB::GlobalTable"]
    assert table["Properties"]["TableName"] == "costguard-ledger-staging"

    [api] = [r for r in t.values() if r["Type"] == "AWS::ApiGatewayV2::Api"]
    assert api["Properties"]["Name"] == "costguard-staging-api"
    cors = api["Properties"]["CorsConfiguration"]
    assert cors["AllowOrigins"] == ["https://app.example.com", "https://admin.example.com"]
    assert "authorization" in cors["AllowHeaders"]
    assert "idempotency-key" in cors["AllowHeaders"]

    [stage] = [r for r in t.values() if r["Type"] == "AWS::ApiGatewayV2::Stage"]
    assert stage["Properties"]["DefaultRouteSettings"] == {
        "ThrottlingBurstLimit": 50,
        "ThrottlingRateLimit": 20,
    }

    [rule] = [
        r
        for r in t.values()
        if r["Type"] == "AWS::Events::Rule"
        and r["Properties"].get("Description") == "costguard: return expired holds"
    ]
    assert rule["Properties"]["ScheduleExpression"] == "rate(5 minutes)"

    [subscription] = [r for r in t.values() if r["Type"] == "AWS::SNS::Subscription"]
    assert subscription["Properties"]["Protocol"] == "email"
    assert subscription["Properties"]["Endpoint"] == "ops@example.com"

    [api_5xx] = [
        r
        for r in t.values()
        if r["Type"] == "AWS::CloudWatch::Alarm" and r["Properties"]["MetricName"] == "5xx"
    ]
    assert api_5xx["Properties"]["Threshold"] == 2

    log_groups = [r for r in t.values() if r["Type"] == "AWS::Logs::LogGroup"]
    assert {g["Properties"]["RetentionInDays"] for g in log_groups} == {90}

    functions = [r for r in t.values() if r["Type"] == "AWS::Lambda::Function"]
    for fn in functions:
        env = fn["Properties"]["Environment"]["Variables"]
        assert env["POWERTOOLS_LOG_LEVEL"] == "DEBUG"
        assert env["COSTGUARD_ENFORCEMENT"] == "monitor"
        assert env["COSTGUARD_FAIL_MODE"] == "open"
        assert env["COSTGUARD_RESERVATION_TTL_SECONDS"] == "600"
    [dashboard] = [r for r in t.values() if r["Type"] == "AWS::CloudWatch::Dashboard"]
    assert dashboard["Properties"]["DashboardName"] == {
        "Fn::Join": ["-", ["costguard-staging", {"Ref": "AWS::Region"}]]
    }
