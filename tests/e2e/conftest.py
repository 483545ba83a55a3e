"""`make run` started as a real process on a free loopback port, talked to over HTTP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import urllib3

ROOT = Path(__file__).resolve().parents[2]
ADMIN = "cg-admin-e2e"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    http: urllib3.PoolManager

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        key: str | None = ADMIN,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], Any]:
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        if key:
            all_headers["Authorization"] = f"Bearer {key}"
        answer = self.http.request(
            method,
            self.url + path,
            headers=all_headers,
            body=json.dumps(body) if body is not None else None,
            retries=False,
        )
        text = answer.data.decode()
        try:
            payload = json.loads(text)
        except ValueError:
            payload = text
        return answer.status, {k.lower(): v for k, v in answer.headers.items()}, payload


def start_runner(extra_env: dict[str, str], args: list[str] | None = None) -> Server:
    port = _free_port()
    env = {
        **os.environ,
        "COSTGUARD_PORT": str(port),
        "COSTGUARD_ADMIN_KEY": ADMIN,
        "PYTHONPATH": str(ROOT),
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        **extra_env,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "local", *(args or [])],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    server = Server(f"http://127.0.0.1:{port}", process, urllib3.PoolManager(maxsize=32))
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"runner exited: {process.stdout.read().decode() if process.stdout else ''}"
            )
        try:
            if server.call("GET", "/v1/health", key=None)[0] == 200:
                return server
        except urllib3.exceptions.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("runner did not become ready")


def stop_runner(server: Server) -> str:
    server.process.terminate()
    out, _ = server.process.communicate(timeout=30)
    return out.decode()


@pytest.fixture(scope="module", params=["embedded", "ddblocal"])
def runner(request: pytest.FixtureRequest) -> Iterator[Server]:
    if request.param == "ddblocal":
        endpoint = request.getfixturevalue("ddb_local")
        server = start_runner(
            {
                "AWS_ENDPOINT_URL_DYNAMODB": endpoint,
                "COSTGUARD_TABLE_NAME": f"costguard-e2e-{os.getpid()}",
            }
        )
    else:
        server = start_runner({})
    try:
        yield server
    finally:
        stop_runner(server)
