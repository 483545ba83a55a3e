"""The v1.1 money contract through the client, against the real runner: the hold states how
it was derived, unknown usage charges the whole hold, a commit above the hold is recorded
(or refused by the tenant's setting, typed), tenant settings (client and CLI), a commit that
cannot land surfaces its usage for `record_usage`, which takes the SDK's usage objects."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from click.testing import CliRunner
from costguard.periods import Period, period_end
from costguard_client import CommitNotLanded, CostGuard, OverrunRejected
from costguard_client._commands import cli
from costguard_client.models import TenantSettingsState
from openai.types import CompletionUsage

from tests.client.conftest import GPT4O, TenantKey
from tests.client.conftest import quota as one
from tests.e2e.conftest import ADMIN, Server


def figures(guard: CostGuard, tenant_id: str) -> tuple[Decimal, Decimal]:
    quota = one(guard.quotas(tenant_id))
    return quota.spent_usd, quota.reserved_usd


def test_the_reservation_says_how_its_hold_was_derived(guard: CostGuard, tenant: TenantKey) -> None:
    with guard.reserve(tenant.tenant_id, **GPT4O) as capped:
        basis = capped.reservation.hold
    with guard.reserve(tenant.tenant_id, model="gpt-4o", input_tokens=1_000) as uncapped:
        catalog = uncapped.reservation.hold

    assert basis is not None and catalog is not None
    assert (basis.basis, basis.output_tokens, basis.output_cap_from) == ("tokens", 2_000, "request")
    assert (catalog.basis, catalog.output_cap_from) == ("tokens", "catalog")
    assert catalog.output_tokens is not None and catalog.output_tokens > 2_000
    assert uncapped.reserved_usd > capped.reserved_usd  # the model's maximum output is held


def test_unknown_usage_charges_the_whole_hold(guard: CostGuard, tenant: TenantKey) -> None:
    with guard.reserve(tenant.tenant_id, user_id="u-1", **GPT4O) as hold:
        hold.started()  # the provider call went out; then the process lost the answer

    record = hold.record
    assert record is not None and hold.state == "committed"
    assert (record.usage_unknown, record.cost_usd, record.user_id) == (
        True,
        Decimal("0.045"),
        "u-1",
    )
    assert figures(guard, tenant.tenant_id) == (Decimal("0.045"), Decimal(0))


def test_a_commit_above_the_hold_is_recorded_in_full_with_its_overrun(
    guard: CostGuard, tenant: TenantKey
) -> None:
    with guard.reserve(tenant.tenant_id, **GPT4O) as hold:
        record = hold.commit(input_tokens=10_000, output_tokens=3_000)

    # 10,000 × 2.50 + 3,000 × 10.00 per million = $0.055, $0.010 above the $0.045 hold
    assert (record.cost_usd, record.overrun_usd, record.overrun) == (
        Decimal("0.055"),
        Decimal("0.01"),
        True,
    )
    assert figures(guard, tenant.tenant_id) == (Decimal("0.055"), Decimal(0))


def test_an_overrun_refused_by_the_tenants_setting_is_typed_and_the_hold_charged(
    admin: CostGuard, guard: CostGuard, tenant: TenantKey
) -> None:
    admin.put_tenant_settings(tenant.tenant_id, overrun="reject")

    with (
        pytest.raises(OverrunRejected) as refused,
        guard.reserve(tenant.tenant_id, **GPT4O) as hold,
    ):
        hold.commit(input_tokens=10_000, output_tokens=3_000)

    error = refused.value
    assert (error.status, error.reservation_id) == (409, hold.reservation_id)
    assert (error.charged_usd, error.actual_usd) == (Decimal("0.045"), Decimal("0.055"))
    assert hold.state == "committed"
    assert figures(guard, tenant.tenant_id) == (Decimal("0.045"), Decimal(0))


def test_tenant_settings_read_and_change_one_at_a_time(
    admin: CostGuard, guard: CostGuard, tenant: TenantKey
) -> None:
    assert guard.tenant_settings(tenant.tenant_id) == TenantSettingsState(
        overrun="record", on_expiry="charge", timezone="UTC", timezone_in_effect="UTC"
    )

    changed = admin.put_tenant_settings(tenant.tenant_id, on_expiry="release")
    assert (changed.overrun, changed.on_expiry) == ("record", "release")
    changed = admin.put_tenant_settings(tenant.tenant_id, overrun="reject")
    assert (changed.overrun, changed.on_expiry) == ("reject", "release")
    assert guard.quotas(tenant.tenant_id).settings == changed


def test_the_cli_shows_and_sets_tenant_settings(server: Server, tenant: TenantKey) -> None:
    env = {"COSTGUARD_URL": server.url, "COSTGUARD_API_KEY": ADMIN}
    run = CliRunner()

    shown = run.invoke(cli, ["settings", "show", tenant.tenant_id], env=env)
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.splitlines() == [
        f"tenant     {tenant.tenant_id}",
        "overrun    record",
        "on_expiry  charge",
        "timezone   UTC",
    ]

    args = ["settings", "set", tenant.tenant_id, "--overrun", "reject", "--on-expiry", "release"]
    changed = run.invoke(cli, [*args, "--json"], env=env)
    assert changed.exit_code == 0, changed.output
    assert changed.stdout.strip().startswith("{")
    assert '"overrun": "reject"' in changed.stdout and '"on_expiry": "release"' in changed.stdout

    # Only an admin changes them: the tenant's own key is refused, in one line.
    own = {**env, "COSTGUARD_API_KEY": tenant.api_key}
    refused = run.invoke(cli, ["settings", "set", tenant.tenant_id, "--overrun", "record"], env=own)
    assert refused.exit_code == 1 and refused.stderr.startswith("costguard: 403 ")
    assert len(refused.stderr.splitlines()) == 1


def test_a_commit_after_expiry_surfaces_its_usage_and_record_usage_lands_it(
    admin: CostGuard, guard: CostGuard, tenant: TenantKey
) -> None:
    # Given a tenant whose expired holds are released, and a 1-second hold
    admin.put_tenant_settings(tenant.tenant_id, on_expiry="release")
    with (
        pytest.raises(CommitNotLanded) as failed,
        guard.reserve(tenant.tenant_id, ttl_seconds=1, **GPT4O) as hold,
    ):
        time.sleep(1.5)  # the answer took longer than the hold
        hold.commit(CompletionUsage(prompt_tokens=10_000, completion_tokens=1_000, total_tokens=0))

    # Then the 409 (expired) became CommitNotLanded, carrying the usage
    error = failed.value
    assert (error.status, error.reservation_id) == (409, hold.reservation_id)
    assert error.problem["cause"]["reservation_status"] == "expired"
    assert not error.maybe_landed and hold.state == "unsettled"

    # When the app records it
    record = guard.record_usage(tenant.tenant_id, error.record())

    # Then the spend is in the ledger once, priced as the reservation's model
    assert (record.cost_usd, record.model) == (Decimal("0.035"), "gpt-4o")
    assert figures(guard, tenant.tenant_id) == (Decimal("0.035"), Decimal(0))


def test_record_usage_takes_the_sdks_usage_object(guard: CostGuard, tenant: TenantKey) -> None:
    usage = CompletionUsage(prompt_tokens=10_000, completion_tokens=1_000, total_tokens=11_000)

    record = guard.record_usage(tenant.tenant_id, usage, model="gpt-4o", user_id="u-2")

    assert (record.cost_usd, record.input_tokens, record.user_id) == (
        Decimal("0.035"),
        10_000,
        "u-2",
    )


def test_after_an_expiry_that_charged_the_hold_only_the_usage_beyond_it_is_recorded(
    guard: CostGuard, tenant: TenantKey
) -> None:
    # Given the default on_expiry: "charge", and a 1-second $0.045 hold that expires
    with (
        pytest.raises(CommitNotLanded) as failed,
        guard.reserve(tenant.tenant_id, ttl_seconds=1, **GPT4O) as hold,
    ):
        time.sleep(1.5)
        hold.commit(input_tokens=10_000, output_tokens=3_000)  # $0.055

    # Then the late commit says what the expiry charged
    error = failed.value
    assert error.charged_usd == Decimal("0.045")

    # When the app records what the error carries
    record = guard.record_unlanded(error)

    # Then only the $0.010 beyond the charge is added: $0.055 spent in all, once
    assert record is not None and record.cost_usd == Decimal("0.01")
    assert figures(guard, tenant.tenant_id) == (Decimal("0.055"), Decimal(0))

    # And recording it again (a retried job) counts once: the key is the reservation's
    again = guard.record_unlanded(error)
    assert again is not None and again.record_id == record.record_id
    assert figures(guard, tenant.tenant_id) == (Decimal("0.055"), Decimal(0))


def test_unknown_usage_after_an_expiry_that_charged_the_hold_records_nothing_more(
    guard: CostGuard, tenant: TenantKey
) -> None:
    with (
        pytest.raises(CommitNotLanded) as failed,
        guard.reserve(tenant.tenant_id, ttl_seconds=1, **GPT4O) as hold,
    ):
        hold.started()
        time.sleep(1.5)  # leaving the block commits unknown usage, after the expiry

    assert failed.value.usage.usage_unknown and failed.value.charged_usd == Decimal("0.045")
    assert guard.record_unlanded(failed.value) is None
    assert figures(guard, tenant.tenant_id) == (Decimal("0.045"), Decimal(0))


def test_a_zone_set_through_the_client_and_the_cli_waits_for_the_next_midnight(
    admin: CostGuard, server: Server, tenant: TenantKey
) -> None:
    # Given a UTC tenant, when the client moves it to Berlin
    before = datetime.now(UTC)
    changed = admin.put_tenant_settings(tenant.tenant_id, timezone="Europe/Berlin")
    after = datetime.now(UTC)

    # Then Berlin is its zone from the next UTC midnight on, and UTC until then
    assert (changed.timezone, changed.timezone_in_effect) == ("Europe/Berlin", "UTC")
    assert changed.timezone_effective_at in {
        period_end(Period.DAY, before),
        period_end(Period.DAY, after),
    }
    assert changed.overrun == "record"  # the other settings are kept

    # And the CLI shows the pending change and sets another zone (its errors name the field)
    env = {"COSTGUARD_URL": server.url, "COSTGUARD_API_KEY": ADMIN}
    run = CliRunner()
    shown = run.invoke(cli, ["settings", "show", tenant.tenant_id], env=env)
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert lines[3:5] == ["timezone               Europe/Berlin", "timezone_in_effect     UTC"]
    assert lines[5].startswith("timezone_effective_at  ")
    bad = run.invoke(
        cli, ["settings", "set", tenant.tenant_id, "--timezone", "Mars/Olympus"], env=env
    )
    assert bad.exit_code == 1 and bad.stderr.startswith("costguard: 422 ")
    assert "timezone" in bad.stderr
    back = run.invoke(cli, ["settings", "set", tenant.tenant_id, "--timezone", "UTC"], env=env)
    assert back.exit_code == 0, back.output
    assert back.stdout.splitlines()[3:] == ["timezone   UTC"]  # the pending change is cancelled


def test_the_cli_creates_a_tenant_in_a_zone(admin: CostGuard, server: Server) -> None:
    env = {"COSTGUARD_URL": server.url, "COSTGUARD_API_KEY": ADMIN}
    tenant_id = f"tz-{time.time_ns()}"
    args = ["tenants", "create", "--id", tenant_id, "--name", "Kolkata", "--json"]

    made = CliRunner().invoke(cli, [*args, "--timezone", "Asia/Kolkata"], env=env)

    assert made.exit_code == 0, made.output
    shown = admin.tenant_settings(tenant_id)
    assert (shown.timezone, shown.timezone_in_effect, shown.timezone_effective_at) == (
        "Asia/Kolkata",
        "Asia/Kolkata",
        None,
    )
