"""Every Monday (EventBridge schedule): each tenant with spend in the last 7 days gets the
week's digest of its recommendations, recorded once per tenant and ISO week as an alert (the
stream delivers it to SNS, Slack, e-mail and EventBridge). See costguard.recommendations."""

from __future__ import annotations

from costguard.recommendations import RecommendationRules, run_digests

from functions.scheduled import scheduled_function

root, handler = scheduled_function(
    "recommendations", run_digests, lambda _: RecommendationRules(), "DigestsRecorded"
)
"""`root()`: the ledger the run goes over (the composition root); `handler(event, context,
run=None)`: the Lambda handler, `run=` a ledger of the caller's (tests, `make run`)."""
