"""Entry point of the CDK app (`cdk.json`: `uv run --frozen python -m infra.app`).

cdk-nag's AwsSolutions pack runs on every synth as a validation plugin: a finding that is
not acknowledged (infra/nag.py) fails `cdk synth`. The tests call `build_app` in-process,
with cdk.json's context.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import App, Validations
from cdk_nag import AwsSolutionsChecks

from infra.config import Config
from infra.stack import CostguardStack


def build_app(
    context: dict[str, Any] | None = None, outdir: str | None = None
) -> tuple[App, CostguardStack]:
    app = App(context=context, outdir=outdir)
    config = Config.from_context(app.node.try_get_context)
    # No env: the stack is environment-agnostic, so synthesis never looks anything up.
    stack = CostguardStack(app, config.stack_name, config=config)
    add_checks(app)
    return app, stack


def add_checks(app: App) -> None:
    """cdk-nag's AwsSolutions pack, run by every synth: a finding fails it."""
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))


def main() -> None:
    app, _ = build_app()
    app.synth()


if __name__ == "__main__":
    main()
