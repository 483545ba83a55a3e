"""Start and stop DynamoDB Local (AWS's own emulator) on a free loopback port.

The emulator ships inside the npm package ``amplify-dynamodb-simulator`` (pinned in
``package.json``, installed by ``make``) and runs on the machine's Java 17.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EMULATOR = ROOT / "node_modules" / "amplify-dynamodb-simulator" / "emulator"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class DynamoDBLocal:
    endpoint: str
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def available() -> str | None:
    """Why DynamoDB Local cannot start here, or None when it can."""
    if shutil.which("java") is None:
        return "java is not installed"
    if not (EMULATOR / "DynamoDBLocal.jar").exists():
        return f"{EMULATOR} is missing: run `make install`"
    return None


def start(timeout: float = 60.0) -> DynamoDBLocal:
    reason = available()
    if reason:
        raise RuntimeError(reason)
    port = _free_port()
    process = subprocess.Popen(  # noqa: S603 - a fixed argv, no shell
        [  # noqa: S607 - java from PATH, as documented
            "java",
            "-Xms256m",
            f"-Djava.library.path={EMULATOR / 'DynamoDBLocal_lib'}",
            "-jar",
            str(EMULATOR / "DynamoDBLocal.jar"),
            "-inMemory",
            "-port",
            str(port),
        ],
        cwd=EMULATOR,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"DynamoDB Local exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return DynamoDBLocal(endpoint=f"http://127.0.0.1:{port}", process=process)
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("DynamoDB Local did not start in time")
