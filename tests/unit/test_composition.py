"""One composition root per function (docs/decisions.md D61): a handler builds its dependencies
— the ledger, the alert book, publishers, clients, plans — in `root()` or the `compose()` that
`make run` shares, and nowhere else; the API's routes get theirs from `functions/api/deps.py`.

Read from the sources with `ast`: a builder called from a route, a handler body or a helper is
wiring scattered again."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ROOT / "functions"
BUILDERS = {
    "make_client",
    "client",  # boto3.client(...)
    "get_secret",
    "Ledger",
    "LedgerTable",
    "AlertBook",
    "Outbox",
    "Publisher",
    "StreamAlerts",
    "Onboarding",
    "ApiKeys",
}
ROOTS = {"root", "compose", "webhook"}
"""Where a handler module may build: its root, the wiring it shares with `make run`, and the
Slack notifier's per-invocation webhook."""
HELPERS = {"functions/scheduled.py": {"run_scheduled", "root"}}
"""A scheduled run's alert book is the run's own (the rules and deadline are too); the
scheduled functions' shared factory builds each one's `root()`."""


def builds(path: Path) -> list[tuple[str, str]]:
    """(enclosing function, builder) of every builder call in a module."""
    found = []

    def visit(node: ast.AST, where: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = (
                child.name if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else where
            )
            if isinstance(child, ast.Call):
                func = child.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name in BUILDERS or name.endswith("_from_settings"):
                    found.append((where, name))
            visit(child, inner)

    visit(ast.parse(path.read_text("utf-8")), "<module>")
    return found


def test_the_check_sees_a_builder_outside_the_root(tmp_path: Path) -> None:
    source = tmp_path / "handler.py"
    source.write_text(
        "def root():\n    return ledger_from_settings()\n"
        "def handler(event):\n    return AlertBook(root().table, now)\n"
    )
    assert builds(source) == [("root", "ledger_from_settings"), ("handler", "AlertBook")]


@pytest.mark.parametrize(
    "path",
    sorted(
        str(p.relative_to(ROOT))
        for p in FUNCTIONS.rglob("*.py")
        if p.name != "deps.py"  # the API's composition root
    ),
)
def test_functions_build_only_in_their_composition_root(path: str) -> None:
    allowed = ROOTS if path.endswith("/handler.py") and "/api/" not in path else set()
    allowed |= HELPERS.get(path, set())
    scattered = [(where, name) for where, name in builds(ROOT / path) if where not in allowed]
    assert scattered == []


def test_every_function_but_the_api_has_a_root() -> None:
    for handler in sorted(FUNCTIONS.glob("*/handler.py")):
        if handler.parent.name == "api":
            assert (handler.parent / "deps.py").exists()
            continue
        body = ast.parse(handler.read_text("utf-8")).body
        defined = {n.name for n in body if isinstance(n, ast.FunctionDef)}
        # a scheduled function's root comes from `functions.scheduled.scheduled_function`
        defined |= {
            t.id
            for n in body
            if isinstance(n, ast.Assign)
            for target in n.targets
            for t in (target.elts if isinstance(target, ast.Tuple) else [target])
            if isinstance(t, ast.Name)
        }
        assert defined & {"root", "webhook"}, handler
