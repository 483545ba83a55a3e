"""Keys under attack: garbled, mixed, revoked, and compared in constant time.

The isolation matrix (test_isolation_and_bad_input.py) already proves that a tenant key
reaches nothing of another tenant nor any admin route, and that missing or unknown keys are a
401 on every guarded route. This adds the keys an attacker would build from real ones.

Timing: a statistical timing test would be flaky on a shared 2-core machine, so the test is
structural: every comparison of a secret (its fingerprint) in `ApiKeys.verify` goes through
`hmac.compare_digest`, and no `==`/`!=` touches one. What is left for a timing attacker is the
lookup of a key by its public `key_id` (a GetItem) and the per-process cache, keyed by the
SHA-256 of the presented key, not by the key; neither reveals a secret's bytes.
"""

from __future__ import annotations

import ast
import hmac
import inspect
import textwrap
from typing import Any

import pytest
from costguard.auth import ApiKeys, fingerprint

from tests.api.conftest import ADMIN_KEY, Api

A, B = "acme", "globex"


@pytest.fixture
def keys(api: Api) -> dict[str, str]:
    for t in (A, B):
        api.call("POST", "/v1/tenants", {"tenant_id": t, "name": t})
    return {t: api.tenant_key(t) for t in (A, B)}


def _garbled(keys: dict[str, str]) -> list[str]:
    _, a_id, a_secret = keys[A].split(".")
    _, b_id, b_secret = keys[B].split(".")
    return [
        f"Basic {keys[A]}",  # another scheme
        f"Token {ADMIN_KEY}",
        f"Bearer cg.{a_id}.{b_secret}",  # A's key id with B's secret
        f"Bearer cg.{b_id}.{a_secret}",
        f"Bearer {keys[A].upper()}",
        f"Bearer {keys[A][:-1]}",  # one character short
        f"Bearer {keys[A]}x",
        f"Bearer {keys[A]} {keys[A]}",  # two tokens
        f"Bearer {keys[A]}\x00",
        f"Bearer cg.{a_id}.{a_secret}é",
        f"Bearer cg.{a_id}",
        f"Bearer cg.{a_id}.",
        f"Bearer {'cg.' + 'f' * 16 + '.' + 'x' * 8000}",  # oversized
        f"Bearer {ADMIN_KEY[:-1]}",
        f"Bearer {fingerprint(ADMIN_KEY)}",  # the admin key's stored form is not a key
    ]


def test_keys_built_from_real_ones_are_401_everywhere(api: Api, keys: dict[str, str]) -> None:
    for header in _garbled(keys):
        for method, path in (
            ("GET", f"/v1/tenants/{A}/quotas"),
            ("GET", f"/v1/tenants/{B}/quotas"),
            ("GET", "/v1/platform/quotas"),
        ):
            answer = api.call(method, path, key=None, headers={"Authorization": header})
            assert answer.status == 401, (header[:60], path, answer.text)
            assert answer.json["type"].endswith("/unauthenticated")


def test_the_real_keys_still_work_with_a_case_insensitive_scheme(
    api: Api, keys: dict[str, str]
) -> None:
    answer = api.call(
        "GET", f"/v1/tenants/{A}/quotas", key=None, headers={"Authorization": f"bearer {keys[A]}"}
    )
    assert answer.status == 200


def test_a_revoked_key_is_refused_within_the_cache_time_by_every_process(
    api: Api, keys: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a process that verified A's key and caches it (D13: 30 s)
    now = [1000.0]
    monkeypatch.setattr("costguard.auth.time.monotonic", lambda: now[0])
    other_process = ApiKeys(api.ledger.table, frozenset(), cache_seconds=30)
    assert other_process.verify(keys[A]) is not None

    # When the key is revoked through this process
    key_id = keys[A].split(".")[1]
    assert api.call("DELETE", f"/v1/tenants/{A}/api-keys/{key_id}").status == 204

    # Then the other process refuses it once its cache entry is older than 30 s
    now[0] += 29
    assert other_process.verify(keys[A]) is not None
    now[0] += 2
    assert other_process.verify(keys[A]) is None


def test_every_secret_comparison_is_constant_time(
    api: Api, keys: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[Any, Any]] = []
    constant_time = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return constant_time(a, b)

    monkeypatch.setattr("costguard.auth.hmac.compare_digest", spy)
    verifier = ApiKeys(api.ledger.table, frozenset({fingerprint(ADMIN_KEY)}), cache_seconds=0)
    _, a_id, _ = keys[A].split(".")
    _, _, b_secret = keys[B].split(".")

    for presented, role in (
        (ADMIN_KEY, "admin"),
        (keys[A], "tenant"),
        (f"cg.{a_id}.{b_secret}", None),  # right key id, wrong secret
    ):
        calls.clear()
        principal = verifier.verify(presented)
        assert (principal.role if principal else None) == role
        assert any(a == fingerprint(presented) for a, _ in calls), presented[:20]


def test_no_plain_equality_touches_a_secret_in_verify() -> None:
    source = textwrap.dedent(inspect.getsource(ApiKeys.verify))
    secret_names = {"print_", "admin", "fingerprint", "api_key"}
    offending = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare) and any(
            isinstance(op, ast.Eq | ast.NotEq | ast.In | ast.NotIn) for op in node.ops
        ):
            names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
            names |= {
                n.value
                for n in ast.walk(node)
                if isinstance(n, ast.Constant) and isinstance(n.value, str)
            }
            if names & secret_names:
                offending.append(ast.unparse(node))
    assert offending == []
    assert "hmac.compare_digest" in source
