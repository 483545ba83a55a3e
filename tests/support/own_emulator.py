"""A DynamoDB Local of a test module's own (import `ddb_local` into the module to override the
session's): late in the session's shared emulator, after every earlier integration test's
tables and streams, the borrowing races ran ~30x slower (minutes instead of ~20 s), with the
emulator's CPU the only thing busy."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local import ddblocal


@pytest.fixture(scope="module")
def ddb_local() -> Iterator[str]:
    server = ddblocal.start()
    try:
        yield server.endpoint
    finally:
        server.stop()
