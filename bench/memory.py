"""`python -m bench memory`: peak memory of each function after its cold start and 50 warm
invocations of its sample event (moto in-process), each in its own fresh interpreter.

The Lambda memory settings in infra/ are this figure with headroom, except the API's, which is
sized for CPU (Lambda gives CPU in proportion to memory; the reserve path is CPU-bound).
Writes bench/results/memory.{json,md}.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).parents[1]

PROBE = r"""
import json, os, resource, sys
from types import SimpleNamespace
os.environ.update(AWS_DEFAULT_REGION="us-east-1", AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x",
                  POWERTOOLS_METRICS_NAMESPACE="costguard", COSTGUARD_TABLE_NAME="costguard-mem",
                  COSTGUARD_ADMIN_KEY="cg-admin-sample-key-for-events")
from moto import mock_aws
import boto3
from local import moto_fixes
moto_fixes.apply()
name, module, event_file = sys.argv[1:4]
ctx = SimpleNamespace(function_name=name, memory_limit_in_mb=512, aws_request_id="m",
                      invoked_function_arn="arn:aws:lambda:us-east-1:1:function:" + name,
                      get_remaining_time_in_millis=lambda: 300000)
with mock_aws():
    from costguard.store.schema import create_table
    create_table(boto3.client("dynamodb"), "costguard-mem")
    import importlib
    if module == "-":  # the floor: Python, boto3, moto and the table, no costguard code
        entry = lambda event, context: None
    else:
        handler_module = importlib.import_module(module)
        entry = getattr(handler_module, "lambda_handler", None) or handler_module.handler
    event = json.loads(open(event_file).read()) if event_file != "-" else {}
    import contextlib, io
    for _ in range(50):
        with contextlib.redirect_stdout(io.StringIO()):
            try:
                entry(event, ctx)
            except Exception:
                pass
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""

FUNCTIONS = [
    ("floor (boto3 + moto, no handler)", "-", "-", None),
    ("api", "functions.api.handler", "events/api/reserve.json", 512),
    ("sweeper", "functions.sweeper.handler", "events/sweeper/scheduled.json", 256),
    ("alerts", "functions.alerts.handler", "events/alerts/stream-threshold-jump.json", 256),
    ("slack", "functions.slack.handler", "events/slack/sns-threshold.json", 128),
    ("onboarding", "functions.onboarding.handler", "events/onboarding/tenant_created.json", None),
    ("anomaly", "functions.anomaly.handler", "events/anomaly/scheduled.json", None),
    ("forecast", "functions.forecast.handler", "events/forecast/scheduled.json", None),
]


def main(argv: list[str]) -> None:
    rows = []
    for name, module, event, _ in FUNCTIONS:
        path = str(ROOT / event) if event != "-" else "-"
        out = subprocess.run(
            [sys.executable, "-c", PROBE, name, module, path],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        peak = int(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else None
        rows.append({"function": name, "peak_rss_mb": peak, "error": out.stderr[-300:] or None})
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "memory.json").write_text(json.dumps(rows, indent=2) + "\n")
    table = "| function | peak RSS (MB) after cold start + 50 invocations |\n|---|---|\n" + "".join(
        f"| {r['function']} | {r['peak_rss_mb']} |\n" for r in rows
    )
    text = (
        "# Peak memory per function (moto in-process, x86-64 CPython, `python -m bench memory`)"
        "\n\nEach figure includes the floor row (Python, boto3, moto, the table), most of which "
        "Lambda does not carry: the function's own share is the difference.\n\n" + table
    )
    (RESULTS / "memory.md").write_text(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    main(sys.argv[1:])
