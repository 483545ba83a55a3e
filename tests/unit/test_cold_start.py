"""The API handler's import leaves the collector on, with what it made frozen (D122)."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def test_the_handler_import_freezes_what_it_made_and_turns_the_collector_back_on() -> None:
    code = (
        "import gc, json, functions.api.handler; "
        "print(json.dumps([gc.isenabled(), gc.get_freeze_count()]))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    answer = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code],
        check=True,
        env=env,
        capture_output=True,
        text=True,
    )
    enabled, frozen = json.loads(answer.stdout.splitlines()[-1])
    assert enabled is True
    assert frozen > 20_000  # the modules, classes and schemas of the import (≈ 60,000)
