"""The ledger's stream → threshold alerts (recorded once) → SNS and EventBridge (outbox).

Partial batch failures are reported (ReportBatchItemFailures): a poison record is retried
alone (bisect) and then sent to the on-failure queue, the rest of the batch goes on.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from costguard import services, telemetry
from costguard.alerts import (
    AlertBook,
    Publisher,
    StreamAlerts,
    may_alert,
    publisher_from_settings,
    request_of,
)
from costguard.ledger import Ledger, ledger_from_settings

logger = Logger(service=services.ALERTS)
metrics = telemetry.function_metrics(services.ALERTS)
processor = BatchProcessor(event_type=EventType.DynamoDBStreams)
telemetry.configure_tracing()


def compose(ledger: Ledger, publisher: Publisher) -> StreamAlerts:
    """Alerts from a ledger's stream, published to `publisher` (the deployment's topic and
    bus; the local runner's under `make run`)."""
    return StreamAlerts(ledger.table, AlertBook(ledger.table, ledger.now), publisher)


@cache
def root() -> StreamAlerts:
    """The composition root: everything this function uses, built once per container from
    its settings."""
    return compose(ledger_from_settings(), publisher_from_settings())


def record_handler(record: DynamoDBRecord, watch: StreamAlerts | None = None) -> str:
    change = record.dynamodb
    assert change is not None, "a DynamoDB stream record without its change"
    new = change.new_image or {}
    request = request_of(new)
    if request:  # the API request whose write this is: one correlation id end to end
        logger.set_correlation_id(str(request))
    with telemetry.span(
        "stream.record",
        event_name=str(record.event_name.name if record.event_name else ""),
        sequence_number=change.sequence_number,
        request_id=request,
    ) as span:
        try:
            outcome = (watch or root()).handle(
                str(record.event_name.name if record.event_name else ""),
                change.keys,
                change.old_image,
                change.new_image,
            )
        except Exception as error:
            stage = telemetry.stage_of(error, default=telemetry.Stage.STREAM)
            telemetry.failed(stage, error, span)
            logger.warning(
                "stream record failed",
                extra={"stage": stage.value, "error": type(error).__name__, "keys": change.keys},
            )
            raise
        telemetry.set_attributes(span, {"outcome": outcome})
    if outcome != "ignored":
        logger.info("stream record", extra={"keys": change.keys, "outcome": outcome})
    return outcome


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(
    event: dict[str, Any], context: LambdaContext, watch: StreamAlerts | None = None
) -> dict[str, Any]:
    records = event.get("Records") or []
    # Only records that can alert go through the processor; the rest are done (D68).
    relevant = [r for r in records if may_alert(r)]
    result: dict[str, Any] = {"batchItemFailures": []}
    with telemetry.invocation("stream.batch") as span:
        span.set_attribute("costguard.records", len(records))
        span.set_attribute("costguard.relevant_records", len(relevant))
        if relevant:
            with (watch or root()).batch():  # a sliced quota's whole: read once a batch
                result = dict(
                    process_partial_response(
                        event={**event, "Records": relevant},
                        record_handler=lambda record: record_handler(record, watch),
                        processor=processor,
                        context=context,
                    )
                )
        span.set_attribute("costguard.failed_records", len(result["batchItemFailures"]))
    if result.get("batchItemFailures"):
        metrics.add_metric(
            "StreamRecordsFailed", MetricUnit.Count, len(result["batchItemFailures"])
        )
    return dict(result)
