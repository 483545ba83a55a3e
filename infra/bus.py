"""The deployment's EventBridge bus: `TenantCreated` comes in on it, costguard's events go out.

The stack creates one, unless `costguard:event_bus_name` names an existing bus (the operator's
platform bus, or `default`), which is then imported by name: nothing about it is managed here.
"""

from __future__ import annotations

from aws_cdk import aws_events as events
from aws_cdk import aws_lambda as lambda_
from constructs import Construct
from costguard.notify import SOURCE

from infra.config import Config
from infra.functions import PythonFunction


class EventBus(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: Config) -> None:
        super().__init__(scope, construct_id)
        self.source = config.event_source
        self.imported = config.event_bus_name is not None
        self.bus: events.IEventBus
        if config.event_bus_name is not None:
            self.bus = events.EventBus.from_event_bus_name(self, "Bus", config.event_bus_name)
        else:
            self.bus = events.EventBus(
                self, "Bus", description="costguard: TenantCreated in; alerts and events out"
            )

    def grant_put_events_to(self, fn: PythonFunction | lambda_.Function) -> None:
        """`events:PutEvents` on this bus, and where to put them in the function's environment
        (COSTGUARD_EVENT_BUS_NAME; COSTGUARD_EVENT_SOURCE when it is not the default)."""
        function = fn.function if isinstance(fn, PythonFunction) else fn
        self.bus.grant_put_events_to(function)
        function.add_environment("COSTGUARD_EVENT_BUS_NAME", self.bus.event_bus_name)
        if self.source != SOURCE:
            function.add_environment("COSTGUARD_EVENT_SOURCE", self.source)
