"""Every 6 hours (EventBridge schedule): each quota with spend in its period projected to the
period's end, stored, and alerted once per rise of its risk. See costguard.forecasts."""

from __future__ import annotations

from costguard.forecasts import ForecastRules, run_forecasts

from functions.scheduled import scheduled_function

root, handler = scheduled_function(
    "forecast", run_forecasts, ForecastRules.from_settings, "ForecastsRecorded"
)
"""`root()`: the ledger the run goes over (the composition root); `handler(event, context,
run=None)`: the Lambda handler, `run=` a ledger of the caller's (tests, `make run`)."""
