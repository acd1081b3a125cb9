"""Best-of-k from one run of n samples: exact expectations over the run's k-subsets.

Drawing k of a problem's n recorded samples uniformly at random without replacement is how a
run at n = k would have sampled (the samples are exchangeable draws of one policy), so the
mean over all C(n, k) subsets is an unbiased estimate of best-of-k accuracy, with no rerun and
less variance than any single subset. Both expectations are computed by counting, not by
enumerating subsets:

- pass@k (some sample right): 1 - C(n - c, k) / C(n, k) for c right samples (Chen et al. 2021).
- majority@k: the subset's largest answer group wins; a tie between groups is settled by a
  fair coin among them (each tied group counts 1/t). For each right group g and each count x
  of its members drawn, the ways to draw the other groups with fewer than x members each (t of
  them with exactly x) are counted with a product of per-group polynomials; samples without an
  answer fill the rest of the subset and never vote.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import comb
from typing import Any, Sequence

from ...records.result import Candidate
from ...strategies.best_of_n import pass_at_k
from ...verifiers.answer import equivalent
from ...verifiers.voting import clusters


@dataclass(frozen=True)
class Votes:
    """One problem's n samples as the vote sees them."""

    groups: tuple[int, ...]  # size of each group of equivalent answers
    right: tuple[bool, ...]  # whether each group's answer is right
    unanswered: int  # samples without an answer

    @property
    def n(self) -> int:
        return sum(self.groups) + self.unanswered

    @property
    def correct(self) -> int:
        return sum(s for s, r in zip(self.groups, self.right) if r)

    @classmethod
    def of(cls, answers: Sequence[str | None], reference: str) -> "Votes":
        """Groups as majority selection forms them (verifiers.voting.clusters), each graded by
        its first answer as the run grades the selected one."""
        cands = [Candidate(text=a or "", answer=a or "") for a in answers]
        groups = clusters(cands)
        right = tuple(equivalent(cands[g[0]].answer, reference) for g in groups)
        return cls(tuple(len(g) for g in groups), right, len(cands) - sum(len(g) for g in groups))


def majority_at_k(votes: Votes, k: int) -> float:
    """The expected accuracy of a majority vote over k of the n samples (exact)."""
    n = votes.n
    if not 1 <= k <= n:
        raise ValueError(f"majority@{k}: expected 1 <= k <= n = {n}")
    total = Fraction(0)
    for g, (size, right) in enumerate(zip(votes.groups, votes.right)):
        if not right:
            continue
        others = [s for h, s in enumerate(votes.groups) if h != g]
        for x in range(1, min(size, k) + 1):
            ways = _others_below(others, x, k - x)
            for (drawn, ties), count in ways.items():
                rest = k - x - drawn
                total += Fraction(comb(size, x) * count * comb(votes.unanswered, rest), 1 + ties)
    return float(total / comb(n, k))


def _others_below(sizes: list[int], x: int, room: int) -> dict[tuple[int, int], int]:
    """Ways to draw from groups of `sizes` at most `room` samples in all with at most x from
    each: {(samples drawn, groups drawn exactly x times): ways}."""
    ways = {(0, 0): 1}
    for s in sizes:
        nxt: dict[tuple[int, int], int] = {}
        for (drawn, ties), count in ways.items():
            for y in range(0, min(s, x, room - drawn) + 1):
                key = (drawn + y, ties + (y == x))
                nxt[key] = nxt.get(key, 0) + count * comb(s, y)
        ways = nxt
    return ways


def subsample_record(record: dict[str, Any], k: int, votes: Votes | None) -> dict[str, Any]:
    """A record of the run at n as best-of-k would have spent and scored it: the expected
    accuracy (a fraction) and pass@k, and every count scaled by k/n (each sample is one request
    with the same prompt, so a k-subset spends k/n of everything in expectation)."""
    n = len(record["candidates"])
    if votes is None or record.get("error") or n < k:
        value, cover = (0.0, 0.0) if record.get("reference") is not None else (None, None)
    else:
        value, cover = majority_at_k(votes, k), pass_at_k(votes.n, votes.correct, k)
    share = k / n if n else 0.0
    tokens = {key: v * share for key, v in record["tokens"].items()}
    return {
        **record, "correct": value, "tokens": tokens, "requests": record["requests"] * share,
        "verifier_calls": record["verifier_calls"] * share, "verifier_tokens": record.get("verifier_tokens", 0) * share,
        "wall_s": record["wall_s"] * share, "metrics": {f"pass@{k}": cover} if cover is not None else {},
    }


def subsample_records(records: list[dict[str, Any]], k: int) -> list[dict[str, Any]]:
    """Every record of a run at n made into its best-of-k estimate."""
    out = []
    for r in records:
        votes = Votes.of(r["candidates"], r["reference"]) if r.get("reference") is not None and not r.get("error") else None
        out.append(subsample_record(r, k, votes))
    return out
