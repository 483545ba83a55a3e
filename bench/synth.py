"""Section 5: `cdk synth` time and each Lambda asset's size (unzipped and zipped).

Runs the real synthesis (arm64 wheels installed without Docker) twice: once from an empty
build directory and once warm (dependencies already built for this lock).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import time
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _synth(out: Path) -> float:
    env = {**os.environ, "PATH": f"{ROOT / '.tools' / 'bin'}:{os.environ['PATH']}"}
    started = time.perf_counter()
    subprocess.run(
        ["npx", "--no-install", "cdk", "synth", "--quiet", "--output", str(out)],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def _zipped(folder: Path) -> int:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder))
    return buffer.tell()


def measure_synth() -> dict[str, Any]:
    if not (ROOT / "node_modules" / ".bin" / "cdk").exists():
        return {"skipped": "the CDK CLI is not installed (make install)"}
    out = ROOT / "cdk.out.bench"
    shutil.rmtree(out, ignore_errors=True)
    cold = _synth(out)
    warm = _synth(out)
    manifest = json.loads((out / "costguard.assets.json").read_text())
    assets = {}
    for asset in manifest.get("files", {}).values():
        folder = out / asset["source"]["path"]
        if folder.is_dir():
            files = [p for p in folder.rglob("*") if p.is_file()]
            name = next(
                (
                    d.name
                    for d in (folder / "functions").iterdir()
                    if d.is_dir() and d.name != "__pycache__"
                ),
                folder.name,
            )
            assets[name] = {
                "files": len(files),
                "unzipped_mib": round(sum(p.stat().st_size for p in files) / 2**20, 2),
                "zipped_mib": round(_zipped(folder) / 2**20, 2),
            }
    shutil.rmtree(out, ignore_errors=True)
    return {"synth_cold_s": round(cold, 1), "synth_warm_s": round(warm, 1), "assets": assets}


if __name__ == "__main__":
    print(json.dumps(measure_synth(), indent=1))
