"""costguard's AWS CDK app (v2, Python, L2 constructs): one construct per concern.

- `ledger.py`: the DynamoDB ledger table, from `costguard.store.schema`, and who may do what on it
- `functions.py`: the one factory every Lambda function goes through
- `packaging.py`: Lambda assets built without Docker (arm64 wheels vendored with `uv pip`)
- `api.py`: the HTTP API, its Lambda and the bootstrap admin key
- `sweeper.py`: the expiry sweeper on its schedule
- `observability.py`: the alerts topic, the dashboard and the alarms
- `stack.py`: the stack that puts them together; `app.py`: the entry point `cdk.json` runs
"""

import os

# jsii prints a banner on every start under Node 20 (end of life for jsii since 2026-10-30).
# Node 22 is the fix (docs/infrastructure.md); until then the banner only buries real output.
# Set here, before any module of this package imports aws_cdk and so starts jsii's runtime.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
