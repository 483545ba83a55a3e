"""`python -m bench profile`: where a guarded call's CPU goes, by cProfile (issue 22).

The API handler (`functions.api.handler.lambda_handler`) answers reserve + commit events, as
API Gateway sends them, with a tenant key; the ledger's real boto3 client (the production
factory) is answered by canned responses registered on botocore's `before-call` hook, so
botocore still builds and serializes every request (no signing, no HTTP, no parsing) and
nothing else stands between the handler and the profile. Then the stream handler
(`functions.alerts.handler.handler`) gets the stream records one guarded call causes,
one record per invocation and in batches of 100.

Writes bench/results/profile.md (top entries by own time, and by package) and profile.json.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import time
import warnings
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from bench.common import TABLE, TENANT, dummy_aws_environment

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
KEY_ID = "0123456789abcdef"
TENANT_KEY = f"cg.{KEY_ID}.bench-secret-bench-secret-bench-secret-0123"
RESERVE_BODY = {
    "resource": "llm",
    "provider": "openai",
    "model": "gpt-4o",
    "input_tokens": 1200,
    "output_tokens": 400,
    "user_id": "u-42",
}
COMMIT_BODY = {
    "resource": "llm",
    "provider": "openai",
    "model": "gpt-4o",
    "input_tokens": 1200,
    "output_tokens": 380,
}
DEFAULT_QUOTAS = {
    "tenant:llm:month": "100",
    "tenant:sandbox:month": "50",
    "tenant:all:month": "150",
}


def environment() -> None:
    dummy_aws_environment()
    os.environ.update(
        {
            "COSTGUARD_TABLE_NAME": TABLE,
            "COSTGUARD_ADMIN_KEY": "cg-admin-profile-bench",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_SERVICE_NAME": "costguard-api",
            "COSTGUARD_TRACES": "none",
        }
    )


def event(method: str, path: str, body: dict[str, Any] | None, **headers: str) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) event, as events/api/*.json."""
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {
            "content-type": "application/json",
            "authorization": f"Bearer {TENANT_KEY}",
            **headers,
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "costguard",
            "domainName": "localhost",
            "requestId": "req-1",
            "routeKey": "$default",
            "stage": "$default",
            "timeEpoch": 1795608000000,
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "1.2.3.4"},
        },
        "body": json.dumps(body) if body is not None else None,
        "isBase64Encoded": False,
    }


def context() -> Any:
    return SimpleNamespace(
        function_name="api",
        memory_limit_in_mb=512,
        aws_request_id="r",
        invoked_function_arn="arn:aws:lambda:us-east-1:1:function:api",
    )


def _policy_item() -> dict[str, Any]:
    quotas = {
        text: {
            "M": {
                "limit_usd": {"N": limit},
                "mode": {"S": "hard"},
                "thresholds": {"L": [{"N": t} for t in ("50", "80", "90", "100")]},
                "grace_pct": {"N": "0"},
            }
        }
        for text, limit in DEFAULT_QUOTAS.items()
    }
    return {
        "pk": {"S": f"TENANT#{TENANT}"},
        "sk": {"S": "POLICY"},
        "version": {"N": "1"},
        "quotas": {"M": quotas},
    }


def canned(client: Any, calls: dict[str, int]) -> None:
    """Answer every DynamoDB call of `client` from here (botocore's before-call hook, as
    botocore's Stubber does), counting them per operation."""
    from botocore.awsrequest import AWSResponse
    from costguard.auth import fingerprint

    # The stubs ask for HTTPHeaders; AWSResponse wraps any mapping in a HeadersDict.
    http = AWSResponse("https://dynamodb", 200, {}, None)  # type: ignore[arg-type]
    answers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
        "TransactWriteItems": lambda _: {},
        "UpdateItem": lambda _: {},
        "PutItem": lambda _: {},
        "Query": lambda _: {"Items": [], "Count": 0},
        "GetItem": lambda params: (
            {"Item": _policy_item()}
            if _asks_policy_item(params["body"].decode())
            else {
                "Item": {
                    "pk": {"S": f"APIKEY#{KEY_ID}"},
                    "sk": {"S": "APIKEY"},
                    "tenant_id": {"S": TENANT},
                    "role": {"S": "tenant"},
                    "fingerprint": {"S": fingerprint(TENANT_KEY)},
                    "created_at": {"S": "2026-11-25T12:00:00.000000Z"},
                    "revoked": {"BOOL": False},
                }
            }
        ),
        "BatchGetItem": lambda params: {
            "Responses": {TABLE: [_policy_item()]} if _asks_policy(params) else {TABLE: []},
            "UnprocessedKeys": {},
        },
    }

    def answer(model: Any, params: dict[str, Any], **_: Any) -> Any:
        calls[model.name] = calls.get(model.name, 0) + 1
        return http, answers[model.name](params)

    client.meta.events.register_first("before-call.dynamodb", answer)


def _asks_policy(params: dict[str, Any]) -> bool:
    keys = json.loads(params["body"])["RequestItems"][TABLE]["Keys"]
    return any(k["sk"]["S"] == "POLICY" and k["pk"]["S"] == f"TENANT#{TENANT}" for k in keys)


def _asks_policy_item(body: str) -> bool:
    """The tenant's policy is the one there is (no platform policy: a default deployment,
    whose reserves take the single-item path, D70)."""
    return '"POLICY"' in body and f'"TENANT#{TENANT}"' in body


def guarded_call(handler: Callable[..., Any], ctx: Any, minimal: bool) -> None:
    prefer = {"prefer": "return=minimal"} if minimal else {}
    reserved = handler(
        event("POST", f"/v1/tenants/{TENANT}/reservations", RESERVE_BODY, **prefer), ctx
    )
    assert reserved["statusCode"] == 201, reserved
    rid = json.loads(reserved["body"])["reservation_id"]
    committed = handler(
        event("POST", f"/v1/tenants/{TENANT}/reservations/{rid}/commit", COMMIT_BODY), ctx
    )
    assert committed["statusCode"] == 200, committed


def top(stats: pstats.Stats, key: str, limit: int, per: int) -> list[dict[str, Any]]:
    rows = []
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    index = 2 if key == "tottime" else 3
    for (file, line, name), (_cc, ncalls, tt, ct, _callers) in sorted(
        raw.items(), key=lambda kv: kv[1][index], reverse=True
    )[:limit]:
        rows.append(
            {
                "function": f"{_short(file)}:{line}({name})",
                "calls_per_op": round(ncalls / per, 2),
                "own_us_per_op": round(tt / per * 1e6, 1),
                "cum_us_per_op": round(ct / per * 1e6, 1),
            }
        )
    return rows


def _short(file: str) -> str:
    for marker in ("site-packages/", "/shared/", "/functions/", "/lib/python3"):
        if marker in file:
            return file.split(marker, 1)[1]
    return file


def by_package(stats: pstats.Stats, per: int) -> dict[str, float]:
    """Own time per op summed by where the code lives."""
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    totals: dict[str, float] = defaultdict(float)
    for (file, _line, _name), (_cc, _n, tt, _ct, _callers) in raw.items():
        totals[_package(file)] += tt
    return {k: round(v / per * 1e6, 1) for k, v in sorted(totals.items(), key=lambda kv: -kv[1])}


def _package(file: str) -> str:
    if "site-packages/" in file:
        return file.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if "/shared/costguard/" in file:
        return "costguard/" + file.split("/shared/costguard/", 1)[1].split("/", 1)[0]
    if "/functions/" in file:
        return "functions/" + file.split("/functions/", 1)[1].split("/", 1)[0]
    if file.startswith("<") or file == "~":
        return "builtins"
    return "stdlib"


def profile(run: Callable[[], None], count: int) -> tuple[pstats.Stats, float]:
    """Run `run` `count` times under cProfile; CPU seconds without the profiler too."""
    c0 = time.process_time()
    for _ in range(count):
        run()
    plain = time.process_time() - c0
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(count):
        run()
    profiler.disable()
    return pstats.Stats(profiler), plain


def api_profile(calls: int, minimal: bool) -> dict[str, Any]:
    from functions.api.deps import get_keys, get_ledger
    from functions.api.handler import lambda_handler

    counted: dict[str, int] = {}
    ledger = get_ledger()
    canned(ledger.table.client, counted)
    get_keys()
    ctx = context()
    for _ in range(200):  # warm: caches, imports, the allocator
        guarded_call(lambda_handler, ctx, minimal)
    counted.clear()
    stats, plain = profile(lambda: guarded_call(lambda_handler, ctx, minimal), calls)
    return {
        "guarded_calls": calls,
        "prefer_minimal": minimal,
        "cpu_us_per_guarded_call_unprofiled": round(plain / calls * 1e6, 1),
        # profile() runs the guarded call `calls` times unprofiled and as many profiled
        "dynamodb_calls_per_guarded_call": {
            k: round(v / (2 * calls), 4) for k, v in counted.items()
        },
        "by_package": by_package(stats, calls),
        "top_own": top(stats, "tottime", 30, calls),
        "top_cumulative": top(stats, "cumtime", 40, calls),
    }


def ledger_profile(calls: int) -> dict[str, Any]:
    """reserve and commit through the ledger alone (no handler), as `python -m bench`'s
    section 1 times them: the production client answered by canned responses, a tenant month
    quota, figures off; each profiled on its own over `calls` calls."""
    from costguard.ledger import make_client, policies

    from bench.common import actual, bench_settings, estimate, make_ledger

    settings = bench_settings()
    client = make_client(settings)
    ledger = make_ledger(client, settings)
    counted: dict[str, int] = {}
    canned(client, counted)
    fresh, policies.PLATFORM_FRESH_SECONDS = policies.PLATFORM_FRESH_SECONDS, float("inf")
    try:
        ids: list[str] = []

        def reserve() -> None:
            ids.append(ledger.reserve(TENANT, estimate(), with_figures=False).reservation_id)

        def commit() -> None:
            ledger.commit(TENANT, ids.pop(), actual())

        for _ in range(200):
            reserve()
            commit()
        reserve_stats, reserve_plain = profile(reserve, calls)
        commit_stats, commit_plain = profile(commit, calls)
    finally:
        policies.PLATFORM_FRESH_SECONDS = fresh
    return {
        name: {
            "cpu_us_per_call_unprofiled": round(plain / calls * 1e6, 1),
            "by_package": by_package(stats, calls),
            "top_own": top(stats, "tottime", 20, calls),
            "top_cumulative": top(stats, "cumtime", 25, calls),
        }
        for name, stats, plain in (
            # profile() runs each twice (plain, then profiled): reserve's ids feed commit's
            ("reserve", reserve_stats, reserve_plain),
            ("commit", commit_stats, commit_plain),
        )
    }


def interleaved(rounds: int, minimal: bool) -> dict[str, Any]:
    """Unprofiled CPU p50 per op, timed in interleaved rounds (machine drift hits all alike):
    a guarded call through the handler, the same through the ledger alone, a default-client
    `update_item` (the bare call every ratio uses), and the stream handler over one guarded
    call's records, one invocation each."""
    import boto3
    from costguard.models import CommitRequest, ReserveRequest

    from bench.common import Samples, bare_update_params, percentiles_us, ratio, time_interleaved
    from functions.alerts import handler as stream
    from functions.api.deps import get_ledger
    from functions.api.handler import lambda_handler

    ledger, ctx = get_ledger(), context()
    default = boto3.client("dynamodb")
    canned(default, {})
    bare = bare_update_params(f"TENANT#{TENANT}", "100")
    records = delivered(stream_events())
    canned(stream.root().book.table.client, {})
    singles = [{"Records": [r]} for r in records]
    reserve_body, commit_body = ReserveRequest.model_validate(RESERVE_BODY), COMMIT_BODY

    def ledger_only(_: int) -> None:
        held = ledger.reserve(TENANT, reserve_body, with_figures=not minimal)
        usage = CommitRequest.model_validate(commit_body).usage()
        ledger.commit(TENANT, held.reservation_id, usage)

    def stream_records(_: int) -> None:
        for e in singles:
            stream.handler(e, ctx)

    ops: dict[str, Callable[[int], object]] = {
        "guarded_call_handler": lambda _: guarded_call(lambda_handler, ctx, minimal),
        "guarded_call_ledger_only": ledger_only,
        "bare_update_item_default_client": lambda _: default.update_item(**bare),
        "stream_records_of_one_guarded_call": stream_records,
    }
    for i in range(100):
        for op in ops.values():
            op(i)
    timed: dict[str, Samples] = time_interleaved(rounds, ops)
    p50 = {name: percentiles_us(s.cpu_ns)["p50_us"] for name, s in timed.items()}
    base = p50["bare_update_item_default_client"]
    return {
        "rounds": rounds,
        "cpu_p50_us": p50,
        "ratio_vs_bare_update_item": {k: ratio(v, base) for k, v in p50.items()},
        "stream_records": len(records),
    }


def stream_events() -> list[dict[str, Any]]:
    """The stream records of one guarded call (reserve + commit), from moto's stream."""
    import boto3
    from costguard.ledger import Ledger, LedgerTable
    from costguard.settings import Settings
    from costguard.store.schema import create_table
    from moto import mock_aws

    from bench.common import actual, estimate, seed
    from local.streams import MotoStream

    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table(client, TABLE)
        settings = Settings(table_name=TABLE)
        ledger = Ledger(LedgerTable(client, TABLE, settings), settings)
        seed(ledger, DEFAULT_QUOTAS, {})
        ledger.reserve(TENANT, estimate(), with_figures=False)  # the month's first: counters
        stream = MotoStream(TABLE)
        stream.drain()
        stream.take()
        held = ledger.reserve(TENANT, estimate(), with_figures=False)
        ledger.commit(TENANT, held.reservation_id, actual())
        stream.drain()
        return stream.take()


def delivered(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records the event source mapping's filters let through to the stream function."""
    from costguard.topology import LEDGER_STREAM

    return [r for r in records if LEDGER_STREAM.accepts(r)]


def stream_profile(rounds: int) -> dict[str, Any]:
    from functions.alerts import handler as stream

    written = stream_events()
    records = delivered(written)
    counted: dict[str, int] = {}
    watch = stream.root()
    canned(watch.book.table.client, counted)
    ctx = context()
    batch = {"Records": records * (100 // len(records))}
    one_by_one = [{"Records": [r]} for r in records]

    def singles() -> None:
        for e in one_by_one:
            stream.handler(e, ctx)

    def batched() -> None:
        stream.handler(batch, ctx)

    for _ in range(100):
        singles()
        batched()
    single_stats, single_plain = profile(singles, rounds)
    batch_stats, batch_plain = profile(batched, max(rounds // 10, 10))
    per_batch = len(batch["Records"])
    return {
        "records_written_per_guarded_call": len(written),
        "records_per_guarded_call": len(records),
        "record_kinds": [f"{r['eventName']} {r['dynamodb']['Keys']['sk']['S']}" for r in records],
        "one_record_per_invocation_cpu_us_per_record": round(
            single_plain / (rounds * len(records)) * 1e6, 1
        ),
        "batch_of_100_cpu_us_per_record": round(
            batch_plain / (max(rounds // 10, 10) * per_batch) * 1e6, 1
        ),
        "dynamodb_calls": counted,
        "by_package_one_per_invocation": by_package(single_stats, rounds * len(records)),
        "top_own_one_per_invocation": top(single_stats, "tottime", 20, rounds * len(records)),
        "top_own_batch": top(batch_stats, "tottime", 15, max(rounds // 10, 10) * per_batch),
    }


CUTS = """## Where the time went, and what was cut (issue 22, D102–D103)

Stubbed, through the ledger alone, a reserve (one `UpdateItem`) was 2.33× and a commit (one
`TransactWriteItems` of 3 actions) 3.35× a default-client `update_item` (`python -m bench`,
section 1, 2026-12-02 05:18). Half of the commit was botocore, not costguard: its JSON
serializer walked every attribute value against the service model (≈ 130 µs of a 289 µs bare
`TransactWriteItems`, where `json.dumps` of the same request takes ≈ 25 µs) and its endpoint
rules ran a JMESPath search over the transaction's items for `ResourceArnList` on every call
(≈ 85 µs). The ledger's requests are already wire form, so the ledger's client dumps them and
remembers the endpoint per operation and table (D102, byte for byte against botocore's:
bare `TransactWriteItems` 289 → 85 µs, `UpdateItem` 115 → 58 µs). With telemetry off, metric
figures were still computed and every ledger call timed (D103). What remains, by the
profiles below: in a commit, parsing the reservation id (its ULID and the round-trip check of
the plan, ≈ 20 µs), building the three writes and their expressions (`settle_hold`,
`roll_up`, `take_out`, `to_transact_item`), the API model of the record (`cost_record`:
codec + pydantic) and the request hash; botocore's remaining per-call machinery (events,
user agent, checksum context) is ≈ 40–55 µs a call. After: reserve 1.63×, commit 1.92×
(`python -m bench`, 2026-12-02 08:53, a loaded 2-core machine: ratios are interleaved).

Through the API handler, a request costs ≈ 0.55 ms of resolver, middleware and response
work before any ledger code (`GET /v1/health`), so two requests cannot be 2.5× one bare
`UpdateItem` in process: 2 × (1.89 ms floor + 0.55 ms) is 2.58× already (`bench/results/ledger.md`
section 6). Through `make run`'s HTTP front end the floor pays the same front end, and that
ratio is the one `python -m bench servercpu` reports.
"""


def render(results: dict[str, Any]) -> str:
    api, s, ratios = results["api"], results["stream"], results["interleaved"]
    lines = [
        "# Where a guarded call's CPU goes (cProfile)",
        "",
        f"Unprofiled, {ratios['rounds']} interleaved rounds (CPU p50, µs; × a default-client "
        "`update_item` answered the same way):",
        "",
        "| op | CPU p50 µs | × bare update_item |",
        "|---|---|---|",
        *[
            f"| {k} | {v} | {ratios['ratio_vs_bare_update_item'][k]} |"
            for k, v in ratios["cpu_p50_us"].items()
        ],
        "",
        f"{results['finished_at']} · `python -m bench profile` · {api['guarded_calls']} guarded "
        "calls (reserve + commit through the API handler, a tenant key, "
        f"`Prefer: return=minimal`: {api['prefer_minimal']}); DynamoDB answered by canned "
        "responses on botocore's before-call hook (requests still built and serialized).",
        "",
        f"CPU per guarded call without the profiler: **{api['cpu_us_per_guarded_call_unprofiled']}"
        " µs** (two requests). DynamoDB calls per guarded call: "
        + ", ".join(f"{k} {v}" for k, v in api["dynamodb_calls_per_guarded_call"].items())
        + ". Profiled times below are inflated by cProfile (~1.5–2×); compare rows, not totals.",
        "",
        CUTS,
        "## By package (own time, µs per guarded call, profiled)",
        "",
        "| where | µs |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in list(api["by_package"].items())[:14]],
        "",
        "## Top functions by cumulative time (µs per guarded call)",
        "",
        "| function | calls/op | own µs | cumulative µs |",
        "|---|---|---|---|",
        *[
            f"| `{r['function']}` | {r['calls_per_op']} | {r['own_us_per_op']} | "
            f"{r['cum_us_per_op']} |"
            for r in api["top_cumulative"]
        ],
        "",
        "## Top functions by own time",
        "",
        "| function | calls/op | own µs | cumulative µs |",
        "|---|---|---|---|",
        *[
            f"| `{r['function']}` | {r['calls_per_op']} | {r['own_us_per_op']} | "
            f"{r['cum_us_per_op']} |"
            for r in api["top_own"][:20]
        ],
        "",
        "## The ledger alone: reserve and commit (stubbed client, no handler)",
        "",
        "As `python -m bench` section 1 times them (a tenant month quota, reserve without "
        "figures: one UpdateItem; commit: one TransactWriteItems of 3 actions). Unprofiled CPU "
        "per call: "
        + ", ".join(
            f"{name} **{part['cpu_us_per_call_unprofiled']} µs**"
            for name, part in results["ledger"].items()
        )
        + ".",
        "",
        *[
            line
            for name, part in results["ledger"].items()
            for line in (
                f"### {name}: by package (own time, µs per call, profiled)",
                "",
                "| where | µs |",
                "|---|---|",
                *[f"| {k} | {v} |" for k, v in list(part["by_package"].items())[:10]],
                "",
                f"### {name}: top functions by cumulative time (µs per call, profiled)",
                "",
                "| function | calls/op | own µs | cumulative µs |",
                "|---|---|---|---|",
                *[
                    f"| `{r['function']}` | {r['calls_per_op']} | {r['own_us_per_op']} | "
                    f"{r['cum_us_per_op']} |"
                    for r in part["top_cumulative"]
                ],
                "",
            )
        ],
        "## The stream handler, per record",
        "",
        f"A guarded call writes {s['records_written_per_guarded_call']} stream records; the "
        f"event source mapping's filters deliver {s['records_per_guarded_call']} "
        f"({'; '.join(s['record_kinds'])}). CPU per delivered record, unprofiled: "
        f"**{s['one_record_per_invocation_cpu_us_per_record']} µs** one record per invocation, "
        f"**{s['batch_of_100_cpu_us_per_record']} µs** in batches of 100.",
        "",
        "| where (one record per invocation) | µs per record |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in list(s["by_package_one_per_invocation"].items())[:10]],
        "",
        "| function (one record per invocation) | calls/record | own µs | cumulative µs |",
        "|---|---|---|---|",
        *[
            f"| `{r['function']}` | {r['calls_per_op']} | {r['own_us_per_op']} | "
            f"{r['cum_us_per_op']} |"
            for r in s["top_own_one_per_invocation"][:12]
        ],
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench profile")
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--full", action="store_true", help="reserve with figures (no Prefer)")
    parser.add_argument("--name", default="profile")
    args = parser.parse_args(argv)
    environment()
    warnings.simplefilter("ignore")  # Powertools' "no metrics to publish", once per request
    results = {
        "finished_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "ledger": ledger_profile(args.calls),
        "api": api_profile(args.calls, minimal=not args.full),
        "stream": stream_profile(max(args.calls // 10, 50)),
        "interleaved": interleaved(args.calls // 3, minimal=not args.full),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(results, indent=1) + "\n")
    markdown = render(results)
    (RESULTS / f"{args.name}.md").write_text(markdown)
    print(markdown)


if __name__ == "__main__":
    main()
