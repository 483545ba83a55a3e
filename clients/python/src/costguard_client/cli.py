"""The `costguard` console script. The CLI needs the `cli` extra (click); the library does not."""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from costguard_client._commands import cli
    except ModuleNotFoundError as missing:
        if missing.name != "click":
            raise
        sys.stderr.write("the costguard CLI needs click: pip install 'costguard-client[cli]'\n")
        raise SystemExit(1) from None
    cli(prog_name="costguard")


if __name__ == "__main__":
    main()
