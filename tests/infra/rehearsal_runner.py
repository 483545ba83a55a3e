"""Runs one Lambda asset the way the Python runtime does: started by tests/infra/rehearsal.py
as `python -I -S rehearsal_runner.py <asset> <runtime> <job.json> <out.json>`.

`-I -S`: no site-packages, no PYTHONPATH, no current directory. The import path is the asset
(what CDK zips and uploads), then `<runtime>`: boto3 and its dependencies only, which the Lambda
runtime provides. A dependency missing from the asset fails here with ImportError, as in AWS.

Every AWS call the function makes is recorded (service, operation, parameters) before it is
sent: the parent checks each against the function's IAM policy in the template.
"""

import json
import sys
import time
import traceback
from typing import Any


def main() -> int:
    asset, runtime, job_path, out_path = sys.argv[1:5]
    sys.path[:0] = [asset, runtime]
    with open(job_path) as f:
        job = json.load(f)
    calls: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    out: dict[str, Any] = {"calls": calls, "results": results, "error": None}

    def write() -> None:
        with open(out_path, "w") as f:
            json.dump(out, f, default=str)

    try:
        import botocore.client

        # _make_api_call is private: the stubs do not declare it.
        client_class: Any = botocore.client.BaseClient
        send = client_class._make_api_call

        def recorded(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
            model = self.meta.service_model
            calls.append(
                {
                    "service": model.endpoint_prefix,
                    "signing": model.signing_name,
                    "operation": operation_name,
                    "params": api_params,
                }
            )
            return send(self, operation_name, api_params)

        client_class._make_api_call = recorded
        module_name, function_name = job["handler"].rsplit(".", 1)
        module = __import__(module_name, fromlist=[function_name])
        handler = getattr(module, function_name)
    except BaseException:
        out["error"] = "import: " + traceback.format_exc()
        write()
        return 1

    class Context:
        function_name = job["function_name"]
        function_version = "$LATEST"
        memory_limit_in_mb = job["memory_mb"]
        invoked_function_arn = job["function_arn"]
        log_group_name = "/aws/lambda/" + job["function_name"]
        log_stream_name = "rehearsal"
        aws_request_id = "rehearsal"

        def __init__(self, timeout_seconds: float) -> None:
            self.deadline = time.monotonic() + timeout_seconds

        def get_remaining_time_in_millis(self) -> int:
            return int((self.deadline - time.monotonic()) * 1000)

    for index, event in enumerate(job["events"]):
        context = Context(job["timeout_seconds"])
        context.aws_request_id = f"rehearsal-{index}"
        started = len(calls)
        try:
            answer = handler(event, context)
            results.append({"answer": answer, "calls": [started, len(calls)]})
        except BaseException:
            results.append({"error": traceback.format_exc(), "calls": [started, len(calls)]})
    write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
