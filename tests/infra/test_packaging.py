"""Lambda assets without Docker: the pinned requirement set and the asset layout (offline)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from infra import packaging
from infra.config import REPO_ROOT


def test_requirements_are_the_runtime_closure_pinned_by_the_lock() -> None:
    pinned = {p.name: p for p in packaging.locked_requirements()}
    lock = {p["name"]: p for p in tomllib.loads((REPO_ROOT / "uv.lock").read_text())["package"]}
    assert set(packaging.RUNTIME_PACKAGES) <= set(pinned)
    assert {"pydantic-core", "typing-extensions"} <= set(pinned)
    # the Lambda runtime has boto3; nothing from the dev or infra groups gets in
    for absent in ("boto3", "botocore", "s3transfer", "moto", "aws-cdk-lib", "pytest", "ruff"):
        assert absent not in pinned
    for name, p in pinned.items():
        assert p.version == lock[name]["version"]
        assert p.hashes and all(h.startswith("sha256:") for h in p.hashes)
    # pydantic-core is compiled: the arm64 wheel for the runtime's Python must be in the lock
    wheels = [w["url"] for w in lock["pydantic-core"]["wheels"]]
    tag = "cp" + packaging.PYTHON_VERSION.replace(".", "")
    assert any(f"-{tag}-{tag}-manylinux" in u and "aarch64" in u for u in wheels)


def test_requirement_lines_check_hashes() -> None:
    text = packaging.requirements_text()
    for line in text.splitlines():
        name_version, *hashes = line.split(" ")
        assert "==" in name_version
        assert hashes and all(h.startswith("--hash=sha256:") for h in hashes)


def test_stage_function_lays_out_sources_like_the_repo(tmp_path: Path) -> None:
    fake_dependencies = tmp_path / "deps"
    (fake_dependencies / "pydantic").mkdir(parents=True)
    (fake_dependencies / "pydantic" / "__init__.py").write_text("")
    asset = packaging.stage_function("sweeper", tmp_path / "build", fake_dependencies)
    assert (asset / "pydantic" / "__init__.py").is_file()
    assert (asset / "functions" / "__init__.py").is_file()
    assert (asset / "functions" / "scheduled.py").is_file()  # shared handler helpers ship too
    assert (asset / "functions" / "sweeper" / "handler.py").is_file()
    assert not (asset / "functions" / "api").exists()  # only its own function
    assert (asset / "costguard" / "store" / "schema.py").is_file()
    assert not list(asset.rglob("__pycache__"))
    # staging again replaces the asset (no file of an older build survives)
    (asset / "stale.txt").write_text("old")
    again = packaging.stage_function("sweeper", tmp_path / "build", None)
    assert again == asset and not (asset / "stale.txt").exists()
    assert not (asset / "pydantic").exists()


def test_reproducible_drops_scripts_and_their_records(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "bin").mkdir(parents=True)
    (site / "bin" / "ulid").write_text("#!/some/machine/python\n")
    (site / "pkg-1.0.dist-info").mkdir()
    record = site / "pkg-1.0.dist-info" / "RECORD"
    record.write_text("bin/ulid,sha256=abc,20\npkg/__init__.py,sha256=def,0\n")
    (site / "pkg" / "__pycache__").mkdir(parents=True)
    packaging._make_reproducible(site)
    assert not (site / "bin").exists()
    assert record.read_text() == "pkg/__init__.py,sha256=def,0\n"
    assert not (site / "pkg" / "__pycache__").exists()


def test_measure(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.py").write_text("x = 1\n" * 1000)
    size = packaging.measure(tmp_path)
    assert size.files == 1
    assert size.unzipped == 6000
    assert 0 < size.zipped < size.unzipped


def test_every_runtime_dependency_of_the_project_goes_into_the_assets() -> None:
    """The asset's package list is pyproject's, not a second hand-kept list (one once missed
    OpenTelemetry: every function would have failed its import in AWS)."""
    import tomllib

    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    declared = {
        spec.split(">")[0].split("<")[0].split("=")[0].split("[")[0].strip().lower()
        for spec in pyproject["project"]["dependencies"]
    }
    shipped = {p.name for p in packaging.locked_requirements()}
    assert declared - packaging.PROVIDED_BY_RUNTIME <= shipped
    assert {"opentelemetry-sdk", "opentelemetry-api", "aws-lambda-powertools"} <= shipped
    assert not shipped & packaging.PROVIDED_BY_RUNTIME


def test_a_real_asset_holds_bytecode_python_loads_without_its_sources(tmp_path: Path) -> None:
    """D120: compiled by the target's Python, hash-based and unchecked (CDK zips every file
    with one fixed time), naming the sources where Lambda puts them, the same bytes each build."""
    import importlib.util
    import marshal
    import sys

    fake_dependencies = tmp_path / "deps"
    (fake_dependencies / "dep").mkdir(parents=True)
    (fake_dependencies / "dep" / "__init__.py").write_text("X = 1\n")
    packaging.compile_bytecode(fake_dependencies, packaging.HOST)
    asset = packaging.stage_function("api", tmp_path / "build", fake_dependencies, packaging.HOST)
    tag = sys.implementation.cache_tag
    compiled = {
        source: Path(importlib.util.cache_from_source(str(source)))
        for source in asset.rglob("*.py")
    }
    assert compiled and all(pyc.is_file() for pyc in compiled.values())
    assert all(pyc.name.endswith(f".{tag}.pyc") for pyc in compiled.values())
    settings = asset / "costguard" / "settings.py"
    data = compiled[settings].read_bytes()
    assert data[:4] == importlib.util.MAGIC_NUMBER
    assert int.from_bytes(data[4:8], "little") == 0b01  # hash-based, source not checked
    code = marshal.loads(data[16:])
    assert code.co_filename == "/var/task/costguard/settings.py"
    assert compiled[asset / "dep" / "__init__.py"].is_file()  # the dependencies' came along
    again = packaging.stage_function("api", tmp_path / "again", fake_dependencies, packaging.HOST)
    assert (again / compiled[settings].relative_to(asset)).read_bytes() == data


def test_bytecode_is_compiled_by_the_targets_python() -> None:
    import sys

    assert packaging.python_for(packaging.HOST) == sys.executable


def test_without_an_interpreter_of_the_targets_python_the_asset_ships_sources(
    tmp_path: Path, monkeypatch: Any, capsys: Any
) -> None:
    # Given a uv that can neither find nor install a Python (no network, say)
    uv = tmp_path / "uv"
    uv.write_text("#!/bin/sh\nexit 1\n")
    uv.chmod(0o755)
    monkeypatch.setenv("UV", str(uv))
    elsewhere = packaging.Target(packaging.PLATFORM, "3.99")
    # When an asset is staged for it
    asset = packaging.stage_function("sweeper", tmp_path / "build", None, elsewhere)
    # Then it holds its sources, no bytecode, and the build says so
    assert packaging.python_for(elsewhere) is None
    assert (asset / "functions" / "sweeper" / "handler.py").is_file()
    assert not list(asset.rglob("*.pyc"))
    assert "ships sources only" in capsys.readouterr().err
