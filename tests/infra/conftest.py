"""The CDK app synthesized in-process (no CLI, no credentials, no Docker, no network).

Each app is built once per session: starting jsii and synthesizing take seconds. Assets hold
the sources only (`costguard:bundle=false`); `make synth` vendors the real dependencies.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from infra.app import build_app
from infra.config import cdk_json_context
from infra.stack import CostguardStack


@dataclass
class Synth:
    app: Any
    stack: CostguardStack
    template: Any  # aws_cdk.assertions.Template
    json: Mapping[str, Any]
    path: Path
    outdir: Path

    def resources(self, kind: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.json["Resources"].items() if v["Type"] == kind}

    def one(self, kind: str) -> tuple[str, dict[str, Any]]:
        found = self.resources(kind)
        assert len(found) == 1, f"expected one {kind}, found {sorted(found)}"
        return next(iter(found.items()))

    def logical_id(self, construct: Any) -> str:
        return str(self.stack.get_logical_id(construct.node.default_child))


def synthesize(tmp: Path, **context: Any) -> Synth:
    from aws_cdk.assertions import Template

    outdir = tmp / "cdk.out"
    app, stack = build_app(
        {**cdk_json_context(), "costguard:bundle": False, **context}, outdir=str(outdir)
    )
    template = Template.from_stack(stack)  # runs the cdk-nag plugin: a finding fails here
    body = template.to_json()
    path = tmp / "template.json"
    path.write_text(json.dumps(body, indent=1))
    return Synth(app, stack, template, body, path, outdir)


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The stack as `make synth` builds it, with cdk.json's context and the code's defaults."""
    return synthesize(tmp_path_factory.mktemp("default"))


@pytest.fixture(scope="session")
def configured(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """Every context key set to something other than its default."""
    return synthesize(
        tmp_path_factory.mktemp("configured"),
        **{
            "costguard:stack_name": "costguard-staging",
            "costguard:table_name": "costguard-ledger-staging",
            "costguard:log_level": "debug",
            "costguard:log_retention_days": 90,
            "costguard:throttle_burst": "50",
            "costguard:throttle_rate": 20,
            "costguard:cors_origins": "https://app.example.com, https://admin.example.com",
            "costguard:sweep_rate_minutes": 5,
            "costguard:anomaly_rate_minutes": 30,
            "costguard:forecast_rate_minutes": 720,
            "costguard:alert_emails": ["ops@example.com"],
            "costguard:api_5xx_alarm_threshold": 2,
            "costguard:enforcement": "monitor",
            "costguard:fail_mode": "open",
            "costguard:reservation_ttl_seconds": 600,
            "costguard:event_bus_name": "platform-bus",
            "costguard:event_source": "acme.costguard",
            "costguard:tenant_created_sources": ["example.platform"],
            "costguard:default_quotas": {
                "free": {"tenant:all:month": "5"},
                "pro": {"tenant:llm:month": "500"},
            },
            "costguard:fallback_plan": "free",
        },
    )
