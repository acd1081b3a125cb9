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
    """One problem's samples as the vote sees them: a pool to draw from (group sizes, and
    samples without an answer) and, per group, the votes already in hand (`fixed`: a first
    wave that every draw keeps)."""

    groups: tuple[int, ...]  # pool samples in each group of equivalent answers
    right: tuple[bool, ...]  # whether each group's answer is right
    unanswered: int  # pool samples without an answer
    fixed: tuple[int, ...] = ()  # votes in hand per group (none when empty)

    @property
    def n(self) -> int:
        return sum(self.groups) + self.unanswered

    @property
    def correct(self) -> int:
        return sum(s for s, r in zip(self.groups, self.right) if r)

    @classmethod
    def of(cls, answers: Sequence[str | None], reference: str, keep: int = 0) -> "Votes":
        """Groups as majority selection forms them (verifiers.voting.clusters), each graded by
        its first answer as the run grades the selected one; the first `keep` samples are in
        hand, the others the pool."""
        cands = [Candidate(text=a or "", answer=a or "") for a in answers]
        groups = clusters(cands)
        right = tuple(equivalent(cands[g[0]].answer, reference) for g in groups)
        fixed = tuple(sum(i < keep for i in g) for g in groups)
        pool = tuple(len(g) - f for g, f in zip(groups, fixed))
        answered = sum(len(g) for g in groups)
        return cls(pool, right, len(cands) - answered - (keep - sum(fixed)), fixed if keep else ())


def majority_at_k(votes: Votes, k: int) -> float:
    """The expected accuracy of a majority vote over k samples drawn from the pool, with the
    votes in hand (exact)."""
    n = votes.n
    if not 0 <= k <= n or (k == 0 and not any(votes.fixed)):
        raise ValueError(f"majority@{k}: expected 1 <= k <= n = {n}")
    fixed = votes.fixed or (0,) * len(votes.groups)
    total = Fraction(0)
    for g, (size, right) in enumerate(zip(votes.groups, votes.right)):
        if not right:
            continue
        others = [(s, f) for h, (s, f) in enumerate(zip(votes.groups, fixed)) if h != g]
        for x in range(0, min(size, k) + 1):
            top = x + fixed[g]
            if top == 0:
                continue
            ways = _others_below(others, top, k - x)
            for (drawn, ties), count in ways.items():
                rest = k - x - drawn
                total += Fraction(comb(size, x) * count * comb(votes.unanswered, rest), 1 + ties)
    return float(total / comb(n, k))


def _others_below(groups: list[tuple[int, int]], top: int, room: int) -> dict[tuple[int, int], int]:
    """Ways to draw from the other groups ((pool size, votes in hand) each) at most `room`
    samples in all, leaving none above `top` votes: {(samples drawn, groups at exactly top): ways}."""
    ways = {(0, 0): 1}
    for size, held in groups:
        if held > top:
            return {}
        nxt: dict[tuple[int, int], int] = {}
        for (drawn, ties), count in ways.items():
            for y in range(0, min(size, top - held, room - drawn) + 1):
                key = (drawn + y, ties + (y + held == top))
                nxt[key] = nxt.get(key, 0) + count * comb(size, y)
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
