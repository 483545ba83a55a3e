"""`python -m local.sam`: the synthesized template (`make synth` → cdk.out/) for `sam local`.

`sam local invoke` and `sam local start-api` run the functions of the CDK template in Lambda
containers, but hand each variable the template's value, and SAM resolves a `Ref` to the
resource's logical id: the functions would look for a table named `LedgerTable9343E4AA` on AWS.
`env` writes, next to the synthesized template (so asset paths stay valid):

- `cdk.out/costguard.sam.template.json` — the synthesized template, unchanged but for one
  variable declared on every function: `AWS_ENDPOINT_URL_DYNAMODB` (boto3 sends DynamoDB calls
  there; SAM only passes `--env-vars` values for variables a function declares), and
  `COSTGUARD_ADMIN_KEY` on the functions that read the admin key from Secrets Manager;
- `cdk.out/sam-env.json` — the `--env-vars` file: per function, the local table, the local
  endpoint, a local admin key, and "" for every other variable naming an AWS resource that does
  not exist locally (the bus, the topic, queues, secrets: the settings read "" as unset, so that
  feature is off, as in `make run` without it).

`validate` runs `sam validate --lint` on the synthesized template; `invoke` and `start-api`
run `sam local` (a container runtime is needed; without one they say so in one line).
SAM CLI runs through `uv tool run` (pinned below): its dependencies (click 8.1.8) conflict with
this project's lock, so it never enters the project's environment.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SAM_CLI = "aws-sam-cli==1.170.0"
SAMPLE_ADMIN_KEY = "cg-admin-sample-key-for-events"
"""The admin key the sample events in events/api send (`Authorization: Bearer …`)."""
DEFAULT_ENDPOINT = "http://host.docker.internal:8000"
"""DynamoDB Local as a Lambda container sees it: `COSTGUARD_DDB_PORT=8000 make run` on the
host; `--add-host host.docker.internal:host-gateway` makes the name resolve on Linux."""
ENDPOINT_VARIABLE = "AWS_ENDPOINT_URL_DYNAMODB"
SAM_TEMPLATE = "costguard.sam.template.json"
ENV_FILE = "sam-env.json"


def stack_template(cdk_out: Path) -> Path:
    """The CloudFormation template of the (one) stack in a cloud assembly."""
    manifest = json.loads((cdk_out / "manifest.json").read_text())
    templates = [
        cdk_out / str(artifact["properties"]["templateFile"])
        for artifact in manifest["artifacts"].values()
        if artifact["type"] == "aws:cloudformation:stack"
    ]
    if len(templates) != 1:
        raise SystemExit(f"expected one stack in {cdk_out}, found {len(templates)}")
    return templates[0]


def functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The template's Lambda functions by logical id."""
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Lambda::Function"
    }


def short_name(resource: dict[str, Any]) -> str:
    """`api` for `functions.api.handler.lambda_handler`: the folder of events/ it takes."""
    handler = str(resource["Properties"].get("Handler", ""))
    parts = handler.split(".")
    return parts[1] if len(parts) > 2 and parts[0] == "functions" else handler


def local_environment(
    template: dict[str, Any], *, table: str, endpoint: str, admin_key: str
) -> tuple[dict[str, Any], dict[str, dict[str, str]]]:
    """(the template for `sam local`, the `--env-vars` mapping) — see the module docstring."""
    sam_template = json.loads(json.dumps(template))
    env: dict[str, dict[str, str]] = {}
    for logical_id, resource in functions(sam_template).items():
        variables = resource["Properties"].setdefault("Environment", {}).setdefault("Variables", {})
        values: dict[str, str] = {}
        for name, value in list(variables.items()):
            if name == "COSTGUARD_TABLE_NAME":
                values[name] = table
            elif name == "COSTGUARD_ADMIN_KEY_SECRET_ARN":
                values[name] = ""
                variables.setdefault("COSTGUARD_ADMIN_KEY", "")
            elif not isinstance(value, str):  # a Ref/GetAtt: a resource that is not here
                values[name] = ""
        if "COSTGUARD_ADMIN_KEY" in variables:
            values["COSTGUARD_ADMIN_KEY"] = admin_key
        variables[ENDPOINT_VARIABLE] = ""
        values[ENDPOINT_VARIABLE] = endpoint
        env[logical_id] = values
    return sam_template, env


def write(
    cdk_out: Path, *, table: str, endpoint: str, admin_key: str
) -> tuple[Path, Path, dict[str, str]]:
    """Write the SAM template and the env file into `cdk_out`; also return short names →
    logical ids (`api` → `ApiHandlerFunction…`)."""
    source = stack_template(cdk_out)
    template = json.loads(source.read_text())
    sam_template, env = local_environment(
        template, table=table, endpoint=endpoint, admin_key=admin_key
    )
    template_path = cdk_out / SAM_TEMPLATE
    env_path = cdk_out / ENV_FILE
    template_path.write_text(json.dumps(sam_template, indent=1) + "\n")
    env_path.write_text(json.dumps(env, indent=2) + "\n")
    names = {short_name(r): logical_id for logical_id, r in functions(template).items()}
    return template_path, env_path, names


def container_runtime() -> str | None:
    """Why `sam local` cannot run here, or None (Docker or Finch answers)."""
    for cli, probe in (("docker", ["docker", "info"]), ("finch", ["finch", "info"])):
        if shutil.which(cli) is None:
            continue
        done = subprocess.run(probe, capture_output=True, check=False, timeout=20)  # noqa: S603
        if done.returncode == 0:
            return None
        return f"{cli} is installed but not running ({cli} info failed)"
    return "no container runtime (Docker or Finch) here"


def sam(*args: str) -> list[str]:
    """The argv that runs SAM CLI (pinned) in its own environment."""
    uv = ROOT / ".tools" / "bin" / "uv"
    return [str(uv) if uv.exists() else "uv", "tool", "run", "--from", SAM_CLI, "sam", *args]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.sam", description=__doc__)
    parser.add_argument("command", choices=["env", "validate", "invoke", "start-api"])
    parser.add_argument("function", nargs="?", help="invoke: api, onboarding, alerts, …")
    parser.add_argument("event", nargs="?", help="invoke: an events/… file")
    parser.add_argument("--cdk-out", type=Path, default=ROOT / "cdk.out")
    parser.add_argument(
        "--endpoint", default=os.environ.get("COSTGUARD_SAM_DDB_ENDPOINT", DEFAULT_ENDPOINT)
    )
    parser.add_argument(
        "--table", default=os.environ.get("COSTGUARD_TABLE_NAME", "costguard-ledger")
    )
    parser.add_argument(
        "--admin-key", default=os.environ.get("COSTGUARD_ADMIN_KEY", SAMPLE_ADMIN_KEY)
    )
    args = parser.parse_args(argv)
    if not (args.cdk_out / "manifest.json").exists():
        print(f"no synthesized template in {args.cdk_out}: run `make synth` first", file=sys.stderr)
        return 2
    os.environ.setdefault("SAM_CLI_TELEMETRY", "0")
    if args.command == "validate":
        source = stack_template(args.cdk_out)
        return subprocess.call(  # noqa: S603 - fixed argv
            sam("validate", "--lint", "-t", str(source), "--region", "us-east-1")
        )
    template, env, names = write(
        args.cdk_out, table=args.table, endpoint=args.endpoint, admin_key=args.admin_key
    )
    if args.command == "env":
        print(f"{template}\n{env}")
        for name, logical_id in sorted(names.items()):
            print(f"  {name:<11} {logical_id}")
        return 0
    reason = container_runtime()
    if reason:
        print(
            f"sam local needs a container runtime: {reason}. Use `make run` instead, or "
            "start Docker.",
            file=sys.stderr,
        )
        return 1
    common = ["-t", str(template), "--env-vars", str(env)]
    common += ["--add-host", "host.docker.internal:host-gateway"]
    if args.command == "start-api":
        return subprocess.call(sam("local", "start-api", *common))  # noqa: S603
    if args.function not in names or not args.event:
        print(
            f"usage: make sam-invoke FN=<{'|'.join(sorted(names))}> EVENT=events/<fn>/<case>.json",
            file=sys.stderr,
        )
        return 2
    return subprocess.call(  # noqa: S603
        sam("local", "invoke", names[args.function], "-e", args.event, *common)
    )


if __name__ == "__main__":
    sys.exit(main())
