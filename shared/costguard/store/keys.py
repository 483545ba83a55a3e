"""Every key of the single table, built and parsed in one place.

Items by partition (docs/data-model.md has the access patterns):
- `PLATFORM` / `POLICY`, `TENANT#<t>` / `POLICY` and `TENANT`: policies and the registration;
- `PLATFORM`, `TENANT#<t>`, `TENANT#<t>#USER#<u>` / `DAY#…`, `WEEK#…`, `MONTH#…`: counters (a
  tenant's day item is also its day rollup);
- `TENANT#<t>#REC` / `<ulid>`: cost records (lane i > 0 of a hot tenant: `TENANT#<t>#REC#S<ii>`,
  D98); `TENANT#<t>#IDEM` / `<sha256>`: idempotency markers;
- `TENANT#<t>` / `FORECAST#<quota>`: forecasts; `…#ALERT` / `A#<ulid>`: alerts;
- `PRICING` / `m#…`, `t#…`: operator prices; `APIKEY#<id>`: API keys;
- index keys: `HOLD#<t>` (lane i: `HOLD#<t>#S<ii>`) and `OUTBOX` (the `holds` index),
  `ACTIVE#<day>#<shard>` (`active`).

A hot tenant's lanes (D98): a spend that takes slice i of one of the tenant's sliced quotas
writes its record, its `holds` index entry and its day rollup in lane i: the same keys with
`#S<ii>` after the partition key (lane 0 is today's keys, so an unsliced tenant's keys never
change). Readers cover lanes 0..`Policy.lanes`−1.
"""

from __future__ import annotations

import zlib
from datetime import date, datetime

from costguard.periods import Period, period_key, zone
from costguard.quotas import Scope

Key = tuple[str, str]
PLATFORM_PK = "PLATFORM"
POLICY_SK = "POLICY"
TENANT_SK = "TENANT"
PRICING_PK = "PRICING"
MODEL_PRICE_PREFIX = "m#"
TIER_PRICE_PREFIX = "t#"
HOLD_PREFIX = "HOLD#"
DAY_PREFIX = "DAY#"
FORECAST_PREFIX = "FORECAST#"
ALERT_RECORD_PREFIX = "A#"
ALERT_MARKER_PREFIX = "K#"
API_KEY_SK = "APIKEY"
OUTBOX = "OUTBOX"
"""The `holds` index partition of alerts waiting for delivery (costguard.alerts)."""


def tenant_pk(tenant_id: str) -> str:
    return f"TENANT#{tenant_id}"


def records_pk(tenant_id: str, lane: int = 0) -> str:
    """The partition of a tenant's cost records in `lane` (D98; lane 0: `TENANT#<t>#REC`)."""
    return _in_lane(f"TENANT#{tenant_id}#REC", lane)


def _in_lane(pk: str, lane: int) -> str:
    return pk if lane == 0 else f"{pk}{SLICE_MARK}{lane:02d}"


def _lane_of(pk: str) -> tuple[str, int]:
    """(the lane-0 key, the lane) of a lane's partition key; any other key is lane 0."""
    base, mark, index = pk.rpartition(SLICE_MARK)
    if mark and len(index) == 2 and index.isdigit() and int(index) > 0:
        return base, int(index)
    return pk, 0


def tenant_of_records_pk(pk: str) -> str:
    """The tenant of a `TENANT#<t>#REC` (or `…#REC#S<ii>`) partition key."""
    return _lane_of(pk)[0].removeprefix("TENANT#").removesuffix("#REC")


def is_records_pk(pk: str) -> bool:
    return _lane_of(pk)[0].endswith("#REC")


def record_key(tenant_id: str, record_id: str, lane: int = 0) -> Key:
    """A cost record's (or reservation's) key: its id, in its lane's partition."""
    return records_pk(tenant_id, lane), record_id


def idempotency_pk(tenant_id: str) -> str:
    return f"TENANT#{tenant_id}#IDEM"


def holds_pk(tenant_id: str, lane: int = 0) -> str:
    """The `holds` index partition of a tenant's live reservations in `lane` (D98)."""
    return _in_lane(f"{HOLD_PREFIX}{tenant_id}", lane)


def tenant_of_holds_pk(pk: str) -> str:
    return _lane_of(pk)[0].removeprefix(HOLD_PREFIX)


def policy_pk(tenant_id: str | None) -> str:
    """The partition of the platform's (None) or a tenant's policy item."""
    return PLATFORM_PK if tenant_id is None else tenant_pk(tenant_id)


def principal_pk(scope: Scope, tenant_id: str, user_id: str | None) -> str:
    if scope is Scope.PLATFORM:
        return PLATFORM_PK
    if scope is Scope.TENANT:
        return tenant_pk(tenant_id)
    return f"TENANT#{tenant_id}#USER#{user_id}"


def principal_of(pk: str) -> tuple[Scope, str | None, str | None] | None:
    """(scope, tenant, user) of a counter's partition key; None for any other partition."""
    if pk == PLATFORM_PK:
        return Scope.PLATFORM, None, None
    parts = pk.split("#")
    if len(parts) == 2 and parts[0] == "TENANT":
        return Scope.TENANT, parts[1], None
    if len(parts) == 4 and parts[0] == "TENANT" and parts[2] == "USER":
        return Scope.USER, parts[1], parts[3]
    return None


SLICE_MARK = "#S"
"""A counter's slice i > 0 is the same period under `<pk>#S<ii>` (decisions D74)."""


def slice_pk(pk: str, index: int) -> str:
    """The partition of slice `index` of the counter partition `pk` (slice 0: `pk` itself)."""
    return pk if index == 0 else f"{pk}{SLICE_MARK}{index:02d}"


def split_slice(pk: str) -> tuple[str, int]:
    """(the counter partition, slice index) of a counter slice's partition key; any other
    key is its own slice 0."""
    base, mark, index = pk.rpartition(SLICE_MARK)
    if mark and len(index) == 2 and index.isdigit() and principal_of(base) is not None:
        return base, int(index)
    return pk, 0


def day_key(tenant_id: str, at: datetime, tz: str = "UTC", lane: int = 0) -> Key:
    """The tenant's day item: its day counter and its day rollup (the local day in `tz`); in
    lane i > 0 the rollup's share of that lane (slice i's day item, `TENANT#<t>#S<ii>`)."""
    return rollup_pk(tenant_id, lane), period_key(Period.DAY, at, zone(tz))


POLICY_REPLICAS = 16
"""At most this many copies of a hot tenant's policy version (D99): the policy item itself and
replicas 1..15, so a policy write stays within a transaction's 100 items beside 64 slices."""


def policy_replica_pk(tenant_id: str, lane: int, replicas: int) -> str:
    """The partition of the policy copy a spend in `lane` proves (D99): lane mod `replicas`;
    copy 0 is the policy item itself (`TENANT#<t>`), copy r `TENANT#<t>#S<rr>` / `POLICY`
    (holding only `version`)."""
    return slice_pk(tenant_pk(tenant_id), lane % max(1, replicas))


def rollup_pk(tenant_id: str, lane: int = 0) -> str:
    """The partition of a tenant's day rollups in `lane` (lane 0: `TENANT#<t>`, D98)."""
    return slice_pk(tenant_pk(tenant_id), lane)


def day_sk(day: date | datetime | str) -> str:
    """`DAY#2026-11-25`: the sort key of a day item (a date, a time, or `2026-11-25`)."""
    return f"{DAY_PREFIX}{day:%Y-%m-%d}" if not isinstance(day, str) else f"{DAY_PREFIX}{day}"


def day_of(sk: str) -> str:
    """`2026-11-25` of a day item's sort key."""
    return sk.removeprefix(DAY_PREFIX)


def alerts_pk(tenant_id: str | None) -> str:
    return "PLATFORM#ALERT" if tenant_id is None else f"TENANT#{tenant_id}#ALERT"


def alert_sk(alert_id: str) -> str:
    return ALERT_RECORD_PREFIX + alert_id


def alert_marker_key(tenant_id: str | None, dedup_key: str) -> Key:
    """The item that makes an alert's recording once-only (one per dedup key)."""
    return alerts_pk(tenant_id), ALERT_MARKER_PREFIX + dedup_key


def outbox_sk(due: str, alert_id: str) -> str:
    """The outbox index's sort key: when (a fixed-width time) the sweeper may next redrive
    the alert."""
    return f"{due}#{alert_id}"


def is_alerts_pk(pk: str) -> bool:
    return pk.endswith("ALERT")


def forecast_key(tenant_id: str, quota_id: str) -> Key:
    return tenant_pk(tenant_id), FORECAST_PREFIX + quota_id


def api_key_pk(key_id: str) -> str:
    return f"APIKEY#{key_id}"


def key_id_of(pk: str) -> str:
    """The key id of an `APIKEY#<id>` partition key."""
    return pk.removeprefix("APIKEY#")


def model_price_sk(provider: str, model: str, effective_from: str) -> str:
    return f"{MODEL_PRICE_PREFIX}{provider}#{model}#{effective_from}"


def tier_price_sk(tier: str, effective_from: str) -> str:
    return f"{TIER_PRICE_PREFIX}{tier}#{effective_from}"


def is_model_price(sk: str) -> bool:
    return sk.startswith(MODEL_PRICE_PREFIX)


ROLLUP_MODEL = "usd#m#"
"""A day rollup's spend by model: `usd#m#<provider>/<model>`."""
ROLLUP_TIER = "usd#t#"
"""A day rollup's sandbox spend by tier: `usd#t#<tier>`."""
ROLLUP_BUCKET = "usd#b#"
"""A day rollup's spend by user bucket: `usd#b#<bucket>`."""
ROLLUP_BUCKET_USER = "usr#b#"
"""A day rollup's last user seen in a bucket: `usr#b#<bucket>`."""
USER_BUCKETS = 16
"""Users are rolled up per day into this many buckets (`usd#b#07`), whatever their number:
the day item stays small (its write cost is per KB) and never nears DynamoDB's 400 KB."""
ACTIVE_SHARDS = 16
"""The `active` index spreads a day's tenants over this many partition keys: the first
commits after midnight UTC of every tenant land within seconds of each other."""


def _stable_hash(text: str) -> int:
    return zlib.crc32(text.encode())


def user_bucket(user_id: str) -> str:
    """The day rollup's bucket of a user: `usd#b#<bucket>` and `usr#b#<bucket>`."""
    return f"{_stable_hash(user_id) % USER_BUCKETS:02d}"


def active_pk(day: str, shard: int) -> str:
    """`ACTIVE#2026-11-25#07`: one partition of the tenants that spent on a day."""
    return f"ACTIVE#{day}#{shard:02d}"


def active_shard(tenant_id: str) -> int:
    return _stable_hash(tenant_id) % ACTIVE_SHARDS
