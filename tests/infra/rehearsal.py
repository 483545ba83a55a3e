"""The deploy rehearsal: the stack as `cdk deploy` would build it, run on this machine.

1. `npx cdk synth` through cdk.json, with a PATH holding neither uv nor the virtualenv (a
   fresh shell after `make install`), into a temporary cdk.out. The assets are the real ones
   (vendored dependencies, hash-checked), with wheels for this machine (`asset_target=host`:
   the same pinned packages; Lambda's arm64 / Python 3.13 wheels cannot be imported here).
2. A local AWS endpoint (moto's server) with every resource of the template created from its
   properties: the table (indexes, stream), topics (the alerts one under its KMS key), queues,
   the bus, the admin-key secret, the Slack webhook secret.
3. Each function is run from its asset directory by tests/infra/rehearsal_runner.py: Python
   with no site-packages (the asset, then boto3 as the runtime provides it), the template's
   environment for that function (intrinsics resolved to the local resources) plus what Lambda
   sets, and nothing else: a missing variable or an import error fails as it would in AWS.
4. Every AWS call a function makes is recorded and checked against the IAM policy of that
   function's role in the template (actions and resources; conditions are not evaluated).
5. The wiring is exercised from the template, not from the code: the ledger stream's records
   go to the function of its event source mapping, through the mapping's filters; the bus
   rules' patterns (put on the local bus, with a queue as target) decide which events reach
   their function; SNS messages reach the topic's Lambda subscribers; each schedule invokes its
   target with a scheduled event. The sample events under events/ are replayed on each function.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import boto3

REPO = Path(__file__).resolve().parents[2]
EVENTS = REPO / "events"
RUNNER = Path(__file__).with_name("rehearsal_runner.py")
REGION = "us-east-1"
ACCOUNT = "123456789012"
ADMIN_KEY = "cg-admin-sample-key-for-events"
"""The admin key of the sample events under events/api: the admin-key secret holds it."""
SLACK_SECRET = "costguard/slack-webhook"
CONTEXT = {
    "costguard:asset_target": "host",
    "costguard:slack_webhook_secret_name": SLACK_SECRET,
    "costguard:alert_emails": "finance@example.com",
    "costguard:alarm_emails": "ops@example.com",
}
"""Every optional function and subscription on: the rehearsal runs all of them."""
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")
"""What the Lambda Python runtime provides (boto3 and its dependencies)."""


# --------------------------------------------------------------------------- synth
def clean_path(shims: Path) -> str:
    """A new shell's PATH without uv, the virtualenv or the repo's tools: the system's
    directories (those without a uv) and `shims`, holding links to node, npm and npx only."""
    shims.mkdir(parents=True, exist_ok=True)
    for tool in ("node", "npm", "npx"):
        found = shutil.which(tool)
        assert found, f"{tool} is needed (Node 20+)"
        link = shims / tool
        if not link.exists():
            link.symlink_to(Path(found).resolve() if tool == "node" else found)
    system = [d for d in ("/usr/bin", "/bin") if not (Path(d) / "uv").exists()]
    return os.pathsep.join([str(shims), *system])


def synth(outdir: Path) -> subprocess.CompletedProcess[str]:
    """`npx cdk synth` exactly as cdk.json runs the app, into `outdir`."""
    command = ["npx", "--no-install", "cdk", "synth", "--quiet", "-o", str(outdir)]
    for key, value in CONTEXT.items():
        command += ["-c", f"{key}={value}"]
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("VIRTUAL_ENV", "UV", "PYTHON", "CDK_"))
    }
    env["PATH"] = clean_path(outdir.parent / "shims")
    return subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900, check=False
    )


# --------------------------------------------------------------------------- local AWS
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class MotoServer:
    url: str
    process: subprocess.Popen[bytes]

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            region_name=REGION,
            endpoint_url=self.url,
            aws_access_key_id="rehearsal",
            aws_secret_access_key="rehearsal",
        )


def start_moto() -> MotoServer:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return MotoServer(f"http://127.0.0.1:{port}", process)
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("moto server did not start")


class Webhook(BaseHTTPRequestHandler):
    """Slack's incoming webhook: remembers what it was sent."""

    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", 0))
        Webhook.received.append(json.loads(self.rfile.read(length) or b"{}"))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        pass


def start_webhook() -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Webhook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/services/T0/B0/rehearsal"


# --------------------------------------------------------------------------- the template
class Resolver:
    """CloudFormation intrinsics → the values of the local resources."""

    def __init__(self, template: dict[str, Any], lenient: bool = False) -> None:
        self.resources: dict[str, dict[str, Any]] = template["Resources"]
        self.lenient = lenient
        """Unknown references resolve to their logical id (for reading, e.g. the dashboard)."""
        self.refs: dict[str, str] = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": "costguard",
            "AWS::NoValue": "",
        }
        self.attrs: dict[tuple[str, str], str] = {}

    def __call__(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self(v) for v in value]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Ref"}:
            if self.lenient:
                return self.refs.get(value["Ref"], value["Ref"])
            return self.refs[value["Ref"]]
        if set(value) == {"Fn::GetAtt"}:
            logical, attribute = value["Fn::GetAtt"]
            if self.lenient:
                return self.attrs.get((logical, attribute), f"{logical}.{attribute}")
            return self.attrs[(logical, attribute)]
        if set(value) == {"Fn::Join"}:
            separator, parts = value["Fn::Join"]
            return separator.join(str(self(p)) for p in parts)
        if set(value) == {"Fn::Select"}:
            index, items = value["Fn::Select"]
            return self(items)[int(index)]
        if set(value) == {"Fn::Split"}:
            separator, text = value["Fn::Split"]
            return str(self(text)).split(separator)
        return {k: self(v) for k, v in value.items()}

    def leniently(self, value: Any) -> Any:
        lenient = Resolver({"Resources": self.resources}, lenient=True)
        lenient.refs, lenient.attrs = self.refs, self.attrs
        return lenient(value)

    def of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v["Type"] == kind}


def provision(moto: MotoServer, resolve: Resolver, webhook_url: str) -> None:
    """Every resource a function touches, created on the local endpoint from the template."""
    arn = f"arn:aws:{{}}:{REGION}:{ACCOUNT}:{{}}"
    kms, sqs, sns, events, secrets, ddb = (
        moto.client(s) for s in ("kms", "sqs", "sns", "events", "secretsmanager", "dynamodb")
    )
    for logical in resolve.of_type("AWS::KMS::Key"):
        key = kms.create_key(Description=logical)["KeyMetadata"]
        resolve.refs[logical] = key["KeyId"]
        resolve.attrs[(logical, "Arn")] = key["Arn"]
    for logical in resolve.of_type("AWS::SQS::Queue"):
        url = sqs.create_queue(QueueName=logical)["QueueUrl"]
        resolve.refs[logical] = url
        resolve.attrs[(logical, "Arn")] = arn.format("sqs", logical)
        resolve.attrs[(logical, "QueueName")] = logical
    for logical in resolve.of_type("AWS::Events::EventBus"):
        bus = events.create_event_bus(Name=logical)["EventBusArn"]
        resolve.refs[logical] = logical
        resolve.attrs[(logical, "Arn")] = bus
        resolve.attrs[(logical, "Name")] = logical
    for logical in resolve.of_type("AWS::SecretsManager::Secret"):
        secret = secrets.create_secret(Name=logical, SecretString=ADMIN_KEY)["ARN"]
        resolve.refs[logical] = secret
    secrets.create_secret(Name=SLACK_SECRET, SecretString=webhook_url)
    for logical, resource in resolve.of_type("AWS::DynamoDB::GlobalTable").items():
        props = resource["Properties"]
        name = f"costguard-{logical}".lower()
        ddb.create_table(
            TableName=name,
            KeySchema=props["KeySchema"],
            AttributeDefinitions=props["AttributeDefinitions"],
            GlobalSecondaryIndexes=props.get("GlobalSecondaryIndexes", []),
            BillingMode=props["BillingMode"],
            StreamSpecification={
                "StreamEnabled": True,
                "StreamViewType": props["StreamSpecification"]["StreamViewType"],
            },
        )
        table = ddb.describe_table(TableName=name)["Table"]
        resolve.refs[logical] = name
        resolve.attrs[(logical, "Arn")] = table["TableArn"]
        resolve.attrs[(logical, "StreamArn")] = table["LatestStreamArn"]
    for logical, resource in resolve.of_type("AWS::SNS::Topic").items():
        attributes = {}
        if "KmsMasterKeyId" in resource["Properties"]:
            attributes["KmsMasterKeyId"] = resolve(resource["Properties"]["KmsMasterKeyId"])
        topic = sns.create_topic(Name=logical, Attributes=attributes)["TopicArn"]
        resolve.refs[logical] = topic
        resolve.attrs[(logical, "TopicArn")] = topic
        resolve.attrs[(logical, "TopicName")] = logical
    for kind, service in (
        ("AWS::Lambda::Function", "lambda"),
        ("AWS::IAM::Role", "iam"),
        ("AWS::Logs::LogGroup", "logs"),
    ):
        for logical in resolve.of_type(kind):
            name = f"costguard-{logical}"
            resolve.refs[logical] = name
            path = {"lambda": f"function:{name}", "iam": f"role/{name}"}.get(
                service, f"log-group:{name}:*"
            )
            region = "" if service == "iam" else REGION
            resolve.attrs[(logical, "Arn")] = f"arn:aws:{service}:{region}:{ACCOUNT}:{path}"


# --------------------------------------------------------------------------- IAM
@dataclass(frozen=True)
class Statement:
    actions: tuple[str, ...]
    resources: tuple[str, ...]

    def allows(self, action: str, resource: str) -> bool:
        return any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in self.actions) and any(
            fnmatch.fnmatchcase(resource, r) for r in self.resources
        )


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def role_statements(resolve: Resolver, role: str) -> list[Statement]:
    """Every Allow granted to a role by the template (its policies and inline ones)."""
    documents = [
        p["Properties"]["PolicyDocument"]
        for p in resolve.of_type("AWS::IAM::Policy").values()
        if {"Ref": role} in p["Properties"]["Roles"]
    ]
    role_props = resolve.resources[role]["Properties"]
    assert not role_props.get("ManagedPolicyArns"), f"{role}: managed policies are not checked"
    documents += [p["PolicyDocument"] for p in role_props.get("Policies", [])]
    found = []
    for document in documents:
        for statement in document["Statement"]:
            assert statement["Effect"] == "Allow", statement
            found.append(
                Statement(
                    tuple(as_list(statement["Action"])),
                    tuple(str(resolve(r)) for r in as_list(statement["Resource"])),
                )
            )
    return found


class Unmapped(Exception):
    """An AWS call whose IAM action and resource the rehearsal does not know yet."""


@dataclass
class Permissions:
    """What an AWS call needs, in IAM terms (one call may need several permissions)."""

    resolve: Resolver
    secret_arns: dict[str, str]
    topic_keys: dict[str, str]

    def table(self, name: str) -> str:
        return (
            name if name.startswith("arn:") else f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"
        )

    def required(self, call: dict[str, Any]) -> list[tuple[str, str]]:
        service, operation, p = call["signing"], call["operation"], call["params"]
        if service == "dynamodb":
            if operation == "TransactWriteItems":
                kinds = {
                    "Put": "PutItem",
                    "Update": "UpdateItem",
                    "Delete": "DeleteItem",
                    "ConditionCheck": "ConditionCheckItem",
                }
                return [
                    (f"dynamodb:{kinds[kind]}", self.table(body["TableName"]))
                    for item in p["TransactItems"]
                    for kind, body in item.items()
                ]
            if operation == "TransactGetItems":
                return [
                    ("dynamodb:GetItem", self.table(item["Get"]["TableName"]))
                    for item in p["TransactItems"]
                ]
            if operation in ("BatchGetItem", "BatchWriteItem"):
                return [(f"dynamodb:{operation}", self.table(t)) for t in p["RequestItems"]]
            resource = self.table(p["TableName"])
            if p.get("IndexName"):
                resource += f"/index/{p['IndexName']}"
            return [(f"dynamodb:{operation}", resource)]
        if service == "sns" and operation == "Publish":
            needed = [("sns:Publish", p["TopicArn"])]
            key = self.topic_keys.get(p["TopicArn"])
            if key:  # SNS encrypts with the publisher's rights on the topic's key
                needed += [("kms:GenerateDataKey", key), ("kms:Decrypt", key)]
            return needed
        if service == "events" and operation == "PutEvents":
            buses = (e.get("EventBusName", "default") for e in p["Entries"])
            return [
                (
                    "events:PutEvents",
                    b
                    if b.startswith("arn:")
                    else f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{b}",
                )
                for b in buses
            ]
        if service == "sqs":
            name = p["QueueUrl"].rstrip("/").rsplit("/", 1)[1]
            return [(f"sqs:{operation}", f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}")]
        if service == "secretsmanager" and operation == "GetSecretValue":
            secret = p["SecretId"]
            return [("secretsmanager:GetSecretValue", self.secret_arns.get(secret, secret))]
        raise Unmapped(f"{service}:{operation} — teach tests/infra/rehearsal.py its IAM terms")


# --------------------------------------------------------------------------- functions
@dataclass
class Function:
    logical: str
    handler: str
    asset: Path
    environment: dict[str, str]
    role: str
    memory_mb: int
    timeout_seconds: int

    @property
    def name(self) -> str:
        """functions/<name>: the handler's package."""
        return self.handler.split(".")[1]

    @property
    def service(self) -> str:
        return self.environment["POWERTOOLS_SERVICE_NAME"]


@dataclass
class Invocation:
    function: str
    events: list[Any]
    results: list[dict[str, Any]]
    calls: list[dict[str, Any]]
    output: str
    error: str | None

    def answers(self) -> list[Any]:
        failed = [r["error"] for r in self.results if "error" in r]
        assert self.error is None and not failed, f"{self.function}: {self.error or failed[0]}"
        return [r["answer"] for r in self.results]

    def emf(self) -> list[dict[str, Any]]:
        documents = []
        for line in self.output.splitlines():
            if line.startswith("{") and '"_aws"' in line:
                documents.append(json.loads(line))
        return documents


def runtime_dir(into: Path) -> Path:
    """boto3 and its dependencies only: the Lambda runtime's, taken from this environment."""
    import importlib.util

    into.mkdir(parents=True, exist_ok=True)
    for name in RUNTIME_PACKAGES:
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin, name
        origin = Path(spec.origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        (into / source.name).symlink_to(source)
    return into


@dataclass
class Rehearsal:
    outdir: Path
    template: dict[str, Any]
    resolve: Resolver
    moto: MotoServer
    functions: dict[str, Function]
    permissions: Permissions
    runtime: Path
    work: Path
    invocations: list[Invocation] = field(default_factory=list)

    def by_name(self, name: str) -> Function:
        return next(f for f in self.functions.values() if f.name == name)

    def invoke(self, function: Function, events: list[Any]) -> Invocation:
        """Run the asset with `events` in one process (a warm container), as Lambda would."""
        job = {
            "handler": function.handler,
            "events": events,
            "function_name": self.resolve.refs[function.logical],
            "function_arn": self.resolve.attrs[(function.logical, "Arn")],
            "memory_mb": function.memory_mb,
            "timeout_seconds": function.timeout_seconds,
        }
        run = tempfile.mkdtemp(dir=self.work, prefix=f"{function.name}-")
        job_path, out_path = Path(run) / "job.json", Path(run) / "out.json"
        job_path.write_text(json.dumps(job))
        env = {
            # what the Lambda runtime sets
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_LAMBDA_FUNCTION_NAME": job["function_name"],
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{job['function_name']}",
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
            "AWS_ACCESS_KEY_ID": "rehearsal",
            "AWS_SECRET_ACCESS_KEY": "rehearsal",
            "AWS_SESSION_TOKEN": "rehearsal",
            "LAMBDA_TASK_ROOT": str(function.asset),
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            # the one addition: the SDK talks to the local endpoint
            "AWS_ENDPOINT_URL": self.moto.url,
            # the template's
            **function.environment,
        }
        done = subprocess.run(
            [
                sys.executable,
                "-I",
                "-S",
                str(RUNNER),
                str(function.asset),
                str(self.runtime),
                str(job_path),
                str(out_path),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if not out_path.exists():
            raise AssertionError(f"{function.name}: the runner died: {done.stderr[-3000:]}")
        out = json.loads(out_path.read_text())
        invocation = Invocation(
            function.name,
            events,
            out["results"],
            out["calls"],
            done.stdout,
            out["error"],
        )
        self.invocations.append(invocation)
        return invocation

    # ---------------------------------------------------------------- wiring
    def stream_mappings(self) -> list[tuple[Function, dict[str, Any]]]:
        found = []
        for mapping in self.resolve.of_type("AWS::Lambda::EventSourceMapping").values():
            props = mapping["Properties"]
            function = self.functions[props["FunctionName"]["Ref"]]
            found.append((function, props))
        return found


def load_functions(
    template: dict[str, Any], outdir: Path, resolve: Resolver
) -> dict[str, Function]:
    functions = {}
    for logical, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        props = resource["Properties"]
        functions[logical] = Function(
            logical=logical,
            handler=props["Handler"],
            asset=outdir / resource["Metadata"]["aws:asset:path"],
            environment={k: str(resolve(v)) for k, v in props["Environment"]["Variables"].items()},
            role=props["Role"]["Fn::GetAtt"][0],
            memory_mb=int(props["MemorySize"]),
            timeout_seconds=int(props["Timeout"]),
        )
    return functions


def sample_events(name: str) -> list[Any]:
    return [
        json.loads(p.read_text())
        for p in sorted((EVENTS / name).glob("*.json"))
        if not p.name.startswith("_")
    ]


PLACEHOLDERS = {"commit.json": "reserve.json", "release.json": "reserve_sandbox.json"}
"""Sample events naming RESERVATION_ID: the reservation of an earlier step."""


def run_api_sequence(rehearsal: Rehearsal) -> list[tuple[int, int]]:
    """events/api/_sequence.json through the API function: (status, expected) per step. A
    step naming an earlier reservation starts a new batch (a new container, as may happen)."""
    steps = json.loads((EVENTS / "api" / "_sequence.json").read_text())
    api = rehearsal.by_name("api")
    ids: dict[str, str] = {}
    statuses: list[tuple[int, int]] = []
    while len(statuses) < len(steps):
        batch, names = [], []
        for step in steps[len(statuses) :]:
            text = (EVENTS / "api" / step["event"]).read_text()
            needs = PLACEHOLDERS.get(step["event"])
            if needs is not None:
                if needs not in ids:
                    break
                text = text.replace("RESERVATION_ID", ids[needs])
            batch.append(json.loads(text))
            names.append(step["event"])
        if not batch:  # the reservation was refused: let the step fail visibly
            step = steps[len(statuses)]
            batch = [json.loads((EVENTS / "api" / step["event"]).read_text())]
            names = [step["event"]]
        for name, answer in zip(names, rehearsal.invoke(api, batch).answers(), strict=True):
            statuses.append((int(answer["statusCode"]), int(steps[len(statuses)]["expect"])))
            if name.startswith("reserve") and answer["statusCode"] == 201:
                ids[name] = json.loads(answer["body"])["reservation_id"]
    return statuses


@dataclass
class Observers:
    """Queues on the local endpoint standing in for what AWS would invoke."""

    topic_queues: dict[str, str]
    """topic logical id → queue URL subscribed to it (for the topic's Lambda subscribers)."""
    rule_queues: dict[str, str]
    """rule logical id → queue URL the rule targets (for the rule's function)."""


def observe(rehearsal: Rehearsal) -> Observers:
    sqs, sns, events = (rehearsal.moto.client(s) for s in ("sqs", "sns", "events"))
    resolve = rehearsal.resolve
    topic_queues = {}
    for subscription in resolve.of_type("AWS::SNS::Subscription").values():
        props = subscription["Properties"]
        if props["Protocol"] != "lambda":
            continue
        topic = props["TopicArn"]["Ref"]
        if topic in topic_queues:
            continue
        url = sqs.create_queue(QueueName=f"observe-{topic}")["QueueUrl"]
        sns.subscribe(
            TopicArn=resolve(props["TopicArn"]),
            Protocol="sqs",
            Endpoint=f"arn:aws:sqs:{REGION}:{ACCOUNT}:observe-{topic}",
        )
        topic_queues[topic] = url
    rule_queues = {}
    for logical, rule in resolve.of_type("AWS::Events::Rule").items():
        props = rule["Properties"]
        if "EventPattern" not in props:
            continue
        bus = str(resolve(props.get("EventBusName", "default")))
        events.put_rule(
            Name=logical, EventBusName=bus, EventPattern=json.dumps(props["EventPattern"])
        )
        url = sqs.create_queue(QueueName=f"observe-{logical}")["QueueUrl"]
        events.put_targets(
            Rule=logical,
            EventBusName=bus,
            Targets=[{"Id": "observe", "Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:observe-{logical}"}],
        )
        rule_queues[logical] = url
    return Observers(topic_queues, rule_queues)


def drain(sqs: Any, url: str) -> list[dict[str, Any]]:
    messages = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
        if not got.get("Messages"):
            return messages
        for m in got["Messages"]:
            messages.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


class StreamReader:
    """The table's stream, read from the local endpoint as the event source mapping does."""

    def __init__(self, moto: MotoServer, stream_arn: str) -> None:
        self.client = moto.client("dynamodbstreams")
        self.arn = stream_arn
        self.iterators: dict[str, str | None] = {}

    def take(self) -> list[dict[str, Any]]:
        from local.streams import lambda_record

        shards = self.client.describe_stream(StreamArn=self.arn)["StreamDescription"]["Shards"]
        records = []
        for shard in shards:
            shard_id = shard["ShardId"]
            if shard_id not in self.iterators:
                self.iterators[shard_id] = self.client.get_shard_iterator(
                    StreamArn=self.arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
            iterator = self.iterators[shard_id]
            while iterator:
                got = self.client.get_records(ShardIterator=iterator)
                iterator = got.get("NextShardIterator")
                records += [lambda_record(r, self.arn) for r in got["Records"]]
                if not got["Records"]:
                    break
            self.iterators[shard_id] = iterator
        return records


def matches(filters: dict[str, Any] | None, record: dict[str, Any]) -> bool:
    """Lambda's event filtering (EventBridge pattern syntax), with moto's matcher."""
    from moto.events.models import EventPattern

    if not filters:
        return True
    return any(EventPattern.load(f["Pattern"]).matches_event(record) for f in filters["Filters"])


def flow(rehearsal: Rehearsal, observers: Observers, rounds: int = 6) -> dict[str, int]:
    """Deliver what the template wires until nothing moves: stream → its function (filtered,
    batched), topic → its Lambda subscribers, bus rule → its target. Counts per path."""
    sqs = rehearsal.moto.client("sqs")
    resolve = rehearsal.resolve
    readers = {
        id(props): StreamReader(rehearsal.moto, str(resolve(props["EventSourceArn"])))
        for _, props in rehearsal.stream_mappings()
    }
    counts: dict[str, int] = {}
    for _ in range(rounds):
        moved = 0
        for function, props in rehearsal.stream_mappings():
            records = [
                r for r in readers[id(props)].take() if matches(props.get("FilterCriteria"), r)
            ]
            size = int(props.get("BatchSize", 100))
            batches = [{"Records": records[i : i + size]} for i in range(0, len(records), size)]
            if batches:
                for answer in rehearsal.invoke(function, batches).answers():
                    assert answer == {"batchItemFailures": []}, answer
                counts["stream"] = counts.get("stream", 0) + len(records)
                moved += len(records)
        for subscription in resolve.of_type("AWS::SNS::Subscription").values():
            props = subscription["Properties"]
            if props["Protocol"] != "lambda":
                continue
            messages = drain(sqs, observers.topic_queues[props["TopicArn"]["Ref"]])
            if not messages:
                continue
            function = rehearsal.functions[props["Endpoint"]["Fn::GetAtt"][0]]
            events = [{"Records": [sns_record(m)]} for m in messages]
            rehearsal.invoke(function, events).answers()
            counts["topic"] = counts.get("topic", 0) + len(messages)
            moved += len(messages)
        for logical, url in observers.rule_queues.items():
            delivered = drain(sqs, url)
            if not delivered:
                continue
            for target in resolve.resources[logical]["Properties"]["Targets"]:
                function = rehearsal.functions[target["Arn"]["Fn::GetAtt"][0]]
                rehearsal.invoke(function, delivered).answers()
            counts["bus"] = counts.get("bus", 0) + len(delivered)
            moved += len(delivered)
        if not moved:
            return counts
    raise AssertionError(f"the wiring did not settle in {rounds} rounds: {counts}")


def sns_record(message: dict[str, Any]) -> dict[str, Any]:
    """An SNS envelope (as an SQS subscriber receives it) as a Lambda subscriber gets it."""
    return {
        "EventSource": "aws:sns",
        "EventVersion": "1.0",
        "EventSubscriptionArn": f"{message['TopicArn']}:rehearsal",
        "Sns": {
            "Type": message.get("Type", "Notification"),
            "MessageId": message["MessageId"],
            "TopicArn": message["TopicArn"],
            "Subject": message.get("Subject"),
            "Message": message["Message"],
            "Timestamp": message.get("Timestamp"),
            "SignatureVersion": "1",
            "Signature": "rehearsal",
            "SigningCertUrl": "https://sns.example/cert.pem",
            "UnsubscribeUrl": "https://sns.example/unsubscribe",
            "MessageAttributes": {
                k: {"Type": v.get("Type", "String"), "Value": v.get("Value")}
                for k, v in (message.get("MessageAttributes") or {}).items()
            },
        },
    }


def scheduled_event(rule: str) -> dict[str, Any]:
    event = json.loads((EVENTS / "sweeper" / "scheduled.json").read_text())
    event["resources"] = [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{rule}"]
    return event


def strand_an_alert(rehearsal: Rehearsal) -> None:
    """Put one delivered alert back in the outbox, due, with no channel done: as if the
    stream had given up on it (the sweeper's redrive path: Query the outbox, SNS, KMS, bus)."""
    from costguard.alerts import OUTBOX
    from costguard.store.schema import HOLDS_PK, HOLDS_SK

    ddb = rehearsal.moto.client("dynamodb")
    [table] = [
        rehearsal.resolve.refs[t] for t in rehearsal.resolve.of_type("AWS::DynamoDB::GlobalTable")
    ]
    items = ddb.scan(
        TableName=table,
        FilterExpression="begins_with(sk, :a) AND notify = :t",
        ExpressionAttributeValues={":a": {"S": "A#"}, ":t": {"BOOL": True}},
    )["Items"]
    assert items, "the rehearsal recorded no alert to strand"
    item = items[0]
    ddb.update_item(
        TableName=table,
        Key={"pk": item["pk"], "sk": item["sk"]},
        UpdateExpression="SET delivery = :p, #hp = :o, #hs = :due REMOVE channels_sent",
        ExpressionAttributeNames={"#hp": HOLDS_PK, "#hs": HOLDS_SK},
        ExpressionAttributeValues={
            ":p": {"S": "pending"},
            ":o": {"S": OUTBOX},
            ":due": {"S": f"2000-01-01T00:00:00.000000Z#{item['alert_id']['S']}"},
        },
    )


@dataclass
class Report:
    rehearsal: Rehearsal
    api_statuses: list[tuple[int, int]]
    wiring: dict[str, int]
    scheduled: dict[str, list[Any]]
    samples: dict[str, list[Any]]
    webhook: list[dict[str, Any]]


def rehearse(work: Path) -> Iterator[Report]:
    """Synthesize, provision, run everything; yields the report (the server is stopped after)."""
    outdir = work / "cdk.out"
    done = synth(outdir)
    assert done.returncode == 0, (
        f"npx cdk synth failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    )
    template = json.loads((outdir / "costguard.template.json").read_text())
    moto = start_moto()
    webhook, webhook_url = start_webhook()
    Webhook.received = []
    try:
        resolve = Resolver(template)
        provision(moto, resolve, webhook_url)
        secrets = moto.client("secretsmanager")
        secret_arns = {s["Name"]: s["ARN"] for s in secrets.list_secrets()["SecretList"]}
        topic_keys = {
            str(resolve.refs[logical]): str(resolve(r["Properties"]["KmsMasterKeyId"]))
            for logical, r in resolve.of_type("AWS::SNS::Topic").items()
            if "KmsMasterKeyId" in r["Properties"]
        }
        functions = load_functions(template, outdir, resolve)
        rehearsal = Rehearsal(
            outdir,
            template,
            resolve,
            moto,
            functions,
            Permissions(resolve, secret_arns, topic_keys),
            runtime_dir(work / "runtime"),
            work,
        )
        observers = observe(rehearsal)

        # The API: the sample sequence (create a tenant, quotas, reserve, commit, record…)
        statuses = run_api_sequence(rehearsal)
        # then spend that crosses the sample quota's thresholds: alerts to deliver
        crossing = json.loads((EVENTS / "api" / "record_usage.json").read_text())
        body = json.loads(crossing["body"])
        body.update(input_tokens=20_000_000, output_tokens=2_000_000)  # about $90 of $100
        crossing["body"] = json.dumps(body)
        crossing["headers"].pop("idempotency-key", None)
        [answer] = rehearsal.invoke(rehearsal.by_name("api"), [crossing]).answers()
        statuses.append((int(answer["statusCode"]), 201))
        wiring = flow(rehearsal, observers)

        # An alert the stream gave up on: the sweeper's redrive publishes it with its own grants
        strand_an_alert(rehearsal)
        # Every schedule fires its target once, then whatever that caused flows on
        scheduled: dict[str, list[Any]] = {}
        for logical, rule in resolve.of_type("AWS::Events::Rule").items():
            props = rule["Properties"]
            if "ScheduleExpression" not in props:
                continue
            for target in props["Targets"]:
                function = functions[target["Arn"]["Fn::GetAtt"][0]]
                scheduled[function.name] = rehearsal.invoke(
                    function, [scheduled_event(logical)]
                ).answers()
        for path, count in flow(rehearsal, observers).items():
            wiring[path] = wiring.get(path, 0) + count

        # The sample events of every other function
        samples = {
            f.name: rehearsal.invoke(f, sample_events(f.name)).answers()
            for f in functions.values()
            if f.name != "api" and sample_events(f.name)
        }
        yield Report(rehearsal, statuses, wiring, scheduled, samples, list(Webhook.received))
    finally:
        webhook.shutdown()
        moto.process.terminate()
        moto.process.wait(timeout=30)
        shutil.rmtree(work / "runtime", ignore_errors=True)
