"""Start and stop DynamoDB Local (AWS's own emulator) on a free loopback port.

The emulator ships inside the npm package ``amplify-dynamodb-simulator`` (pinned in
``package.json``, installed by ``make``) and runs on the machine's Java 17. With a data folder
it keeps one SQLite file there (``-sharedDb -dbPath``): every table survives a restart. Without
one it runs ``-inMemory`` (the test suite's shared emulator, tests/conftest.py).
"""

from __future__ import annotations

import ctypes
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EMULATOR = ROOT / "node_modules" / "amplify-dynamodb-simulator" / "emulator"
HEAP = "256m"
"""A fixed heap, touched at start: the emulator's memory does not creep up under a long run
(its data lives in SQLite, outside the heap; 256 MB is ample for the Jetty front end)."""


class Unavailable(RuntimeError):
    """DynamoDB Local cannot start here; the message says how to fix it, in one line."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class DynamoDBLocal:
    endpoint: str
    process: subprocess.Popen[bytes]
    data_dir: Path | None = None

    def stop(self, timeout: float = 1.0) -> None:
        """SIGTERM (the JVM's shutdown hooks close SQLite), SIGKILL after `timeout` seconds."""
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


def available() -> str | None:
    """Why DynamoDB Local cannot start here (with the fix), or None when it can."""
    if shutil.which("java") is None:
        return (
            "java is not installed: DynamoDB Local needs Java 17+ "
            "(Debian/Ubuntu: sudo apt-get install openjdk-17-jre-headless; macOS: brew install openjdk@17)"
        )
    if not (EMULATOR / "DynamoDBLocal.jar").exists():
        return f"{EMULATOR / 'DynamoDBLocal.jar'} is missing: run `make install`"
    return None


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the emulator gets SIGTERM when the runner dies, even by SIGKILL (no orphan JVM
    holding the data folder). Elsewhere a no-op."""
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def launch(data_dir: Path | None = None, port: int | None = None) -> tuple[DynamoDBLocal, int]:
    """Start the JVM without waiting for it (the runner starts its workers meanwhile)."""
    reason = available()
    if reason:
        raise Unavailable(reason)
    port = port or free_port()
    storage = ["-inMemory"]
    if data_dir is not None:
        data_dir.mkdir(parents=True, exist_ok=True)
        storage = ["-sharedDb", "-dbPath", str(data_dir.resolve())]
    process = subprocess.Popen(  # noqa: S603 - a fixed argv, no shell
        [  # noqa: S607 - java from PATH, as documented
            "java",
            f"-Xms{HEAP}",
            f"-Xmx{HEAP}",
            "-XX:+AlwaysPreTouch",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            f"-Djava.library.path={EMULATOR / 'DynamoDBLocal_lib'}",
            "-jar",
            str(EMULATOR / "DynamoDBLocal.jar"),
            *storage,
            "-disableTelemetry",  # it would phone home from every developer's machine otherwise
            "-port",
            str(port),
        ],
        cwd=EMULATOR,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # Ctrl-C reaches the whole foreground process group; the runner stops the emulator
        # itself, after its workers, so a keypress cannot pull the store from under a request.
        start_new_session=True,
        preexec_fn=_die_with_parent,  # before any of the runner's threads start
    )
    return DynamoDBLocal(f"http://127.0.0.1:{port}", process, data_dir), port


def wait_ready(emulator: DynamoDBLocal, timeout: float = 60.0) -> DynamoDBLocal:
    port = int(emulator.endpoint.rsplit(":", 1)[1])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if emulator.process.poll() is not None:
            raise Unavailable(
                f"DynamoDB Local exited with {emulator.process.returncode} at start "
                f"(is port {port} free? COSTGUARD_DDB_PORT chooses another)"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return emulator
        except OSError:
            time.sleep(0.05)
    emulator.stop()
    raise Unavailable(f"DynamoDB Local did not start within {timeout:.0f} s")


def start(timeout: float = 60.0, data_dir: Path | None = None) -> DynamoDBLocal:
    """Start DynamoDB Local and wait until it accepts connections."""
    emulator, _ = launch(data_dir)
    return wait_ready(emulator, timeout)
