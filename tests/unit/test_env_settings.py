"""The settings read the environment as pydantic-settings' BaseSettings read it (D119).

`EnvSettings` replaced `BaseSettings` (importing it cost the API's cold start ≈ 30 ms): each
settings model is compared with its BaseSettings twin — the same fields, the configuration
these models had — over environments that set, misspell, mis-case and mistype values.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
from costguard.onboarding import OnboardingSettings
from costguard.settings import EnvSettings, Settings
from pydantic import ValidationError, create_model
from pydantic_settings import BaseSettings, SettingsConfigDict

ENVIRONMENTS: list[dict[str, str]] = [
    {},
    {"COSTGUARD_TABLE_NAME": "ledger-x", "COSTGUARD_RESERVATION_TTL_SECONDS": "60"},
    {"costguard_table_name": "lower-case-name", "CostGuard_Fail_Mode": "open"},
    {"COSTGUARD_SINGLE_ITEM_RESERVE": "false", "COSTGUARD_ENFORCEMENT": "monitor"},
    {"COSTGUARD_SINGLE_ITEM_RESERVE": "0", "COSTGUARD_API_KEY_CACHE_SECONDS": "0.5"},
    {"COSTGUARD_FALLBACK_INPUT_PER_MILLION_USD": "0.15", "COSTGUARD_ANOMALY_SIGMAS": "3.5"},
    {"COSTGUARD_ADMIN_KEY": "secret-key", "COSTGUARD_SLACK_WEBHOOK_URL": "https://x.test/h"},
    {"COSTGUARD_EVENT_BUS_NAME": "", "COSTGUARD_ALERTS_TOPIC_ARN": ""},
    {"COSTGUARD_NOT_A_FIELD": "ignored", "TABLE_NAME": "no-prefix"},
    {"COSTGUARD_DEFAULT_QUOTAS": '{"free": []}', "COSTGUARD_FALLBACK_PLAN": ""},
    {"COSTGUARD_DEAD_LETTER_QUEUE_URL": "https://sqs.test/q"},
    # refused alike
    {"COSTGUARD_RESERVATION_TTL_SECONDS": "1"},
    {"COSTGUARD_TABLE_NAME": "ab"},
    {"COSTGUARD_ENFORCEMENT": "ENFORCE"},
    {"COSTGUARD_ADMIN_KEY_SHA256": "not-hex"},
    {"COSTGUARD_FALLBACK_INPUT_PER_MILLION_USD": ""},
    {"COSTGUARD_TRANSACTION_ATTEMPTS": "2.5"},
    {"COSTGUARD_SINGLE_ITEM_RESERVE": "maybe"},
]
KEYWORDS: list[dict[str, Any]] = [
    {},
    {"table_name": "given-wins"},
    {"ddb_max_attempts": 2},
    {"not_a_field": 1},
]


def twin(model: type[EnvSettings]) -> type[BaseSettings]:
    """`model`'s fields on pydantic-settings, configured as `model` was before D119."""
    fields: Any = {name: (info.annotation, info) for name, info in model.model_fields.items()}

    class Base(BaseSettings):
        model_config = SettingsConfigDict(env_prefix="COSTGUARD_", frozen=True)

    made: type[BaseSettings] = create_model(f"{model.__name__}Twin", __base__=Base, **fields)
    return made


def _read(model: type[Any], keywords: dict[str, Any]) -> Any:
    try:
        return model(**keywords).model_dump()
    except ValidationError as e:
        return ("refused", sorted((tuple(err["loc"]), err["type"]) for err in e.errors()))


@pytest.mark.parametrize("model", [Settings, OnboardingSettings])
@pytest.mark.parametrize("environment", ENVIRONMENTS)
@pytest.mark.parametrize("keywords", KEYWORDS)
def test_reads_the_environment_as_base_settings_did(
    model: type[EnvSettings],
    environment: dict[str, str],
    keywords: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in [n for n in os.environ if n.lower().startswith("costguard_")]:
        monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    ours, theirs = _read(model, keywords), _read(twin(model), keywords)
    assert ours == theirs


def test_settings_are_frozen_and_read_when_made(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COSTGUARD_TABLE_NAME", "first")
    settings = Settings()
    monkeypatch.setenv("COSTGUARD_TABLE_NAME", "second")
    assert (settings.table_name, Settings().table_name) == ("first", "second")
    with pytest.raises(ValidationError):
        settings.table_name = "third"  # type: ignore[misc]


def test_pydantic_settings_is_not_imported_by_the_api() -> None:
    code = "import sys, functions.api.handler; sys.exit('pydantic_settings' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    subprocess.run([sys.executable, "-W", "ignore", "-c", code], check=True, env=env)
