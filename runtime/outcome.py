"""A problem's Result from what its strategy chose: never an empty answer while the tree holds text.

A budget that ran out can leave a strategy with no choice, or an empty one. The Result then
answers with the best complete candidate, else the best partial one, else the best trajectory
anywhere in the tree. The chosen node is marked in the tree, and every leaf that is neither a
candidate nor the choice is marked pruned, so a reader of the trace sees what was kept.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from ..records.ledger_summary import LedgerSummary
from ..records.problem import Problem
from ..records.result import Candidate, Result
from ..records.trace import Node, Trace
from ..records.trace.subtree import Subtree
from ..verifiers.answer import extract


def candidate_of(problem: Problem, node: Node, score: float | None = None) -> Candidate:
    """The candidate answer of the trajectory ending at `node`."""
    return Candidate(
        text=node.text, answer=extract(node.text, problem.choices).text, score=score,
        finish=node.finish, tokens=len(node.generated_ids), node=node.id,
    )


def outcome(
    problem: Problem, tree: Trace | Subtree, ledger: LedgerSummary, strategy: str, chosen: Candidate | None,
    candidates: Sequence[Candidate], metrics: Mapping[str, float] | None = None,
) -> Result:
    """The Result; an empty choice (a budget ran out) becomes the best complete candidate,
    else the best partial one, else the best trajectory in the tree."""
    candidates = list(candidates)
    if chosen is None or not chosen.text.strip():
        better = _best([c for c in candidates if c.text.strip()]) or _best_in_tree(problem, tree)
        if better is not None:
            if all(c.node != better.node for c in candidates):
                candidates.insert(0, better)
            chosen = better
    if chosen is not None and chosen.node is not None:
        tree.set(tree.node(chosen.node), chosen=True)
    tree.prune_unused({c.node for c in candidates if c.node is not None} | ({chosen.node} if chosen and chosen.node is not None else set()))
    return Result(
        problem_id=problem.id, strategy=strategy,
        answer=chosen.answer if chosen else "", text=chosen.text if chosen else "",
        candidates=tuple(candidates), ledger=ledger, trace=tree,
        metrics=dict(metrics or {}),
    )


def _best_in_tree(problem: Problem, tree: Trace | Subtree) -> Candidate | None:
    nodes = [tree.node(i) for i in tree.graph.nodes if i != 0]
    return _best([candidate_of(problem, n, tree.score(n)) for n in nodes if n.text.strip()])


def _best(candidates: Sequence[Candidate]) -> Candidate | None:
    """Complete (EOS) before partial, then the higher score, then the longer text."""
    if not candidates:
        return None
    return max(candidates, key=lambda c: (c.finish == "eos", c.score if c.score is not None else float("-inf"), len(c.text)))
