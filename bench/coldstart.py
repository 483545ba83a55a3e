"""Section 4: cold start of the API handler in a fresh process, against bare boto3.

Bare: `import boto3; boto3.client("dynamodb")`. Ours: import the API handler, answer a first
request (GET /v1/health through the real resolver), and build the ledger's DynamoDB client,
as the first reserve would. Each runs in a new interpreter; medians of several runs.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BARE = "import boto3; boto3.client('dynamodb')"
OURS = """
import json
from functions.api.handler import lambda_handler
from functions.api.deps import get_ledger
from types import SimpleNamespace
event = json.load(open('events/api/health.json'))
ctx = SimpleNamespace(function_name='api', memory_limit_in_mb=512, aws_request_id='r',
                      invoked_function_arn='arn:aws:lambda:us-east-1:1:function:api')
assert lambda_handler(event, ctx)['statusCode'] == 200
get_ledger()
"""


def _run(code: str) -> float:
    env = {
        **os.environ,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "PYTHONPATH": str(ROOT),
        "POWERTOOLS_SERVICE_NAME": "costguard-api",
        "PYTHONDONTWRITEBYTECODE": "0",
    }
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env=env)
    return time.perf_counter() - started


def measure_cold_start(runs: int = 7) -> dict[str, Any]:
    _run(BARE), _run(OURS)  # compile bytecode caches first, as a deployed package has them
    bare = [_run(BARE) for _ in range(runs)]
    ours = [_run(OURS) for _ in range(runs)]
    bare_ms, ours_ms = statistics.median(bare) * 1000, statistics.median(ours) * 1000
    return {
        "runs": runs,
        "bare_ms": round(bare_ms, 1),
        "ours_ms": round(ours_ms, 1),
        "ratio": round(ours_ms / bare_ms, 2),
        "note": "wall time of a whole interpreter (python start-up included in both)",
    }


if __name__ == "__main__":
    print(json.dumps(measure_cold_start(), indent=1))
