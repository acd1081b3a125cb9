"""The strategy contract is code: runtime/contract.py. The context implements it, strategies use
nothing beyond it, and docs/contract.md is written from it."""

from __future__ import annotations

import ast
from pathlib import Path

from ponder.app.docs.contract_page import PAGE, members, page
from ponder.backends.scripted import ScriptedBackend
from ponder.records.problem import Problem
from ponder.records.trace.subtree import Subtree
from ponder.runtime.context import Context
from ponder.runtime.contract import StrategyContext, Tree

ROOT = Path(__file__).resolve().parents[2]
CONTEXT_NAMES = {"ctx", "pot", "roll"}  # what strategies call a StrategyContext


def names(protocol: type) -> set[str]:
    return {name for name, _, _ in members(protocol)}


def test_the_page_is_written_from_the_protocol():
    on_disk = PAGE.read_text(encoding="utf-8")
    assert on_disk == page(on_disk), "docs/contract.md differs from runtime/contract.py: run `python -m ponder.app.docs.contract_page`"


def test_every_member_has_a_one_line_contract():
    for protocol in (StrategyContext, Tree):
        found = members(protocol)
        assert len(found) > 8
        assert [name for name, _, doc in found if not doc or "\n" in doc] == []


def test_the_context_and_the_trees_implement_the_contract():
    ctx = Context(Problem(id="c", question="What is 3 + 4?"), ScriptedBackend(["\\boxed{7}"]))
    assert isinstance(ctx, StrategyContext)
    sub = Subtree(ctx.tree, ctx.tree.root)
    for tree in (ctx.tree, sub):
        assert [m for m in names(Tree) if not hasattr(tree, m)] == []
    # what the context shows beyond the contract is the ledger, which the solver reads
    public = {a for a in dir(ctx) if not a.startswith("_")}
    assert public - names(StrategyContext) == {"ledger"}


def touched(path: Path) -> set[tuple[str, str]]:
    """(`ctx` or `tree`, member) for every attribute a strategy reads off its context or tree."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Attribute):
            continue
        if isinstance(node.value, ast.Name) and node.value.id in CONTEXT_NAMES:
            out.add(("ctx", node.attr))
        elif isinstance(node.value, ast.Attribute) and node.value.attr == "tree" and isinstance(node.value.value, ast.Name) and node.value.value.id in CONTEXT_NAMES:
            out.add(("tree", node.attr))
    return out


def test_strategies_touch_only_the_contract():
    allowed = {("ctx", m) for m in names(StrategyContext)} | {("tree", m) for m in names(Tree)}
    used: dict[str, set[tuple[str, str]]] = {p.name: touched(p) for p in sorted((ROOT / "strategies").glob("*.py"))}
    assert ("ctx", "extend") in used["beam_search.py"] | used["best_of_n.py"]  # the scan sees them
    outside = {name: sorted(u - allowed) for name, u in used.items() if u - allowed}
    assert outside == {}
