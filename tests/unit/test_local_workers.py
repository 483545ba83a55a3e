"""The runner's API worker pool (local/workers.py): real processes, a health route that needs no
store; what a caller sees when a worker dies, and that the pool heals."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.workers import CollectingSink, Pool

HEALTH: dict[str, Any] = json.loads(
    (Path(__file__).parents[2] / "events" / "api" / "health.json").read_text()
)


@pytest.fixture
def pool() -> Iterator[Pool]:
    # the health route touches no table: an endpoint nobody listens on is enough
    workers = Pool("http://127.0.0.1:9", "costguard-workers-test", "cg-admin-test", size=1)
    workers.start()
    workers.ready()
    try:
        yield workers
    finally:
        workers.close()


def test_an_invocation_runs_in_a_worker_process(pool: Pool) -> None:
    result, emitted = pool.invoke("api", HEALTH)

    assert (result["statusCode"], json.loads(result["body"])["status"], emitted) == (200, "ok", [])
    assert pool.workers[0].process.pid != os.getpid()


def test_a_worker_that_died_answers_502_once_and_is_replaced(pool: Pool) -> None:
    dead = pool.workers[0].process
    os.kill(dead.pid or 0, signal.SIGKILL)
    dead.join(5)

    result, _ = pool.invoke("api", HEALTH)

    assert result["statusCode"] == 502  # what API Gateway answers for a crashed function
    assert json.loads(result["body"]) == {"message": "the API worker died during the invocation"}
    deadline = time.monotonic() + 60
    while pool.idle.empty() and time.monotonic() < deadline:
        time.sleep(0.05)
    healed, _ = pool.invoke("api", HEALTH)
    assert healed["statusCode"] == 200
    assert [w.process.pid for w in pool.workers] != [dead.pid]


def test_a_stopping_pool_answers_503_and_leaves_no_process(pool: Pool) -> None:
    processes = [w.process for w in pool.workers]

    pool.close()
    result, _ = pool.invoke("api", HEALTH)

    assert result["statusCode"] == 503
    assert json.loads(result["body"]) == {"message": "the runner is stopping"}
    assert not any(p.is_alive() for p in processes)


def test_events_the_handler_puts_are_handed_back_in_order() -> None:
    sink = CollectingSink()
    sink.put("TenantCreated", {"tenant_id": "a"})
    sink.put("TenantCreated", {"tenant_id": "b"})

    assert sink.take() == [
        ("TenantCreated", {"tenant_id": "a"}),
        ("TenantCreated", {"tenant_id": "b"}),
    ]
    assert sink.take() == []
