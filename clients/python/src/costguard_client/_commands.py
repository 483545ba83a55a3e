"""The `costguard` operator CLI (click). Tables for people, `--json` for scripts."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import update_wrapper
from typing import Any, Literal, TypeVar, cast

import click
from pydantic import BaseModel

from costguard_client import _api
from costguard_client._api import AlertType
from costguard_client._version import __version__
from costguard_client.client import CostGuard
from costguard_client.errors import CostGuardError
from costguard_client.models import (
    AlertPage,
    GroupBy,
    QuotaList,
    RecommendationList,
    TenantSettings,
    TenantSettingsState,
    UsageReport,
)

F = TypeVar("F", bound=Callable[..., Any])
GROUPS = ("model", "user", "conversation", "task", "operation", "resource", "day")


@dataclass
class State:
    url: str | None
    api_key: str | None
    timeout: float
    json: bool = False
    _guard: CostGuard | None = field(default=None, repr=False)

    def guard(self) -> CostGuard:
        if self._guard is None:
            if not self.url:
                raise click.UsageError("no costguard URL: pass --url or set COSTGUARD_URL")
            if not self.api_key:
                raise click.UsageError("no API key: pass --api-key or set COSTGUARD_API_KEY")
            self._guard = CostGuard(self.url, self.api_key, timeout=self.timeout)
        return self._guard


pass_state = click.make_pass_decorator(State)


def json_option(f: F) -> F:
    """`--json` after the command too (`costguard quotas list acme --json`)."""

    def callback(ctx: click.Context, _: click.Parameter, value: bool) -> None:
        if value:
            ctx.find_object(State).json = True  # type: ignore[union-attr]

    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        expose_value=False,
        callback=callback,
        help="Print the API's JSON instead of a table.",
    )(f)


def _usd(value: Decimal | None) -> str:
    """Exact, without trailing zeros past the cents: 12.50, 0.035, 0.000003."""
    if value is None:
        return "-"
    text = format(value.normalize(), "f")
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.ljust(2, '0')}"


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Decimal):
        return _usd(value)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> str:
    """Columns aligned for a terminal; money columns (`right`) aligned on the right."""
    if not rows:
        return "(none)"
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([line(headers), *(line(r) for r in rows)])


def pairs(items: Sequence[tuple[str, Any]]) -> str:
    width = max(len(k) for k, _ in items)
    return "\n".join(f"{k.ljust(width)}  {_cell(v)}" for k, v in items)


def emit(state: State, data: BaseModel | dict[str, Any], human: Callable[[], str]) -> None:
    if state.json:
        body = data.model_dump(mode="json") if isinstance(data, BaseModel) else data
        click.echo(json.dumps(body, indent=2))
    else:
        click.echo(human())


def generic(body: dict[str, Any]) -> str:
    """An answer with no model here yet (alerts, forecast): its `items` (or first list of
    objects) as a table, else its fields."""
    rows = body.get("items")
    if not isinstance(rows, list):
        rows = next(
            (v for v in body.values() if isinstance(v, list) and v and isinstance(v[0], dict)),
            None,
        )
    if isinstance(rows, list):
        columns: list[str] = []
        for row in rows:
            if isinstance(row, dict):
                columns += [k for k in row if k not in columns]
        right = [i for i, c in enumerate(columns) if c.endswith("_usd")]
        return table(
            [c.upper() for c in columns],
            [[_cell(r.get(c)) if isinstance(r, dict) else "" for c in columns] for r in rows],
            right,
        )
    return pairs(list(body.items())) if body else "(none)"


def quota_table(quotas: QuotaList) -> str:
    rows = [
        [
            q.quota_id,
            q.mode,
            _usd(q.limit_usd),
            _usd(q.spent_usd),
            _usd(q.reserved_usd),
            _usd(q.remaining_usd),
            f"{q.utilization * 100:.1f}%",
            q.resets_at.strftime("%Y-%m-%d %H:%MZ"),
        ]
        for q in quotas.quotas
    ]
    headers = ["QUOTA", "MODE", "LIMIT", "SPENT", "RESERVED", "REMAINING", "USED", "RESETS"]
    return table(headers, rows, right=[2, 3, 4, 5, 6])


def alert_table(page: AlertPage) -> str:
    rows = [
        [
            _cell(a.created_at),
            a.alert_type,
            a.severity,
            a.quota_id or "-",
            f"{a.utilization * 100:.1f}%" if a.utilization is not None else "-",
            a.title,
        ]
        for a in page.alerts
    ]
    text = table(["CREATED", "TYPE", "SEVERITY", "QUOTA", "USED", "TITLE"], rows, right=[4])
    return text + (f"\n(more: --cursor {page.next_cursor})" if page.next_cursor else "")


def usage_text(report: UsageReport) -> str:
    head = pairs(
        [
            ("tenant", report.tenant_id),
            ("from", report.from_date),
            ("to", report.to_date),
            ("total_usd", report.total_usd),
            ("calls", report.calls),
        ]
    )
    if report.group_by is None:
        return head
    total = report.total_usd
    rows = [
        [
            g.key,
            _usd(g.cost_usd),
            f"{(g.cost_usd / total * 100):.1f}%" if total else "-",
        ]
        for g in report.groups
    ]
    body = table([report.group_by.upper(), "COST", "SHARE"], rows, right=[1, 2])
    note = "\n(truncated: narrow the date range)" if report.truncated else ""
    return f"{head}\n\n{body}{note}"


def api_call(f: F) -> F:
    """Turn a refusal into a clean message (or the problem JSON with --json) and exit 1."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except CostGuardError as error:
            state = click.get_current_context().find_object(State)
            if state is not None and state.json:
                click.echo(json.dumps(error.problem, indent=2))
            click.echo(f"costguard: {error}", err=True)
            # A refusal made here already names its fields in its one line; the API's 422
            # names them in `invalid_params`, one line each.
            params = error.problem.get("invalid_params") if error.status is not None else None
            for param in params or []:
                if isinstance(param, dict):
                    click.echo(f"  {param.get('name')}: {param.get('reason')}", err=True)
            raise click.exceptions.Exit(1) from None

    return update_wrapper(wrapper, f)  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--url", envvar="COSTGUARD_URL", help="API base URL [env: COSTGUARD_URL]")
@click.option(
    "--api-key", envvar="COSTGUARD_API_KEY", help="Admin API key [env: COSTGUARD_API_KEY]"
)
@click.option("--timeout", type=float, default=10.0, show_default=True, help="Seconds per request.")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON instead of tables.")
@click.version_option(__version__, prog_name="costguard")
@click.pass_context
def cli(
    ctx: click.Context, url: str | None, api_key: str | None, timeout: float, as_json: bool
) -> None:
    """Operate costguard: tenants, settings, quotas, pauses, keys, usage, alerts, forecasts."""
    # Retries are logged as warnings for applications; the CLI says only how it ended.
    logging.getLogger("costguard_client").addHandler(logging.NullHandler())
    state = State(url, api_key, timeout, as_json)
    ctx.obj = state
    ctx.call_on_close(lambda: state._guard.close() if state._guard else None)


# ---------------------------------------------------------------------------- tenants
@cli.group()
def tenants() -> None:
    """Register tenants."""


@tenants.command("create")
@click.option("--id", "tenant_id", help="Lowercase letters, digits, '-' (generated if absent).")
@click.option("--name", required=True, help="Display name.")
@click.option("--plan", help="Plan name, e.g. pro.")
@click.option("--timezone", help="IANA zone of its days, weeks and months (default UTC).")
@json_option
@pass_state
@api_call
def tenants_create(
    state: State, tenant_id: str | None, name: str, plan: str | None, timezone: str | None
) -> None:
    """Register a tenant."""
    settings = TenantSettings(timezone=timezone) if timezone else None
    tenant = state.guard().create_tenant(name, tenant_id=tenant_id, plan=plan, settings=settings)
    emit(state, tenant, lambda: pairs(list(tenant.model_dump().items())))


# ---------------------------------------------------------------------------- settings
@cli.group("settings")
def settings_group() -> None:
    """A tenant's settings: commits above the hold, expired holds, its time zone."""


def _settings_text(tenant: str, s: TenantSettingsState) -> str:
    rows = [("tenant", tenant), ("overrun", s.overrun), ("on_expiry", s.on_expiry)]
    rows.append(("timezone", s.timezone))
    if s.timezone_effective_at is not None:
        rows.append(("timezone_in_effect", s.timezone_in_effect))
        rows.append(("timezone_effective_at", s.timezone_effective_at.isoformat()))
    return pairs(rows)


@settings_group.command("show")
@click.argument("tenant")
@json_option
@pass_state
@api_call
def settings_show(state: State, tenant: str) -> None:
    """The tenant's settings."""
    current = state.guard().tenant_settings(tenant)
    emit(state, current, lambda: _settings_text(tenant, current))


@settings_group.command("set")
@click.argument("tenant")
@click.option(
    "--overrun",
    type=click.Choice(["record", "reject"]),
    help="A commit above its hold: record it in full, or refuse it (409) and charge the hold.",
)
@click.option(
    "--on-expiry",
    type=click.Choice(["charge", "release"]),
    help="A hold that expires without a commit: charge it in full, or return it.",
)
@click.option(
    "--timezone",
    help="IANA zone of the tenant's periods; takes effect at the next local midnight.",
)
@json_option
@pass_state
@api_call
def settings_set(
    state: State, tenant: str, overrun: str | None, on_expiry: str | None, timezone: str | None
) -> None:
    """Change a tenant's settings (the ones not given are kept)."""
    if overrun is None and on_expiry is None and timezone is None:
        raise click.UsageError("nothing to set: pass --overrun, --on-expiry and/or --timezone")
    changed = state.guard().put_tenant_settings(
        tenant,
        overrun=cast(Literal["record", "reject"] | None, overrun),
        on_expiry=cast(Literal["charge", "release"] | None, on_expiry),
        timezone=timezone,
    )
    emit(state, changed, lambda: _settings_text(tenant, changed))


# ---------------------------------------------------------------------------- quotas
@cli.group()
def quotas() -> None:
    """List, set and delete quotas (a tenant's, or the platform's with --platform)."""


def _target(platform: bool, args: tuple[str, ...], wanted: int) -> tuple[str | None, list[str]]:
    """`[TENANT] REST...`: the tenant is absent with --platform."""
    need = wanted if platform else wanted + 1
    if len(args) != need:
        names = "QUOTA_ID" if wanted else ""
        usage = f"--platform {names}" if platform else f"TENANT {names}"
        raise click.UsageError(f"expected {usage.strip()}")
    return (None, list(args)) if platform else (args[0], list(args[1:]))


@quotas.command("list")
@click.argument("args", nargs=-1, metavar="[TENANT]")
@click.option("--platform", is_flag=True, help="Platform quotas (all tenants together).")
@json_option
@pass_state
@api_call
def quotas_list(state: State, args: tuple[str, ...], platform: bool) -> None:
    """Every quota with live spent / reserved / remaining."""
    tenant, _ = _target(platform, args, 0)
    guard = state.guard()
    result = guard.platform_quotas() if tenant is None else guard.quotas(tenant)
    emit(state, result, lambda: quota_table(result))


@quotas.command("set")
@click.argument("args", nargs=-1, metavar="[TENANT] QUOTA_ID")
@click.option("--platform", is_flag=True, help="A platform quota (no TENANT).")
@click.option("--limit", "limit_usd", required=True, help="Limit in USD, e.g. 10.00.")
@click.option("--mode", type=click.Choice(["hard", "soft"]), default="hard", show_default=True)
@click.option("--thresholds", help="Alert thresholds in percent, e.g. 50,80,90,100.")
@click.option("--grace-pct", help="Soft-quota grace in percent.")
@json_option
@pass_state
@api_call
def quotas_set(
    state: State,
    args: tuple[str, ...],
    platform: bool,
    limit_usd: str,
    mode: str,
    thresholds: str | None,
    grace_pct: str | None,
) -> None:
    """Create or replace a quota, e.g. `quotas set acme tenant:llm:month --limit 100`.

    QUOTA_ID is scope:resource:period (tenant:llm:month, user:u-42:all:day,
    platform:sandbox:week).
    """
    tenant, (quota_id,) = _target(platform, args, 1)
    levels = None
    if thresholds:
        try:
            levels = [int(t) for t in thresholds.split(",") if t.strip()]
        except ValueError:
            raise click.BadParameter(
                "a comma-separated list of integers", param_hint="--thresholds"
            ) from None
    guard = state.guard()
    mode_: Literal["hard", "soft"] = "soft" if mode == "soft" else "hard"
    if tenant is None:
        quota = guard.put_platform_quota(
            quota_id, limit_usd, mode=mode_, thresholds=levels, grace_pct=grace_pct
        )
    else:
        quota = guard.put_quota(
            tenant, quota_id, limit_usd, mode=mode_, thresholds=levels, grace_pct=grace_pct
        )
    emit(state, quota, lambda: quota_table(QuotaList(quotas=[quota])))


@quotas.command("delete")
@click.argument("args", nargs=-1, metavar="[TENANT] QUOTA_ID")
@click.option("--platform", is_flag=True, help="A platform quota (no TENANT).")
@json_option
@pass_state
@api_call
def quotas_delete(state: State, args: tuple[str, ...], platform: bool) -> None:
    """Delete a quota."""
    tenant, (quota_id,) = _target(platform, args, 1)
    guard = state.guard()
    if tenant is None:
        guard.delete_platform_quota(quota_id)
    else:
        guard.delete_quota(tenant, quota_id)
    emit(
        state,
        {"tenant_id": tenant, "quota_id": quota_id, "deleted": True},
        lambda: f"deleted {quota_id}" + (f" of {tenant}" if tenant else " (platform)"),
    )


# ---------------------------------------------------------------------------- pause
def _pause_command(paused: bool) -> Callable[..., None]:
    verb = "pause" if paused else "unpause"

    @click.argument("tenant")
    @click.option("--user", "user_id", help="Only this user of the tenant.")
    @json_option
    @pass_state
    @api_call
    def command(state: State, tenant: str, user_id: str | None) -> None:
        guard = state.guard()
        result = (
            guard.pause(tenant, user_id=user_id)
            if paused
            else guard.unpause(tenant, user_id=user_id)
        )
        who = f"user {user_id} of {tenant}" if user_id else tenant
        emit(state, result, lambda: f"{who}: {'paused' if result.paused else 'not paused'}")

    command.__doc__ = (
        "Refuse every new reservation of a tenant (or one user)."
        if paused
        else "Accept reservations again."
    )
    command.__name__ = verb
    return command


cli.command("pause")(_pause_command(True))
cli.command("unpause")(_pause_command(False))


# ---------------------------------------------------------------------------- usage
@cli.command("usage")
@click.argument("tenant")
@click.option("--from", "from_", type=click.DateTime(["%Y-%m-%d"]), help="First UTC day.")
@click.option("--to", type=click.DateTime(["%Y-%m-%d"]), help="Last UTC day (inclusive).")
@click.option("--group-by", type=click.Choice(GROUPS), help="Break the total down.")
@json_option
@pass_state
@api_call
def usage(
    state: State,
    tenant: str,
    from_: datetime | None,
    to: datetime | None,
    group_by: str | None,
) -> None:
    """Spend of a tenant over UTC days (this month by default)."""
    report = state.guard().usage(
        tenant,
        from_=from_.date() if from_ else None,
        to=to.date() if to else None,
        group_by=cast(GroupBy | None, group_by),
    )
    emit(state, report, lambda: usage_text(report))


# ---------------------------------------------------------------------------- alerts, forecast
@cli.command("alerts")
@click.argument("args", nargs=-1, metavar="[TENANT]")
@click.option("--platform", is_flag=True, help="Alerts of platform quotas (no TENANT).")
@click.option(
    "--type",
    "type_",
    type=click.Choice(["threshold", "anomaly", "forecast", "recommendation", "overrun"]),
)
@click.option("--limit", type=click.IntRange(1, 200), help="At most this many (newest first).")
@click.option("--cursor", help="next_cursor of the previous page.")
@json_option
@pass_state
@api_call
def alerts(
    state: State,
    args: tuple[str, ...],
    platform: bool,
    type_: str | None,
    limit: int | None,
    cursor: str | None,
) -> None:
    """Recent threshold, anomaly and forecast alerts, newest first."""
    tenant, _ = _target(platform, args, 0)
    guard = state.guard()
    kind = cast(AlertType | None, type_)
    page = (
        guard.platform_alerts(limit=limit, cursor=cursor, type_=kind)
        if tenant is None
        else guard.alerts(tenant, limit=limit, cursor=cursor, type_=kind)
    )
    emit(state, page, lambda: alert_table(page))


@cli.command("forecast")
@click.argument("tenant")
@json_option
@pass_state
@api_call
def forecast(state: State, tenant: str) -> None:
    """The latest forecast per quota: projected spend, breach date, risk."""
    body = state.guard().forecast(tenant)
    emit(state, body, lambda: generic(body))


def recommendation_table(advice: RecommendationList) -> str:
    rows = [
        [r.kind, r.confidence, plain_usd(r.monthly_savings_usd), r.title]
        for r in advice.recommendations
    ]
    head = (
        f"{advice.tenant_id}: ${plain_usd(advice.monthly_savings_usd)}/month to save, "
        f"{advice.records_examined} records over {advice.days_observed} "
        f"day{'' if advice.days_observed == 1 else 's'}"
    )
    body = table(["KIND", "CONFIDENCE", "USD/MONTH", "TITLE"], rows, right=[2])
    actions = "\n".join(f"- {r.recommendation_id}: {r.action}" for r in advice.recommendations)
    return "\n".join(part for part in (head, body, actions) if part)


def plain_usd(amount: Decimal) -> str:
    return f"{amount.quantize(Decimal('0.01'))}"


@cli.command("recommendations")
@click.argument("tenant")
@click.option("--days", type=click.IntRange(7, 90), help="The window read (default 30 days).")
@json_option
@pass_state
@api_call
def recommendations(state: State, tenant: str, days: int | None) -> None:
    """What TENANT could change to spend less: savings per month, evidence, confidence."""
    advice = state.guard()._run(_api.recommendations(tenant, days))
    emit(state, advice, lambda: recommendation_table(advice))


# ---------------------------------------------------------------------------- keys
@cli.group()
def keys() -> None:
    """Issue and revoke tenant API keys."""


@keys.command("issue")
@click.argument("tenant")
@json_option
@pass_state
@api_call
def keys_issue(state: State, tenant: str) -> None:
    """Issue a tenant key. It is shown once: store it now."""
    issued = state.guard().issue_key(tenant)
    emit(
        state,
        issued,
        lambda: (
            pairs(list(issued.model_dump().items()))
            + "\n\nThe key is shown once and cannot be read again."
        ),
    )


@keys.command("revoke")
@click.argument("tenant")
@click.argument("key_id")
@json_option
@pass_state
@api_call
def keys_revoke(state: State, tenant: str, key_id: str) -> None:
    """Revoke a tenant key (servers trust a verified key for up to 30 s more)."""
    state.guard().revoke_key(tenant, key_id)
    emit(
        state,
        {"tenant_id": tenant, "key_id": key_id, "revoked": True},
        lambda: f"revoked {key_id} of {tenant}",
    )
