"""The service name of each function: one source for the code and the infrastructure.

Every metric a function emits carries the dimension `service` = its `POWERTOOLS_SERVICE_NAME`
(infra/functions.py sets that variable from `service()`), its logs carry the same name, and
every alarm and dashboard widget on a function's metric names it with these constants: an
alarm on a name the code never emits would never fire (docs/decisions.md).
"""

from __future__ import annotations

PREFIX = "costguard-"


def service(function: str) -> str:
    """The service name of `functions/<function>`."""
    return PREFIX + function


API = service("api")
SWEEPER = service("sweeper")
ALERTS = service("alerts")
SLACK = service("slack")
ONBOARDING = service("onboarding")
ANOMALY = service("anomaly")
FORECAST = service("forecast")
RECOMMENDATIONS = service("recommendations")
