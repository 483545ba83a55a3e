"""The shape of the imports: no circles, and every import points one way.

Read from the sources with `ast` (nothing is imported): every `import` counts, at module level
or inside a function, because a lazy import that closes a circle is still a circle — it only
moves the failure from the import to the first call.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"costguard": ROOT / "shared" / "costguard"} | {
    name: ROOT / name for name in ("functions", "local", "infra")
}
MAY_IMPORT = {
    "costguard": {"costguard"},
    "functions": {"costguard", "functions"},
    "local": {"costguard", "functions", "local"},
    "infra": {"costguard", "infra"},
}
"""The domain imports nothing of ours; the handlers only the domain; the local runner the
handlers and the domain (never the CDK app); the CDK app the domain (never a handler)."""


def modules() -> dict[str, Path]:
    found = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = [package, *path.relative_to(folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def imported(name: str, path: Path) -> Iterator[str]:
    """Every module `name` imports, as written (absolute), wherever the statement is."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def graph() -> dict[str, set[str]]:
    """Our modules → the modules of ours they import (`from a import b` counts `a.b` when it
    is a module, else `a`)."""
    known = modules()
    edges: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        for target in imported(name, path):
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                edges[name].add(target)
    return edges


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(edges[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_the_finder_sees_a_circle_and_a_lazy_import() -> None:
    # Given a → b at module level and b → a inside a function
    edges = {"a": {"b"}, "b": {"a"}, "c": {"a"}}
    # Then the circle is found, and c (which only imports) is not in it
    assert circles(edges) == [["a", "b"]]


def test_relative_and_lazy_imports_are_read(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text("from . import x\ndef f():\n    from ..y import z\n")
    assert set(imported("pkg.sub.m", source)) == {"pkg.sub", "pkg.sub.x", "pkg.y", "pkg.y.z"}


def test_there_is_no_import_circle_in_shared_functions_local_or_infra() -> None:
    assert circles(graph()) == []


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_imports_point_one_way(package: str) -> None:
    wrong = sorted(
        f"{source} → {target}"
        for source, targets in graph().items()
        if source.split(".")[0] == package
        for target in targets
        if target.split(".")[0] not in MAY_IMPORT[package]
    )
    assert wrong == []
