"""Regenerate README.md's generated tables: settings, metrics, Helm chart parameters.

Settings come from the Settings dataclasses, metrics from the catalogue, the
chart's parameters from the ``# --`` comments of charts/netmesh/values.yaml.

python scripts/gen_docs.py          rewrite README.md
python scripts/gen_docs.py --check  exit 1 if README.md is out of date
"""

from __future__ import annotations

import importlib
import json
import pathlib
import re
import sys
from typing import Any

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
# This checkout's packages, not whichever checkout the venv's editable install points at.
sys.path.insert(0, str(ROOT))

from netmesh import catalogue  # noqa: E402
from netmesh.config import settings_table  # noqa: E402

README = ROOT / "README.md"
VALUES = ROOT / "charts" / "netmesh" / "values.yaml"

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


def helm_values_table(path: pathlib.Path = VALUES) -> str:
    """Every leaf key of values.yaml: dotted name, default, its ``# --`` comment."""
    values = yaml.safe_load(path.read_text())
    rows = ["| parameter | default | meaning |", "|---|---|---|"]
    stack: list[tuple[int, str]] = []
    comment = ""
    for line in path.read_text().splitlines():
        stripped = line.lstrip()
        indent = len(line) - len(stripped)
        if stripped.startswith("# -- "):
            comment = stripped[5:]
            continue
        match = re.match(r"([A-Za-z0-9_]+):", stripped)
        if not match or not comment:
            continue
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, match.group(1)))
        names = [name for _, name in stack]
        value: Any = values
        for name in names:
            value = value[name]
        if not isinstance(value, dict) or not value or names[-1] in {"resources", "labels"}:
            shown = json.dumps(value).replace("|", "\\|")
            meaning = comment.replace("|", "\\|")
            rows.append(f"| `{'.'.join(names)}` | `{shown}` | {meaning} |")
        comment = ""
    return "\n".join(rows)


def table(marker: str) -> str:
    if marker == "metrics":
        return metrics_table()
    if marker == "helm-values":
        return helm_values_table()
    module, cls = TABLES[marker].split(":")
    return settings_table(getattr(importlib.import_module(module), cls))


def render(text: str) -> str:
    for marker in (*TABLES, "metrics", "helm-values"):
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
