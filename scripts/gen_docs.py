"""Regenerate the settings tables in README.md from the Settings dataclasses.

python scripts/gen_docs.py          rewrite README.md
python scripts/gen_docs.py --check  exit 1 if README.md is out of date
"""

from __future__ import annotations

import importlib
import pathlib
import re
import sys

from netmesh.config import settings_table

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"

# marker name -> "module:Class"
TABLES = {
    "agent-settings": "agent.settings:AgentSettings",
    "collector-settings": "collector.settings:CollectorSettings",
}


def render(text: str) -> str:
    for marker, target in TABLES.items():
        begin, end = f"<!-- BEGIN {marker} -->", f"<!-- END {marker} -->"
        if begin not in text:
            continue
        module, cls = target.split(":")
        table = settings_table(getattr(importlib.import_module(module), cls))
        pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
        block = f"{begin}\n{table}\n{end}"
        text = pattern.sub(lambda _m, block=block: block, text)
    return text


def main() -> int:
    old = README.read_text()
    new = render(old)
    if "--check" in sys.argv:
        if new != old:
            print(
                "README.md settings tables are stale: run python scripts/gen_docs.py",
                file=sys.stderr,
            )
            return 1
        return 0
    README.write_text(new)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
