"""The package-level import graph runs one way: each package imports only those below it.

Every `import` and `from ... import` in the package is read from the source (those inside
functions included), so a lazy import cannot hide a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parents[1]
# bottom to top; docs/layout.md's table says the same
ORDER = ["backends", "records", "verifiers", "runtime", "strategies", "app", "cli"]


def package_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "ponder":
        return None
    if len(parts) == 1:
        return "ponder"
    return parts[1] if parts[1] in ORDER else ("cli" if parts[1] == "cli" else "ponder")


def modules() -> dict[str, Path]:
    found = {"ponder.cli": ROOT / "cli.py", "ponder": ROOT / "__init__.py"}
    for pkg in ORDER[:-1]:
        for path in sorted((ROOT / pkg).rglob("*.py")):  # sub-packages too (app/sweep, app/view)
            parts = [pkg, *path.relative_to(ROOT / pkg).with_suffix("").parts]
            found[".".join(["ponder", *(parts[:-1] if parts[-1] == "__init__" else parts)])] = path
    return found


def imports_of(name: str, path: Path) -> set[str]:
    is_pkg = path.name == "__init__.py"
    here = name.split(".") if is_pkg else name.split(".")[:-1]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                base = node.module or ""
            else:
                base = ".".join(here[: len(here) - node.level + 1] + ([node.module] if node.module else []))
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names)  # `from .. import records`
    return out


def package_graph() -> nx.DiGraph:
    g = nx.DiGraph()
    for name, path in modules().items():
        src = package_of(name)
        for target in imports_of(name, path):
            dst = package_of(target)
            if dst is not None and dst != src and dst in ORDER + ["ponder"]:
                g.add_edge(src, dst)
    return g


def test_every_package_module_is_walked():
    found = modules()
    assert len(found) > 40
    assert {"ponder.records.problem", "ponder.app.batch", "ponder.runtime.context"} <= found.keys()


def test_package_imports_form_no_cycle():
    g = package_graph()
    assert g.number_of_edges() > 10
    cycles = list(nx.simple_cycles(g))
    assert cycles == []


def test_each_package_imports_only_packages_below_it():
    rank = {p: i for i, p in enumerate(ORDER)}
    rank["ponder"] = len(ORDER)  # the public API on top
    upward = sorted((a, b) for a, b in package_graph().edges if rank[b] >= rank[a])
    assert upward == []
