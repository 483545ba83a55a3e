"""In AWS the bootstrap admin key lives in Secrets Manager; the API reads it at cold start."""

from __future__ import annotations

import boto3
from costguard.auth import fingerprint
from costguard.ledger import Ledger
from costguard.settings import Settings
from moto import mock_aws

from functions.api.deps import admin_fingerprints


def test_the_admin_key_is_read_from_secrets_manager() -> None:
    with mock_aws():
        arn = boto3.client("secretsmanager", region_name="us-east-1").create_secret(
            Name="costguard/admin-key", SecretString="cg-admin-from-secret\n"
        )["ARN"]

        prints = admin_fingerprints(Settings(admin_key_secret_arn=arn))

    assert prints == frozenset({fingerprint("cg-admin-from-secret")})


def test_no_admin_key_configured_means_no_admin() -> None:
    assert admin_fingerprints(Settings()) == frozenset()


def test_public_routes_answer_when_the_admin_key_secret_cannot_be_read(ledger: Ledger) -> None:
    """Issue 20: GET /v1/health answered 500 when the secret could not be read: the guard
    fetched the keys for every route, public ones included. Public routes never read them."""
    from botocore.exceptions import ClientError

    from functions.api import handler
    from functions.api.deps import get_keys, get_ledger
    from tests.api.conftest import ADMIN_KEY, CONTEXT, http_event

    reads: list[str] = []

    def unreadable() -> object:
        reads.append("keys")
        raise ClientError(
            {"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "GetSecretValue"
        )

    handler.app.dependency_overrides[get_keys] = unreadable
    handler.app.dependency_overrides[get_ledger] = lambda: ledger
    try:
        for path in ("/v1/health", "/v1/openapi.json"):
            for key in (None, ADMIN_KEY, "cg-anything"):
                answer = handler.lambda_handler(http_event("GET", path, key=key), CONTEXT)
                assert answer["statusCode"] == 200, (path, key, answer.get("body"))
        assert reads == []
        # a protected route still needs the keys: it is refused, never served without them
        answer = handler.lambda_handler(http_event("GET", "/v1/pricing", key=ADMIN_KEY), CONTEXT)
        assert answer["statusCode"] >= 500 and reads == ["keys"]
    finally:
        handler.app.dependency_overrides.clear()
