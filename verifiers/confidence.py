"""The policy's own confidence as a step scorer: no PRM, no verifier model, no extra request.

A per-token statistic is read from the top-k logprobs the engine returns with each
generated token (the sampled token, which vLLM adds when it falls outside the top k, is
dropped):
- `token_confidence` (DeepConf, Fu et al. 2025): C = -mean of the top-k logprobs. It is at
  least log k (Jensen: the k probabilities sum to at most 1), equal when the k share all
  the mass evenly, and grows as the alternatives to the leading token fade.
- `self_certainty` (Kang et al. 2025): KL(U || p), the divergence of the uniform
  distribution from the predicted one, over the top k with p renormalised over them (the
  tail is not returned). Unrenormalised it would be C - log k and rank exactly as C does;
  renormalised it is 0 for a distribution flat over the k, whatever mass they hold (C calls
  a distribution flat over many tokens confident, since each of its top k is unlikely).
Both measure an excess x >= 0 over a distribution flat over the top k (C - log k, and the KL
itself), unbounded as the alternatives fade; the value in [0, 1] is x / (x + log k): 0 when
flat, 1/2 at x = log k (for C: 1 - log k / C).

A trajectory's value comes from the nodes of its path (`aggregate`): `tokens` (default)
averages the statistic over every generated token, the papers' measure of a whole
response; `steps` makes one value per step from its own tokens and lets the strategy's
`aggregate` (last / min / mean / prod) combine them as it does PRM step scores.

The Context asks the engine for `top_logprobs` alternatives on every request while this
scorer is in use and keeps each node's mean statistic and token count on the trace node
(`note`). Scoring then reads the path (`value`): it sends no request and spends nothing, so
it is neither reserved against the verifier budget nor counted as a verifier call. Nodes
built from streams carry no statistics: scoring one is refused rather than valued at zero.
"""

from __future__ import annotations

import math
from typing import Any, Literal, Protocol, Sequence, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..records.problem import Problem
from ..records.trace import Node, Trace
from .voting import aggregate

MEAN, TOKENS = "step_confidence", "confidence_tokens"  # trace node attributes


@runtime_checkable
class TokenScorer(Protocol):
    """A step scorer that reads the policy's own token probabilities kept on the trace
    instead of the steps' text. The Context owns the trace; the scorer only annotates nodes
    (`note`) and reads them (`value`)."""

    top_logprobs: int  # top-k logprobs per generated token the Context asks the engine for

    def note(self, trace: Trace, node: Node, top_logprobs: Sequence[Sequence[float]] | None) -> None:
        """Keep on `node` what `value` needs from the tokens the node's request generated."""

    def value(self, trace: Trace, node: Node, how: str) -> float:
        """The value in [0, 1] of the trajectory ending at `node`; `how` combines step values."""


def token_confidence(top: Sequence[float], k: int) -> float:
    """DeepConf's C: minus the mean of the k largest logprobs at one position."""
    top = sorted(top, reverse=True)[:k]
    return -sum(top) / len(top) if top else 0.0


def self_certainty(top: Sequence[float], k: int) -> float:
    """KL(U || p) over the k largest logprobs at one position, p renormalised over them."""
    top = sorted(top, reverse=True)[:k]
    if not top:
        return 0.0
    norm = top[0] + math.log(sum(math.exp(x - top[0]) for x in top))
    return max(0.0, norm - sum(top) / len(top) - math.log(len(top)))


STATISTICS = {"token_confidence": token_confidence, "self_certainty": self_certainty}


class ConfidenceConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["self_certainty", "token_confidence"] = "self_certainty"
    # 20: the most vLLM returns unless the engine raises max_logprobs (and OpenAI's cap);
    # DeepConf's k. Self-certainty is defined over the whole vocabulary: k approximates it.
    top_k: int = Field(20, ge=2)
    aggregate: Literal["tokens", "steps"] = "tokens"


class ConfidenceScorer:
    """StepScorer from the policy's own top-k logprobs (see the module docstring)."""

    def __init__(self, config: ConfidenceConfig | None = None, **options: Any) -> None:
        if config is not None and options:
            raise ValueError("ConfidenceScorer: give a config or options, not both")
        try:
            self.config = config or ConfidenceConfig(**options)
        except ValidationError as e:
            first = e.errors()[0]
            raise ValueError(f"confidence scorer: option {'.'.join(map(str, first['loc']))!r}: {first['msg']}") from None
        self.top_logprobs = self.config.top_k
        self._statistic = STATISTICS[self.config.kind]

    async def score(self, problem: Problem, steps: Sequence[str]) -> list[float]:
        raise ValueError(
            "the confidence scorer reads the token probabilities kept on the trace, not step text: "
            "score through Context.score"
        )

    def note(self, trace: Trace, node: Node, top_logprobs: Sequence[Sequence[float]] | None) -> None:
        values = [self._statistic(top, self.config.top_k) for top in top_logprobs or ()]
        trace.set(node, **{MEAN: sum(values) / len(values) if values else 0.0, TOKENS: len(values)})

    def value(self, trace: Trace, node: Node, how: str) -> float:
        steps = self._steps(trace, node)
        if not steps:
            return 0.0
        if self.config.aggregate == "tokens":
            tokens = sum(n for _, n in steps)
            return self._scale(sum(m * n for m, n in steps) / tokens)
        return aggregate([self._scale(m) for m, _ in steps], how)

    def _scale(self, mean: float) -> float:
        """The mean statistic as a value in [0, 1]: 0 for a distribution flat over the top k."""
        log_k = math.log(self.config.top_k)
        # C >= log k holds per position only when all k alternatives came back: clip the rest
        excess = max(0.0, mean - log_k if self.config.kind == "token_confidence" else mean)
        return excess / (excess + log_k)

    def _steps(self, trace: Trace, node: Node) -> list[tuple[float, int]]:
        """(mean statistic, tokens) per step of the path; a node marked `partial` forms one step
        with its continuation (as `Trace.steps`), and steps without tokens are left out."""
        out: list[tuple[float, int]] = []
        total, count = 0.0, 0
        for n in trace.path(node):
            attrs = trace.graph.nodes[n.id]
            if TOKENS not in attrs:
                if attrs["tokens"]:
                    raise ValueError(
                        f"trace node {n.id} has no token statistics for the confidence scorer: "
                        "only nodes generated through Context requests carry them (not streamed ones)"
                    )
                continue
            total += attrs[MEAN] * attrs[TOKENS]
            count += attrs[TOKENS]
            if attrs.get("partial") and n.id != node.id:
                continue
            if count:
                out.append((total / count, count))
            total, count = 0.0, 0
        return out
