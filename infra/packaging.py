"""Lambda assets without Docker: one directory per function, zipped by CDK.

An asset is the function's runtime dependencies (arm64 wheels, at the versions pinned in
`uv.lock`, hash-checked), `shared/costguard` as the top-level package `costguard`, and
`functions/*.py` (the package and the handler helpers every function may share, such as
`functions/scheduled.py`) + `functions/<name>/`, so the handler is `functions.<name>.handler.…`.
boto3 and botocore are not vendored: the Lambda Python runtime has them.

The dependencies come from PyPI (`uv pip install --target … --python-platform
aarch64-manylinux2014 --only-binary :all:`) once per lock change, cached under
`<cdk outdir>/.costguard-build/`. With `bundle=False` an asset holds the sources only: enough
to synthesize and check the template offline (the tests), not to run.

A real asset also holds its modules' bytecode, compiled by the target's Python (D120): the
function's code directory is read-only, so a module without it is compiled from source on
every cold start. Hash-based and unchecked (PEP 552): the asset never changes under the
function, and CDK zips every file with one fixed time, which would make a timestamp-checked
cache look stale; the bytes depend on the sources and the Python version only, so the asset's
hash stays the same from machine to machine. Paths in the bytecode are the function's
(`/var/task/...`), not the build directory's.

`uv run python -m infra.packaging` builds the real assets and prints their sizes.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

from infra.config import REPO_ROOT

PYTHON_VERSION = "3.13"
"""The Lambda runtime's Python (see functions.RUNTIME): wheels are picked for this ABI."""
PLATFORM = "aarch64-manylinux2014"
"""arm64 Lambda (Amazon Linux 2023, glibc 2.34): manylinux2014 wheels run there."""
PROVIDED_BY_RUNTIME = frozenset({"boto3", "botocore", "s3transfer"})
TASK_ROOT = "/var/task"
"""Where Lambda puts a function's code: the directory its bytecode names as the source's."""


@dataclass(frozen=True)
class Target:
    """Where the wheels of an asset must run."""

    platform: str
    python_version: str

    @property
    def arch(self) -> str:
        return self.platform.split("-", 1)[0]


LAMBDA = Target(PLATFORM, PYTHON_VERSION)
HOST = Target(
    f"{platform.machine()}-manylinux2014", f"{sys.version_info.major}.{sys.version_info.minor}"
)
"""This machine: the same pinned packages, with wheels it can import. Only for the deploy
rehearsal (tests/infra/test_rehearsal.py), which runs every asset here; never deployed."""


def project_dependencies(pyproject: Path = REPO_ROOT / "pyproject.toml") -> tuple[str, ...]:
    """The names in pyproject.toml's `[project] dependencies`, normalized as uv.lock has them:
    one list, so a new runtime dependency cannot be left out of the Lambda assets."""
    specs = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    names = (re.match(r"[A-Za-z0-9._-]+", spec) for spec in specs)
    return tuple(re.sub(r"[-_.]+", "-", m.group(0)).lower() for m in names if m)


RUNTIME_PACKAGES = tuple(n for n in project_dependencies() if n not in PROVIDED_BY_RUNTIME)
"""The project's runtime dependencies that the Lambda runtime lacks."""

SHARED = REPO_ROOT / "shared" / "costguard"
FUNCTIONS = REPO_ROOT / "functions"
LOCK = REPO_ROOT / "uv.lock"
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".DS_Store")


@dataclass(frozen=True)
class Pinned:
    name: str
    version: str
    hashes: tuple[str, ...]

    def line(self) -> str:
        return " ".join([f"{self.name}=={self.version}", *(f"--hash={h}" for h in self.hashes)])


def _wheel_fits(filename: str, arch: str = LAMBDA.arch) -> bool:
    """Wheels that can be the one picked for `arch` Linux (keeps the hash list short)."""
    tags = filename.removesuffix(".whl").split("-")[-1]
    return tags == "any" or (arch in tags and "musllinux" not in tags)


def locked_requirements(lock: Path = LOCK, target: Target = LAMBDA) -> list[Pinned]:
    """RUNTIME_PACKAGES and everything they depend on, at the versions and hashes of uv.lock."""
    packages = {p["name"]: p for p in tomllib.loads(lock.read_text())["package"]}
    wanted: list[str] = []
    todo = list(RUNTIME_PACKAGES)
    while todo:
        name = todo.pop()
        if name in wanted or name in PROVIDED_BY_RUNTIME:
            continue
        if name not in packages:
            raise LookupError(f"{name} is not in {lock.name}: run `uv lock`")
        wanted.append(name)
        # Markers are ignored on purpose: an extra package for another Python is harmless.
        todo.extend(dep["name"] for dep in packages[name].get("dependencies", []))
    pinned = []
    for name in sorted(wanted):
        package = packages[name]
        wheels = [
            w
            for w in package.get("wheels", [])
            if _wheel_fits(w["url"].rsplit("/", 1)[1], target.arch)
        ]
        if not wheels:
            raise LookupError(f"{name} {package['version']} has no wheel for {target.platform}")
        pinned.append(Pinned(name, package["version"], tuple(sorted(w["hash"] for w in wheels))))
    return pinned


def requirements_text(lock: Path = LOCK, target: Target = LAMBDA) -> str:
    return "".join(p.line() + "\n" for p in locked_requirements(lock, target))


def _uv() -> str:
    found = os.environ.get("UV") or shutil.which("uv")
    if not found:
        raise RuntimeError("uv not found: synthesize with `make synth` (or from `uv run`)")
    return found


def build_dependencies(cache: Path, lock: Path = LOCK, target: Target = LAMBDA) -> Path:
    """The runtime dependencies installed for `target` (arm64 Lambda), once per lock change."""
    text = requirements_text(lock, target)
    # An asset built where no interpreter of the target's Python could be had holds sources
    # only: its cache entry must not be taken for one with bytecode.
    compiled = "bytecode" if python_for(target) is not None else "sources"
    build = f"{target.platform} {target.python_version} {compiled}\n{text}"
    key = hashlib.sha256(build.encode()).hexdigest()[:16]
    built = cache / f"deps-{key}"
    if built.is_dir():
        return built
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix="deps-") as work:
        requirements = Path(work) / "requirements.txt"
        requirements.write_text(text)
        into = Path(work) / "site"
        subprocess.run(  # noqa: S603 - fixed arguments, uv from the environment
            [
                _uv(),
                "pip",
                "install",
                "--quiet",
                "--no-config",
                "--target",
                str(into),
                "--python-platform",
                target.platform,
                "--python-version",
                target.python_version,
                "--only-binary",
                ":all:",
                "--no-deps",
                "--require-hashes",
                "--requirement",
                str(requirements),
            ],
            check=True,
        )
        _make_reproducible(into)
        compile_bytecode(into, target)
        into.rename(built)  # complete or absent: never half a cache entry
    return built


def _make_reproducible(site: Path) -> None:
    """Drop what differs between machines, so the same lock gives the same asset hash.

    Console scripts (bin/) carry this machine's interpreter path in their shebang, and the
    RECORD files list them with their hashes; a Lambda never runs them.
    """
    shutil.rmtree(site / "bin", ignore_errors=True)
    for record in site.glob("*.dist-info/RECORD"):
        lines = record.read_text().splitlines(keepends=True)
        record.write_text("".join(line for line in lines if not line.startswith("bin/")))
    for cached in list(site.rglob("__pycache__")):
        shutil.rmtree(cached)


def python_for(target: Target) -> str | None:
    """An interpreter of `target`'s Python version, to compile bytecode with: this one when it
    is that version, else the one uv finds, else one uv installs; None when there is none."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" == target.python_version:
        return sys.executable
    find = [_uv(), "python", "find", "--no-config", target.python_version]
    found = subprocess.run(find, capture_output=True, text=True, check=False)  # noqa: S603
    if found.returncode:
        install = [_uv(), "python", "install", "--no-config", target.python_version]
        if subprocess.run(install, check=False).returncode:  # noqa: S603 - fixed arguments
            return None
        managed = [*find, "--python-preference", "only-managed"]
        found = subprocess.run(managed, capture_output=True, text=True, check=False)  # noqa: S603
    if found.returncode:
        return None
    return found.stdout.strip() or None


def compile_bytecode(root: Path, target: Target, parts: tuple[str, ...] = ()) -> bool:
    """Every module under `root` (or under its `parts`) compiled for `target`:
    `__pycache__/<module>.cpython-<version>.pyc`, unchecked-hash, its source named
    /var/task/<path from root>. False (and a warning) when no interpreter of the target's
    version can be had: the asset then holds sources only, compiled on every cold start."""
    python = python_for(target)
    if python is None:
        print(
            f"costguard: no Python {target.python_version} to compile bytecode with (uv could "
            f"neither find nor install one): {root} ships sources only, compiled on every cold "
            f"start (D120). Put a python{target.python_version} on PATH and build again.",
            file=sys.stderr,
        )
        return False
    trees = [str(root / part) for part in parts] if parts else [str(root)]
    subprocess.run(  # noqa: S603 - fixed arguments, the interpreter found above
        [
            python,
            "-m",
            "compileall",
            "-q",
            "-j",
            "0",
            "--invalidation-mode",
            "unchecked-hash",
            "-s",
            str(root),
            "-p",
            TASK_ROOT,
            *trees,
        ],
        check=True,
    )
    return True


def stage_function(
    name: str, build: Path, dependencies: Path | None, target: Target | None = None
) -> Path:
    """The asset directory of `functions/<name>`: dependencies (if any) + costguard + handler;
    with a `target`, costguard's and the handler's bytecode for it (the dependencies bring
    theirs)."""
    source = FUNCTIONS / name
    if not (source / "handler.py").is_file():
        raise FileNotFoundError(f"no handler at {source / 'handler.py'}")
    asset = build / "assets" / name
    if asset.exists():
        shutil.rmtree(asset)
    asset.mkdir(parents=True)
    if dependencies is not None:
        shutil.copytree(dependencies, asset, dirs_exist_ok=True)
    shutil.copytree(SHARED, asset / "costguard", ignore=IGNORE)
    (asset / "functions").mkdir()
    for module in sorted(FUNCTIONS.glob("*.py")):  # __init__ and the shared handler helpers
        shutil.copy2(module, asset / "functions" / module.name)
    shutil.copytree(source, asset / "functions" / name, ignore=IGNORE)
    if target is not None:
        compile_bytecode(asset, target, ("costguard", "functions"))
    return asset


@dataclass(frozen=True)
class Size:
    files: int
    unzipped: int
    zipped: int


def measure(asset: Path) -> Size:
    """Files, bytes on disk and bytes zipped (deflate, as CDK uploads it) of an asset."""
    files = sorted(p for p in asset.rglob("*") if p.is_file())
    with tempfile.TemporaryFile() as out:
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in files:
                archive.write(path, path.relative_to(asset))
        zipped = out.tell()
    return Size(len(files), sum(p.stat().st_size for p in files), zipped)


def function_names() -> list[str]:
    return sorted(p.parent.name for p in FUNCTIONS.glob("*/handler.py"))


def main(argv: list[str]) -> int:
    """Build every function's real asset into cdk.out/.costguard-build and print its size."""
    build = Path(argv[0]) if argv else REPO_ROOT / "cdk.out" / ".costguard-build"
    dependencies = build_dependencies(build)
    print(f"dependencies ({PLATFORM}, Python {PYTHON_VERSION}): {dependencies}")
    print(f"{'function':<10} {'files':>6} {'unzipped MiB':>13} {'zipped MiB':>11}")
    for name in function_names():
        size = measure(stage_function(name, build, dependencies, LAMBDA))
        print(
            f"{name:<10} {size.files:>6} {size.unzipped / 2**20:>13.2f} {size.zipped / 2**20:>11.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
