"""`python -m bench.codecs`: what the typed item codec costs on the request path (seconds).

Commit and record answer with `costguard.ledger.records.cost_record(item)`: the record item
decoded into `CostRecordItem`, then the API's `CostRecord`. Measured against building the
`CostRecord` straight from the dict (what the code did before the codec, kept here as the
reference) and against the decode alone.

The write side: the spend engine encodes each record it puts or sets through
`CostRecordItem.encode` (D107). Measured against the plain dict it built before (a copy that
drops None, what `in_item.record` did) and against building the frozen dataclass and calling
`to_item` (the form not chosen).

Counter items (D114): a default reserve reads its figures from the counter its `UpdateItem`
returned (`ALL_NEW`). Measured: the figures of its two quotas read through
`CounterItem.fields` against the pre-codec reads (`counter_figure`, kept here as the
reference), and the hold's stored map built by `InItemHold.value` against the dict `in_item.entry`
built before. Writes bench/results/codecs.{json,md}.
"""

from __future__ import annotations

import json
import timeit
from decimal import Decimal
from pathlib import Path
from typing import Any

from costguard.errors import LedgerCorrupted
from costguard.ledger.records import cost_record
from costguard.models import CostRecord
from costguard.money import ZERO
from costguard.store.codec import opt_int, parse_iso
from costguard.store.counters import CounterItem, InItemHold
from costguard.store.items import CostRecordItem

RESULTS = Path(__file__).parent / "results"

ITEM: dict[str, Any] = {
    "pk": "TENANT#acme#REC",
    "sk": "01KB0000000000000000000000",
    "tenant_id": "acme",
    "resource": "llm",
    "estimate_usd": Decimal("0.16884"),
    "created_at": "2026-11-25T12:00:00.000000Z",
    "user_id": "u-1",
    "plan": "l~0.16884~tm-la~dS0x",
    "status": "committed",
    "cost_usd": Decimal("0.00305"),
    "commit_hash": "abc",
    "recorded_at": "2026-11-25T12:00:01.000000Z",
    "overrun": False,
    "overrun_usd": Decimal(0),
    "settled_by": "commit",
    "provider": "openai",
    "model": "gpt-4o",
    "input_tokens": Decimal(900),
    "output_tokens": Decimal(80),
    "cached_input_tokens": Decimal(0),
    "price": {"input_per_million_usd": "2.5", "output_per_million_usd": "10"},
}
"""A committed record as a commit writes it (the shape of every guarded call's answer)."""


def direct(item: dict[str, Any]) -> CostRecord:
    """The pre-codec path, as `cost_record` was: the API model straight from the dict."""
    status = item["status"]
    reservation_id = None
    if status == "committed":
        reservation_id = f"{item['sk']}~{item['plan']}"
    return CostRecord(
        record_id=item["sk"],
        tenant_id=item["tenant_id"],
        reservation_id=reservation_id,
        status=status,
        resource=item["resource"],
        cost_usd=item["cost_usd"],
        estimated_usd=item.get("estimate_usd"),
        overrun=bool(item.get("overrun", False)),
        overrun_usd=item.get("overrun_usd", ZERO),
        usage_unknown=bool(item.get("usage_unknown", False)),
        settled_by=item.get("settled_by"),
        actual_usd=item.get("actual_usd"),
        provider=item.get("provider"),
        model=item.get("model"),
        tier=item.get("tier"),
        input_tokens=opt_int(item.get("input_tokens")),
        output_tokens=opt_int(item.get("output_tokens")),
        cached_input_tokens=opt_int(item.get("cached_input_tokens")),
        cache_write_input_tokens=opt_int(item.get("cache_write_input_tokens")),
        cache_write_1h_input_tokens=opt_int(item.get("cache_write_1h_input_tokens")),
        reasoning_tokens=opt_int(item.get("reasoning_tokens")),
        service_tier=item.get("service_tier"),
        seconds=item.get("seconds"),
        price=item.get("price"),
        user_id=item.get("user_id"),
        conversation_id=item.get("conversation_id"),
        task_id=item.get("task_id"),
        operation=item.get("operation"),
        metadata=item.get("metadata"),
        occurred_at=parse_iso(item["created_at"]),
        recorded_at=parse_iso(item["recorded_at"]),
    )


WRITE: dict[str, Any] = {k: v for k, v in ITEM.items() if k not in ("pk", "sk")} | {
    "user_id": None,  # an absent attribution, as the engine passes it
}
"""A committed record's attributes as the engine passes them to the encoder (times as text)."""


def plain_write(attributes: dict[str, Any]) -> dict[str, Any]:
    """The pre-codec write: the attributes as a dict, None dropped."""
    return {k: v for k, v in attributes.items() if v is not None}


def dataclass_write() -> dict[str, Any]:
    """The form not chosen: the frozen dataclass built from typed values, then `to_item`."""
    at = parse_iso(ITEM["created_at"])
    return CostRecordItem(
        record_id=ITEM["sk"],
        tenant_id="acme",
        status="committed",
        terms=ITEM["plan"],
        resource="llm",
        created_at=at,
        estimate_usd=ITEM["estimate_usd"],
        cost_usd=ITEM["cost_usd"],
        recorded_at=at,
        overrun=False,
        overrun_usd=ITEM["overrun_usd"],
        commit_hash="abc",
        settled_by="commit",
        provider="openai",
        model="gpt-4o",
        input_tokens=900,
        output_tokens=80,
        cached_input_tokens=0,
        price=ITEM["price"],
    ).to_item()


COUNTER: dict[str, Any] = {
    "pk": "TENANT#acme",
    "sk": "MONTH#2026-11",
    "q_llm_limit": Decimal("10.00"),
    "q_llm_avail": Decimal("9.25"),
    "q_llm_held": Decimal("0.50"),
    "q_llm_spent": Decimal("0.25"),
    "q_all_limit": Decimal("20.00"),
    "q_all_avail": Decimal("19.25"),
    "q_all_held": Decimal("0.50"),
    "q_all_spent": Decimal("0.25"),
    "pv": Decimal(3),
    "hn": Decimal(2),
    "h_01KB0000000000000000000001": {"p": "l~0.25~@tm-la~", "x": "2026-11-25T12:05:00.000000Z"},
    "h_01KB0000000000000000000002": {
        "p": "l~0.25~@tm-la~",
        "x": "2026-11-25T12:06:00.000000Z",
        "u": {"provider": "openai", "model": "gpt-4o"},
    },
    "gsi1pk": "HELD#acme",
    "gsi1sk": "MONTH#2026-11",
    "last_request_id": "req-1",
    "usd_llm": Decimal("0.25"),
}
"""A tenant month counter as a default reserve's `UpdateItem` returns it (`ALL_NEW`): two
quotas, the policy stamp, two in-item holds, its listing, the last request."""
PREFIXES = ("q_llm_", "q_all_")


def counter_figure(counter: dict[str, Any], attribute: str, default: Decimal) -> Decimal:
    """The pre-codec read of a counter's figure (`costguard.store.codec`, before D114)."""
    value = counter.get(attribute, default)
    if not isinstance(value, Decimal) or not value.is_finite():
        raise LedgerCorrupted(f"counter {counter.get('pk')}/{counter.get('sk')} is malformed")
    return value


def counter_before(item: dict[str, Any]) -> list[tuple[Decimal, Decimal, Decimal]]:
    """The figures of a reserve's quotas as `figures()` read them before the codec."""
    return [
        (
            counter_figure(item, p + "limit", Decimal(10)),
            counter_figure(item, p + "spent", ZERO),
            counter_figure(item, p + "held", ZERO),
        )
        for p in PREFIXES
    ]


def counter_codec(item: dict[str, Any]) -> list[tuple[Decimal, Decimal, Decimal]]:
    """The same figures through the counter codec (`ledger.figures.fields_of`)."""
    out = []
    for p in PREFIXES:
        f = CounterItem(item).fields(p)
        out.append((f.limit_or(Decimal(10)), f.spent, f.held))
    return out


def entry_before() -> dict[str, Any]:
    """The in-item hold's map as `in_item.entry` built it before D114."""
    described = {"provider": "openai", "model": "gpt-4o", "tier": None}
    found: dict[str, Any] = {"p": "l~0.25~@tm-la~", "x": "2026-11-25T12:06:00.000000Z"}
    if u := {k: v for k, v in described.items() if v is not None}:
        found["u"] = u
    return found


def entry_codec() -> dict[str, Any]:
    return InItemHold.value(
        "l~0.25~@tm-la~", "2026-11-25T12:06:00.000000Z", "openai", "gpt-4o", None
    )


def best_us(paths: dict[str, Any], number: int = 2000, rounds: int = 15) -> dict[str, float]:
    """The least µs per call of each path, the paths interleaved round by round so that a
    busy neighbour on shared cores slows them alike."""
    best = dict.fromkeys(paths, float("inf"))
    for _ in range(rounds):
        for name, fn in paths.items():
            best[name] = min(best[name], timeit.timeit(fn, number=number) / number * 1e6)
    return {name: round(us, 2) for name, us in best.items()}


def main() -> None:
    assert direct(ITEM) == cost_record(ITEM)
    figures = best_us(
        {
            "direct_us": lambda: direct(ITEM),
            "codec_us": lambda: cost_record(ITEM),
            "decode_only_us": lambda: CostRecordItem.from_item(ITEM),
        }
    )
    figures["added_us"] = round(figures["codec_us"] - figures["direct_us"], 2)
    assert CostRecordItem.encode(WRITE) == plain_write(WRITE)
    writes = best_us(
        {
            "write_dict_us": lambda: plain_write(WRITE),
            "write_encode_us": lambda: CostRecordItem.encode(WRITE),
            "write_dataclass_us": dataclass_write,
        }
    )
    figures |= writes
    figures["write_added_us"] = round(writes["write_encode_us"] - writes["write_dict_us"], 2)
    assert counter_before(COUNTER) == counter_codec(COUNTER)
    assert entry_before() == entry_codec()
    counters = best_us(
        {
            "counter_before_us": lambda: counter_before(COUNTER),
            "counter_codec_us": lambda: counter_codec(COUNTER),
            "entry_before_us": entry_before,
            "entry_codec_us": entry_codec,
        }
    )
    figures |= counters
    figures["counter_added_us"] = round(
        counters["counter_codec_us"] - counters["counter_before_us"], 2
    )
    figures["entry_added_us"] = round(counters["entry_codec_us"] - counters["entry_before_us"], 2)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "codecs.json").write_text(json.dumps(figures, indent=2) + "\n")
    (RESULTS / "codecs.md").write_text(
        "# The cost-record codec on the request path (`python -m bench.codecs`)\n\n"
        "| path | µs per answer (best of 15 interleaved rounds × 2,000) |\n|---|---|\n"
        f"| `CostRecord` straight from the dict (before) | {figures['direct_us']} |\n"
        f"| `cost_record`: `CostRecordItem.from_item` → `CostRecord` | {figures['codec_us']} |\n"
        f"| `CostRecordItem.from_item` alone | {figures['decode_only_us']} |\n"
        f"| added per commit or record | {figures['added_us']} |\n"
        "\nThe write: a committed record's attributes as the engine puts them (D107).\n\n"
        "| path | µs per record written |\n|---|---|\n"
        f"| a plain dict, None dropped (before) | {figures['write_dict_us']} |\n"
        f"| `CostRecordItem.encode` (chosen) | {figures['write_encode_us']} |\n"
        f"| `CostRecordItem(...)` then `to_item` (not chosen) | "
        f"{figures['write_dataclass_us']} |\n"
        f"| added per record written | {figures['write_added_us']} |\n"
        "\nCounter items (D114): a default reserve's figures of its two quotas from its "
        "`ALL_NEW` counter, and its hold's stored map.\n\n"
        "| path | µs per reserve |\n|---|---|\n"
        f"| figures by `counter_figure` (before) | {figures['counter_before_us']} |\n"
        f"| figures by `CounterItem.fields` (D114) | {figures['counter_codec_us']} |\n"
        f"| added per reserve with figures | {figures['counter_added_us']} |\n"
        f"| hold map as a dict (before) | {figures['entry_before_us']} |\n"
        f"| hold map by `InItemHold.value` (D114) | {figures['entry_codec_us']} |\n"
        f"| added per single-item reserve | {figures['entry_added_us']} |\n"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
