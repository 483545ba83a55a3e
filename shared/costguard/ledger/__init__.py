"""The atomic spend ledger on DynamoDB."""

from __future__ import annotations

from costguard.ledger.service import Ledger, ReleaseResult
from costguard.settings import Settings, get_settings
from costguard.store.dynamo import LedgerTable, make_client


def ledger_from_settings(settings: Settings | None = None, client: object | None = None) -> Ledger:
    """A ledger on the configured table (AWS_ENDPOINT_URL_DYNAMODB is honoured by boto3)."""
    settings = settings or get_settings()
    client = client or make_client(settings)
    return Ledger(LedgerTable(client, settings.table_name, settings), settings)


__all__ = ["Ledger", "LedgerTable", "ReleaseResult", "ledger_from_settings", "make_client"]
