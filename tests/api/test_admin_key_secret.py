"""In AWS the bootstrap admin key lives in Secrets Manager; the API reads it at cold start."""

from __future__ import annotations

import boto3
from costguard.auth import fingerprint
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
