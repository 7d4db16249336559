"""Regenerate README.md's generated tables: settings (Settings dataclasses), metrics (catalogue).

python scripts/gen_docs.py          rewrite README.md
python scripts/gen_docs.py --check  exit 1 if README.md is out of date
"""

from __future__ import annotations

import importlib
import pathlib
import re
import sys

from netmesh import catalogue
from netmesh.config import settings_table

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"

# marker name -> "module:Class"
TABLES = {
    "agent-settings": "agent.settings:AgentSettings",
    "collector-settings": "collector.settings:CollectorSettings",
}


def metrics_table() -> str:
    """Every family of the catalogue: name, type, labels per endpoint, help."""
    rows = [
        "| metric | type | agent `/metrics` labels | collector `/metrics` labels | meaning |",
        "|---|---|---|---|---|",
    ]

    def cell(fam: catalogue.MetricFamily, endpoint: catalogue.Endpoint) -> str:
        if endpoint not in fam.exposed_by:
            return "—"
        names = fam.label_names(endpoint)
        return ", ".join(f"`{n}`" for n in names) if names else "(none)"

    for fam in sorted(catalogue.FAMILIES, key=lambda f: f.name):
        meaning = fam.help.replace("|", "\\|")
        rows.append(
            f"| `{fam.name}` | {fam.type} | {cell(fam, catalogue.AGENT)} | "
            f"{cell(fam, catalogue.COLLECTOR)} | {meaning} |"
        )
    return "\n".join(rows)


def table(marker: str) -> str:
    if marker == "metrics":
        return metrics_table()
    module, cls = TABLES[marker].split(":")
    return settings_table(getattr(importlib.import_module(module), cls))


def render(text: str) -> str:
    for marker in (*TABLES, "metrics"):
        begin, end = f"<!-- BEGIN {marker} -->", f"<!-- END {marker} -->"
        if begin not in text:
            continue
        table_text = table(marker)
        pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
        block = f"{begin}\n{table_text}\n{end}"
        text = pattern.sub(lambda _m, block=block: block, text)
    return text


def main() -> int:
    old = README.read_text()
    new = render(old)
    if "--check" in sys.argv:
        if new != old:
            print(
                "README.md generated tables are stale: run python scripts/gen_docs.py",
                file=sys.stderr,
            )
            return 1
        return 0
    README.write_text(new)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
