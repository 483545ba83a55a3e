"""The table's edge: keys are built and parsed in one place, and a cancelled transaction says
which items' conditions failed by key (on moto)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from costguard.ledger import Ledger
from costguard.quotas import Scope
from costguard.store import keys
from costguard.store.dynamo import Cancelled
from costguard.store.writes import ItemWrite, TransactionBuilder


@pytest.mark.parametrize(
    ("scope", "tenant_id", "user_id"),
    [(Scope.PLATFORM, None, None), (Scope.TENANT, "acme", None), (Scope.USER, "acme", "u-1")],
)
def test_a_counter_partition_parses_back_to_its_principal(
    scope: Scope, tenant_id: str | None, user_id: str | None
) -> None:
    pk = keys.principal_pk(scope, tenant_id or "-", user_id)
    assert keys.principal_of(pk) == (scope, tenant_id, user_id)


@pytest.mark.parametrize(
    "pk", ["TENANT#acme#REC", "TENANT#acme#ALERT", "PRICING", "APIKEY#k1", "HOLD#acme"]
)
def test_other_partitions_are_no_principal(pk: str) -> None:
    assert keys.principal_of(pk) is None


def test_day_keys_build_and_parse_the_same_day() -> None:
    at = datetime(2026, 11, 25, 23, 59, tzinfo=UTC)
    assert keys.day_key("acme", at) == ("TENANT#acme", "DAY#2026-11-25")
    assert keys.day_sk(date(2026, 11, 25)) == keys.day_sk(at) == keys.day_sk("2026-11-25")
    assert keys.day_of(keys.day_sk(at)) == "2026-11-25"


def test_partition_keys_name_their_tenant() -> None:
    assert keys.tenant_of_records_pk(keys.records_pk("acme#x")) == "acme#x"
    assert keys.tenant_of_holds_pk(keys.holds_pk("acme")) == "acme"
    assert keys.is_records_pk(keys.records_pk("acme"))
    assert keys.is_alerts_pk(keys.alerts_pk(None)) and keys.is_alerts_pk(keys.alerts_pk("acme"))
    assert keys.policy_pk(None) == keys.PLATFORM_PK
    assert keys.policy_pk("acme") == keys.tenant_pk("acme")


def test_a_cancellation_names_the_failed_items_by_key(ledger: Ledger) -> None:
    # Given an item that exists and one that does not
    existing, absent = ("T#store", "existing"), ("T#store", "absent")
    ledger.table.put(ItemWrite(key=existing, kind="Put", item={"n": 1}))
    # When one transaction requires the first to be absent and the second to exist
    tx = TransactionBuilder()
    tx.check(existing, "attribute_not_exists(pk)")
    tx.check(absent, "attribute_exists(pk)")
    with pytest.raises(Cancelled) as cancelled:
        ledger.table.transact(tx.writes)
    # Then both are named by key, each with what it held (nothing, for the absent one)
    failed = cancelled.value.by_key()
    assert set(failed) == {existing, absent}
    assert failed[existing] == {"pk": "T#store", "sk": "existing", "n": 1}
    assert failed[absent] is None
    assert cancelled.value.old(existing) == failed[existing]
    assert cancelled.value.old(("T#store", "other")) is None
