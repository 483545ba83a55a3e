"""cdk-nag (v3): the AwsSolutions pack runs as a CDK validation plugin on every synth.

A finding is acknowledged on the construct it is about (or an ancestor), always with its reason,
next to the code that causes it; grep for `acknowledge(` to review them all.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, Validations
from constructs import IConstruct


def acknowledge(scope: IConstruct, rule_id: str, reason: str) -> None:
    """`rule_id` as cdk-nag reports it, e.g. "AwsSolutions-IAM5[Resource::*]"."""
    if len(reason) < 40:
        raise ValueError(f"{rule_id}: say why, specifically (got {reason!r})")
    Validations.of(scope).acknowledge(Acknowledgment(id=rule_id, reason=reason))
