"""The local runner's HTTP ⇄ API Gateway v2 translation, checked against events/ samples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from local.events import to_event, to_response

EVENTS = Path(__file__).parents[2] / "events" / "api"


@pytest.mark.parametrize("name", ["reserve", "usage", "release", "health"])
def test_a_request_becomes_the_event_api_gateway_would_send(name: str) -> None:
    sample = json.loads((EVENTS / f"{name}.json").read_text())
    builder = EnvironBuilder(
        method=sample["requestContext"]["http"]["method"],
        path=sample["rawPath"],
        query_string=sample["rawQueryString"],
        headers=sample["headers"],
        data=sample["body"] or None,
    )

    event = to_event(Request(builder.get_environ()))

    for key in (
        "version",
        "routeKey",
        "rawPath",
        "rawQueryString",
        "queryStringParameters",
        "body",
        "isBase64Encoded",
    ):
        assert event[key] == sample[key], key
    for key in ("authorization", "content-type", "accept"):
        assert event["headers"][key] == sample["headers"][key]
    assert event["requestContext"]["http"]["method"] == sample["requestContext"]["http"]["method"]
    assert set(sample["requestContext"]) <= set(event["requestContext"])


def test_a_result_becomes_the_http_response() -> None:
    response = to_response(
        {
            "statusCode": 429,
            "headers": {"Retry-After": "60", "Content-Type": "application/problem+json"},
            "body": "{}",
            "cookies": ["a=b"],
        }
    )
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "60"
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.headers.getlist("Set-Cookie") == ["a=b"]
