"""HTTP request ⇄ API Gateway HTTP API (payload format 2.0) event, as AWS builds them."""

from __future__ import annotations

import base64
import secrets
import uuid
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from costguard.topology import Function
from werkzeug.wrappers import Request, Response


def lambda_context(function: Function) -> Any:
    """The context Lambda hands a function of the topology (what the handlers and Powertools
    read of it): a new request id each time, its memory, and its whole timeout left."""
    return SimpleNamespace(
        function_name=function.name,
        memory_limit_in_mb=function.memory_mb,
        aws_request_id=secrets.token_hex(8),
        invoked_function_arn=f"arn:aws:lambda:us-east-1:000000000000:function:{function.name}",
        get_remaining_time_in_millis=lambda: function.timeout_seconds * 1000,
    )


TEXT_TYPES = ("json", "text", "xml", "javascript", "x-www-form-urlencoded", "event-stream")


def to_event(request: Request, stage: str = "$default") -> dict[str, Any]:
    """The event API Gateway would hand the Lambda for this request."""
    now = datetime.now(UTC)
    raw = request.get_data(cache=False)
    content_type = request.headers.get("content-type", "")
    is_text = not raw or any(t in content_type for t in TEXT_TYPES) or not content_type
    try:
        body = raw.decode("utf-8") if is_text else None
    except UnicodeDecodeError:
        body = None
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        key = name.lower()
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    query: dict[str, str] = {}
    for name, value in request.args.items(multi=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": request.path,
        "rawQueryString": request.query_string.decode("latin-1"),
        "cookies": [f"{k}={v}" for k, v in request.cookies.items()] or None,
        "headers": headers,
        "queryStringParameters": query or None,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": request.host,
            "domainPrefix": request.host.split(".")[0],
            "http": {
                "method": request.method,
                "path": request.path,
                "protocol": request.environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
                "sourceIp": request.remote_addr or "127.0.0.1",
                "userAgent": request.headers.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": stage,
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "body": None if not raw else body if body is not None else base64.b64encode(raw).decode(),
        "isBase64Encoded": bool(raw) and body is None,
    }


def to_response(result: dict[str, Any]) -> Response:
    """The HTTP response API Gateway would send for the Lambda's result."""
    body = result.get("body") or ""
    data = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode("utf-8")
    response = Response(data, status=int(result.get("statusCode", 200)))
    response.headers.clear()
    for name, value in (result.get("headers") or {}).items():
        response.headers[name] = str(value)
    for name, values in (result.get("multiValueHeaders") or {}).items():
        for value in values:
            response.headers.add(name, str(value))
    for cookie in result.get("cookies") or []:
        response.headers.add("Set-Cookie", cookie)
    response.headers.setdefault("Content-Type", "application/json")
    return response
