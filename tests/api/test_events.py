"""The sample events in events/api (one per route, usable with `sam local invoke -e`)
replayed in order through the real handler."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from costguard.auth import ApiKeys, fingerprint

from functions.api import handler
from functions.api.access import RULES
from functions.api.deps import get_keys
from tests.api.conftest import CONTEXT, Api

EVENTS = Path(__file__).parents[2] / "events" / "api"
SAMPLE_KEY = "cg-admin-sample-key-for-events"


def test_every_route_has_a_sample_event() -> None:
    sampled = set()
    for path in EVENTS.glob("*.json"):
        if path.name.startswith("_"):
            continue
        event = json.loads(path.read_text())
        sampled.add((event["requestContext"]["http"]["method"], event["rawPath"]))
    import re

    for method, rule in RULES:
        pattern = re.sub(r"<\w+>", r"[^/]+", rule)
        assert any(m == method and re.fullmatch(pattern, p) for m, p in sampled), (method, rule)


def test_the_samples_replay_in_order(api: Api) -> None:
    keys = ApiKeys(api.ledger.table, frozenset({fingerprint(SAMPLE_KEY)}), cache_seconds=0)
    handler.app.dependency_overrides[get_keys] = lambda: keys
    sequence = json.loads((EVENTS / "_sequence.json").read_text())
    ids: dict[str, str] = {}
    for step in sequence:
        text = (EVENTS / step["event"]).read_text()
        if step["event"] == "commit.json":
            text = text.replace("RESERVATION_ID", ids["reserve.json"])
        if step["event"] == "release.json":
            text = text.replace("RESERVATION_ID", ids["reserve_sandbox.json"])
        answer = handler.lambda_handler(json.loads(text), CONTEXT)
        assert answer["statusCode"] == step["expect"], (step, answer.get("body"))
        if step["event"].startswith("reserve"):
            ids[step["event"]] = json.loads(answer["body"])["reservation_id"]


@pytest.mark.parametrize("name", ["reserve", "commit", "create_tenant"])
def test_samples_are_api_gateway_v2_events(name: str) -> None:
    event = json.loads((EVENTS / f"{name}.json").read_text())
    assert event["version"] == "2.0" and event["requestContext"]["http"]["method"]
    assert event["headers"]["authorization"].startswith("Bearer ")
