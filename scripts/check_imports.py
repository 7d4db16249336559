"""Gate: agent/ and collector/ import netmesh/ and never each other; netmesh/ imports neither.

No exceptions: the wire format and the metric catalogue live in netmesh/, so
nothing shared has to reach across. The lab (a test bed) may import all three.
"""

from __future__ import annotations

import ast
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROJECT = ("agent", "collector", "lab", "netmesh", "tests", "scripts")

# package -> project packages it may import
ALLOWED: dict[str, tuple[str, ...]] = {
    "netmesh": ("netmesh",),
    "agent": ("agent", "netmesh"),
    "collector": ("collector", "netmesh"),
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


def violations(root: pathlib.Path = ROOT) -> list[str]:
    bad = []
    for package, allowed in ALLOWED.items():
        for path in sorted((root / package).rglob("*.py")):
            for module in imports(path):
                top = module.split(".")[0]
                if top in PROJECT and top not in allowed:
                    bad.append(f"{path.relative_to(root)}: imports {module}")
    return bad


def main() -> int:
    bad = violations()
    for line in bad:
        print(f"import rule broken: {line}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
