"""D71: every write of a tenant's policy stamps its new version (`pv`) on the tenant's counter
items of the current periods, in the same transaction; a spend that proved the version stamps
it on the tenant counters it writes. On moto (single-threaded)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from costguard.ledger import Ledger
from costguard.models import TenantSettings
from costguard.quotas import OnOverrun, QuotaDefinition, QuotaId
from costguard.settings import Settings
from costguard.store.keys import POLICY_SK, tenant_pk

from tests.conftest import Clock
from tests.helpers import estimate, set_quota

T = "acme"
MONTH = (tenant_pk(T), "MONTH#2026-11")
DAY = (tenant_pk(T), "DAY#2026-11-25")


def _version(ledger: Ledger) -> int:
    item = ledger.table.get((tenant_pk(T), POLICY_SK))
    assert item is not None
    return int(item["version"])


def _pv(ledger: Ledger, key: tuple[str, str]) -> int | None:
    item = ledger.table.get(key)
    assert item is not None, key
    return None if "pv" not in item else int(item["pv"])


@pytest.fixture
def acme(ledger: Ledger) -> Ledger:
    ledger.create_tenant(T, "Acme Inc", "pro")
    set_quota(ledger, T, "tenant:llm:month", "10.00")
    set_quota(ledger, T, "tenant:all:day", "5.00")
    ledger.reserve(T, estimate("1"))  # creates the month and day counters
    return ledger


def test_a_reserve_stamps_the_version_it_proved_on_the_counters_it_creates(acme: Ledger) -> None:
    assert _pv(acme, MONTH) == _pv(acme, DAY) == _version(acme)


@pytest.mark.parametrize(
    "write",
    [
        pytest.param(lambda lg: set_quota(lg, T, "tenant:llm:month", "20"), id="put_quota"),
        pytest.param(lambda lg: set_quota(lg, T, "user:bob:llm:day", "1"), id="put_user_quota"),
        pytest.param(
            lambda lg: lg.put_quota(
                T, QuotaDefinition(QuotaId.parse("tenant:llm:month"), Decimal("9"), slices=2)
            ),
            id="put_sliced",
        ),
        pytest.param(lambda lg: lg.set_paused(T, True), id="pause"),
        pytest.param(lambda lg: lg.set_paused(T, True, "bob"), id="pause_user"),
        pytest.param(
            lambda lg: lg.put_tenant_settings(T, TenantSettings(overrun="reject")), id="settings"
        ),
        pytest.param(
            lambda lg: lg.delete_quota(T, QuotaId.parse("tenant:all:day")), id="delete_quota"
        ),
    ],
)
def test_every_tenant_policy_write_stamps_its_new_version_on_every_current_counter(
    acme: Ledger, write: object
) -> None:
    # Given counters stamped with the policy's version
    before = _version(acme)

    # When the policy is written
    write(acme)  # type: ignore[operator]

    # Then its version moved by exactly one and both counters carry it
    assert _version(acme) == before + 1
    assert _pv(acme, MONTH) == _pv(acme, DAY) == before + 1


def test_a_stamp_creates_no_counter(acme: Ledger) -> None:
    set_quota(acme, T, "tenant:llm:week", "7")

    assert acme.table.get((tenant_pk(T), "WEEK#2026-W48")) is None


def test_near_a_boundary_the_adjacent_periods_counter_is_stamped_too(
    ledger: Ledger, clock: Clock
) -> None:
    # Given a tenant whose next month's counter exists (a process whose clock runs ahead)
    clock.at = datetime(2026, 11, 30, 23, 58, tzinfo=UTC)
    ledger.create_tenant(T, "Acme Inc", "pro")
    set_quota(ledger, T, "tenant:llm:month", "10.00")
    clock.advance(minutes=3)
    ledger.reserve(T, estimate("1"))
    clock.at = datetime(2026, 11, 30, 23, 58, tzinfo=UTC)

    # When the policy is written two minutes before the boundary
    set_quota(ledger, T, "tenant:llm:month", "20.00")

    # Then December's counter carries the new version as well
    assert _pv(ledger, (tenant_pk(T), "MONTH#2026-12")) == _version(ledger)


def test_a_platform_quota_write_stamps_no_tenant_counter(acme: Ledger) -> None:
    before = _pv(acme, MONTH)

    set_quota(acme, None, "platform:llm:month", "1000")

    assert _pv(acme, MONTH) == before


def test_registering_a_tenant_whose_policy_was_written_first_moves_its_version(
    ledger: Ledger, settings: Settings, clock: Clock
) -> None:
    # Given quotas written before the tenant was registered, counters holding, and a second
    # process that cached that policy by reserving in the counter item
    set_quota(ledger, T, "tenant:llm:month", "10.00")
    ledger.reserve(T, estimate("1"))
    stale = Ledger(ledger.table, settings, clock=clock)
    stale.reserve(T, estimate("1"))
    before = _version(ledger)

    # When the tenant is registered with settings
    ledger.create_tenant(T, "Acme Inc", "pro", TenantSettings(overrun="reject"))

    # Then the policy's version moved by one, the counter carries it, and the other process's
    # next reserve meets the new version and reads the settings
    assert _version(ledger) == before + 1
    assert _pv(ledger, MONTH) == before + 1
    stale.reserve(T, estimate("1"))
    assert stale.policies(T)[1].overrun is OnOverrun.REJECT
