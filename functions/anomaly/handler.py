"""Every hour (EventBridge schedule): each tenant with spend today or yesterday, judged against
its own history; anomalies recorded as alerts once (the stream delivers them). See
costguard.anomalies."""

from __future__ import annotations

from costguard.anomalies import AnomalyRules, run_anomalies

from functions.scheduled import scheduled_function

root, handler = scheduled_function(
    "anomaly", run_anomalies, AnomalyRules.from_settings, "AnomaliesRecorded"
)
"""`root()`: the ledger the run goes over (the composition root); `handler(event, context,
run=None)`: the Lambda handler, `run=` a ledger of the caller's (tests, `make run`)."""
