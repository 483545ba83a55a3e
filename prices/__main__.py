"""`python -m prices` regenerates the catalog; `python -m prices fetch` only fetches the map."""

from __future__ import annotations

import json
import sys

from prices.generate import generate
from prices.source import CATALOG, config, fetch, read_json


def build() -> str:
    cfg = config()
    price_map = json.loads(fetch(cfg).read_text("utf-8"))
    previous = json.loads(CATALOG.read_text("utf-8")) if CATALOG.exists() else None
    return generate(
        price_map, cfg, read_json("overrides.json"), read_json("sandbox.json"), previous
    )


def main(argv: list[str]) -> int:
    if argv[1:] == ["fetch"]:
        fetch()
        return 0
    text = build()
    CATALOG.write_text(text, "utf-8")
    models = json.loads(text)["models"]
    print(f"{CATALOG.relative_to(CATALOG.parents[3])}: {len(models)} model prices")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
