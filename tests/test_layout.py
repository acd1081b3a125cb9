"""The package-level import graph runs one way: each package imports only those below it.

Every `import` and `from ... import` in the package is read from the source (those inside
functions included), so a lazy import cannot hide a cycle.
"""

from __future__ import annotations

import ast
import re
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
    assert {"ponder.records.problem", "ponder.app.run.batch", "ponder.runtime.context"} <= found.keys()


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


def module_graph() -> nx.DiGraph:
    """Module -> module imports (lazy and TYPE_CHECKING ones included)."""
    found = modules()
    g = nx.DiGraph()
    g.add_nodes_from(found)
    for name, path in found.items():
        for target in imports_of(name, path):
            # `from .x import y` names y: the module x, unless y is a module of its own
            dst = target if target in found else target.rpartition(".")[0]
            if dst in found and dst != name:
                g.add_edge(name, dst)
    return g


def test_modules_inside_each_package_form_no_cycle():
    g = module_graph()
    assert ("ponder.runtime.context", "ponder.runtime.strategy") in g.edges  # the walk sees module edges
    inside = [(a, b) for a, b in g.edges if package_of(a) == package_of(b)]
    cycles = list(nx.simple_cycles(g.edge_subgraph(inside)))
    assert cycles == []


# The rule for strategies: a strategy module talks to the runtime through the contract only.
# From ponder.runtime it imports only ponder.runtime.contract (strategies/base.py, the package's
# shared helpers, also the registry in ponder.runtime.strategy). From ponder.backends nothing
# (the contract re-exports Sampling, Completion and Delta). From ponder.verifiers only values,
# pure functions and protocols (answer, voting, confidence, base), never a scorer or judge
# class. ponder.records (values) and strategies/ itself are free.
VERIFIER_VALUES = {"ponder.verifiers.answer", "ponder.verifiers.voting", "ponder.verifiers.confidence", "ponder.verifiers.base"}


def test_strategies_import_only_the_contract():
    found = modules()
    wrong = []
    for name, path in found.items():
        if package_of(name) != "strategies":
            continue
        allowed_runtime = {"ponder.runtime.contract"} | ({"ponder.runtime.strategy"} if name == "ponder.strategies.base" else set())
        for target in imports_of(name, path):
            module = target if target in found else target.rpartition(".")[0]
            pkg = package_of(module)
            if pkg == "runtime" and module not in allowed_runtime:
                wrong.append((name, target))
            elif pkg == "backends":
                wrong.append((name, target))
            elif pkg == "verifiers" and module not in VERIFIER_VALUES:
                wrong.append((name, target))
            elif pkg in ("app", "cli"):
                wrong.append((name, target))
    assert len([n for n in found if package_of(n) == "strategies"]) > 10
    assert wrong == []


def sub_packages() -> set[str]:
    """Every folder of the import package that is a package, as `ponder.x.y`."""
    return {
        ".".join(["ponder", *path.parent.relative_to(ROOT).parts])
        for pkg in ORDER[:-1] for path in (ROOT / pkg).rglob("__init__.py")
    }


def test_every_package_is_shipped():
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    assert {"ponder.app.run", "ponder.records.trace"} <= sub_packages()
    assert sub_packages() - listed == set()


def test_app_is_split_by_job_and_the_readme_table_names_every_part():
    assert sorted(p.name for p in (ROOT / "app").glob("*.py")) == ["__init__.py"]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = set(re.findall(r"^\| `([\w/]+)/` \|", readme, re.M))
    parts = set(ORDER[:-1]) - {"app"} | {f"app/{d.name}" for d in (ROOT / "app").iterdir() if (d / "__init__.py").is_file()}
    assert len(parts) > 10
    assert rows == parts
