"""Gate: the agent never imports the collector or the lab.

The collector (and the shared netmesh package) import only agent.report from the agent.
"""

from __future__ import annotations

import ast
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent

RULES = {
    "agent": lambda mod: not mod.startswith(("collector", "lab")),
    "netmesh": lambda mod: (
        not mod.startswith(("collector", "lab"))
        and (not mod.startswith("agent") or mod == "agent.report")
    ),
    "collector": lambda mod: (
        not mod.startswith("lab") and (not mod.startswith("agent") or mod == "agent.report")
    ),
}


def imports(path: pathlib.Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def main() -> int:
    bad = []
    for package, allowed in RULES.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            bad += [
                f"{path.relative_to(ROOT)}: imports {m}" for m in imports(path) if not allowed(m)
            ]
    for line in bad:
        print(f"import rule broken: {line}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
