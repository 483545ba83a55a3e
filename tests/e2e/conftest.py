"""`make run` started as a real process on a free loopback port, talked to over HTTP.

Each runner uses the default store of `make run` — DynamoDB Local, persistent, started by the
runner — with its own data folder (a temporary one unless the test passes
`COSTGUARD_DATA_DIR`), so the tests exercise exactly what a developer runs and never share data.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

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
    data_dir: Path | None = None
    """The temporary data folder start_runner made (removed by stop_runner)."""
    log: IO[bytes] | None = None
    """The runner's stdout and stderr: a file, never a pipe nobody drains (a full pipe would
    block the runner mid-test)."""

    def output(self) -> str:
        """Everything the runner has written so far."""
        if self.log is None:
            return ""
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

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


STORE_SETTINGS = ("AWS_ENDPOINT_URL_DYNAMODB", "COSTGUARD_DATA_DIR")


def start_runner(extra_env: dict[str, str], args: list[str] | None = None) -> Server:
    """`python -m local` on a free port, ready (health 200). Without a store setting in
    `extra_env`, on the default store in a fresh temporary data folder."""
    port = _free_port()
    data_dir = None
    if not any(name in extra_env for name in STORE_SETTINGS):
        data_dir = Path(tempfile.mkdtemp(prefix="costguard-e2e-"))
        extra_env = {**extra_env, "COSTGUARD_DATA_DIR": str(data_dir)}
    inherited = {k: v for k, v in os.environ.items() if k not in STORE_SETTINGS}
    env = {
        **inherited,
        "COSTGUARD_PORT": str(port),
        "COSTGUARD_ADMIN_KEY": ADMIN,
        "PYTHONPATH": str(ROOT),
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        **extra_env,
    }
    log = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the runner; stop_runner closes it)
    process = subprocess.Popen(
        [sys.executable, "-m", "local", *(args or [])],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = Server(
        f"http://127.0.0.1:{port}", process, urllib3.PoolManager(maxsize=32), data_dir, log
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            _remove(data_dir)
            raise RuntimeError(f"runner exited: {server.output()}")
        try:
            if server.call("GET", "/v1/health", key=None)[0] == 200:
                return server
        except urllib3.exceptions.HTTPError:
            time.sleep(0.2)
    process.kill()
    _remove(data_dir)
    raise RuntimeError("runner did not become ready")


def _remove(data_dir: Path | None) -> None:
    if data_dir is not None:
        shutil.rmtree(data_dir, ignore_errors=True)


def stop_runner(server: Server) -> str:
    """SIGTERM, wait for the exit; the runner's output. Removes a data folder start_runner made."""
    server.process.terminate()
    try:
        server.process.wait(timeout=30)
        return server.output()
    finally:
        _remove(server.data_dir)
        if server.log is not None:
            server.log.close()


def process_tree(pid: int) -> set[int]:
    """`pid` and every descendant still running (Linux /proc)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == parent]
        tree.update(children)
        frontier.extend(children)
    return {p for p in tree if Path(f"/proc/{p}").exists()}


@pytest.fixture(scope="module")
def runner() -> Iterator[Server]:
    server = start_runner({})
    try:
        yield server
    finally:
        stop_runner(server)
