"""Issue 10 in the template: business metrics on the dashboard, alarms by failure stage,
debug log sampling, and OpenTelemetry export through an ADOT collector layer when configured."""

from __future__ import annotations

import json

import pytest

from tests.infra.conftest import Synth, synthesize

LAYER = "arn:aws:lambda:us-east-1:901920570463:layer:aws-otel-collector-arm64-ver-0-117-0:1"


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synthesize(
        tmp_path_factory.mktemp("traced"),
        **{"costguard:otel_collector_layer_arn": LAYER, "costguard:log_sample_rate": "0.2"},
    )


def test_the_dashboard_shows_spend_per_hour_denials_failures_and_write_latency(
    synth: Synth,
) -> None:
    [dashboard] = synth.resources("AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for needle in (
        '\\"SpendUsd\\"',
        "3600",  # spend summed per hour
        'MetricName=\\\\\\"Denials\\\\\\"',
        'MetricName=\\\\\\"Failures\\\\\\"',
        '\\"LedgerMs.TransactWriteItems\\"',
    ):
        assert needle in body, needle


def test_failures_of_the_ledger_and_of_unknown_stage_raise_alarms(synth: Synth) -> None:
    alarms = [
        a["Properties"]
        for a in synth.resources("AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == "Failures"
    ]
    by_stage = {
        {d["Name"]: d["Value"] for d in a["Dimensions"]}["stage"]: a["Threshold"] for a in alarms
    }
    assert by_stage == {"ledger_write": 5, "unknown": 1}
    assert all(a["Namespace"] == "costguard" for a in alarms)


def test_without_a_collector_layer_functions_trace_with_x_ray_only(synth: Synth) -> None:
    for fn in synth.resources("AWS::Lambda::Function").values():
        props = fn["Properties"]
        assert "Layers" not in props
        assert "COSTGUARD_TRACES" not in props["Environment"]["Variables"]
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert props["Environment"]["Variables"]["POWERTOOLS_LOGGER_SAMPLE_RATE"] == "0.05"


def test_with_a_collector_layer_every_function_exports_otlp_to_it(traced: Synth) -> None:
    functions = list(traced.resources("AWS::Lambda::Function").values())
    assert functions
    for fn in functions:
        props = fn["Properties"]
        assert props["Layers"] == [LAYER]
        env = props["Environment"]["Variables"]
        assert env["COSTGUARD_TRACES"] == "otlp"
        assert env["POWERTOOLS_LOGGER_SAMPLE_RATE"] == "0.2"


@pytest.mark.parametrize(
    ("key", "value"),
    [("otel_collector_layer_arn", "not-an-arn"), ("log_sample_rate", "1.5")],
)
def test_bad_observability_context_fails_the_synth(key: str, value: str) -> None:
    from infra.config import Config

    with pytest.raises(ValueError, match=key):
        Config.from_context(lambda name: value if name == f"costguard:{key}" else None)
