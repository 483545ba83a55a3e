"""Copy the console's chart library from node_modules into functions/api/console/.

`python -m local.vendor_console` after changing the `uplot` version in package.json (then
`npm ci`): the files are committed, so the console never loads anything from a CDN and the
Lambda asset ships them with functions/api/. `--check` fails when the committed copy differs
from node_modules (tests/api/test_console.py runs it).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "node_modules" / "uplot"
TARGET = ROOT / "functions" / "api" / "console"
FILES = {
    "dist/uPlot.iife.min.js": "uPlot.iife.min.js",
    "dist/uPlot.min.css": "uPlot.min.css",
    "LICENSE": "uPlot.LICENSE.txt",
}


def version() -> str:
    return str(json.loads((SOURCE / "package.json").read_text())["version"])


def differences() -> list[str]:
    return [
        target
        for source, target in FILES.items()
        if not (TARGET / target).is_file()
        or (TARGET / target).read_bytes() != (SOURCE / source).read_bytes()
    ]


def main(argv: list[str]) -> int:
    if not SOURCE.is_dir():
        print("node_modules/uplot is missing: run `npm ci` (make install) first", file=sys.stderr)
        return 2
    if "--check" in argv:
        stale = differences()
        if stale:
            print(f"stale console vendor files: {stale}; run python -m local.vendor_console")
        return 1 if stale else 0
    for source, target in FILES.items():
        (TARGET / target).write_bytes((SOURCE / source).read_bytes())
    print(f"uPlot {version()} → {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
