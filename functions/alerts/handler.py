"""The ledger's stream → threshold alerts (recorded once) → SNS and EventBridge (outbox).

Partial batch failures are reported (ReportBatchItemFailures): a poison record is retried
alone (bisect) and then sent to the on-failure queue, the rest of the batch goes on.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from costguard.alerts import StreamAlerts, stream_alerts_from_settings

logger = Logger(service="costguard-alerts")
metrics = Metrics(namespace="costguard", service="alerts")
processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


@cache
def alerts() -> StreamAlerts:
    return stream_alerts_from_settings()


def record_handler(record: DynamoDBRecord, watch: StreamAlerts | None = None) -> str:
    change = record.dynamodb
    assert change is not None, "a DynamoDB stream record without its change"
    outcome = (watch or alerts()).handle(
        str(record.event_name.name if record.event_name else ""),
        change.keys,
        change.old_image,
        change.new_image,
    )
    if outcome != "ignored":
        logger.info("stream record", extra={"keys": change.keys, "outcome": outcome})
    if outcome.startswith("recorded") and outcome != "recorded 0":
        metrics.add_metric("AlertsRecorded", MetricUnit.Count, int(outcome.split()[1]))
    if outcome == "sent":
        metrics.add_metric("AlertsPublished", MetricUnit.Count, 1)
    return outcome


@metrics.log_metrics
@logger.inject_lambda_context
def handler(
    event: dict[str, Any], context: LambdaContext, watch: StreamAlerts | None = None
) -> dict[str, Any]:
    result: dict[str, Any] = process_partial_response(
        event=event,
        record_handler=lambda record: record_handler(record, watch),
        processor=processor,
        context=context,
    )
    if result.get("batchItemFailures"):
        metrics.add_metric(
            "StreamRecordsFailed", MetricUnit.Count, len(result["batchItemFailures"])
        )
    return result
