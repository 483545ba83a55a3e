"""`make smoke` (infra/smoke.py), the post-deploy check, against `make run`: every check it
makes on a deployment holds on the local product, so a failure in AWS is the deployment's."""

from __future__ import annotations

import pytest

from infra import smoke
from tests.e2e.conftest import ADMIN, start_runner, stop_runner


def test_the_smoke_check_passes_against_make_run() -> None:
    server = start_runner({})
    lines: list[str] = []
    try:
        result = smoke.run(server.url, ADMIN, log=lines.append, alert_timeout=60)
    finally:
        stop_runner(server)
    assert [line.split()[0] for line in lines] == ["ok"] * len(lines), lines
    assert len(lines) == 7
    assert int(result["retry_after"]) > 0
    assert result["alert"]["threshold_pct"] == 50 and result["alert"]["delivery"] == "sent"


def test_the_smoke_check_fails_loudly_with_a_wrong_key() -> None:
    server = start_runner({})
    try:
        with pytest.raises(smoke.SmokeFailed, match="create tenant: expected 201, got 401"):
            smoke.run(server.url, "cg-not-the-admin", log=lambda _: None)
    finally:
        stop_runner(server)


def test_make_smoke_needs_a_url_and_a_key() -> None:
    assert smoke.main([]) == 2
