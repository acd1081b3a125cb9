"""The `value` step scorer: a head trained by `ponder value train` on the policy's own hidden
states, read through vLLM's pooling runner.

`scorer: {name: value, options: {model: DIR}}` (or the shipped `smollm2-135m-instruct-value`).
A call scores every step prefix of one trajectory with one engine request: the trajectory's
hidden states come back for every token, and the head reads the row at the end of each
prefix. In-process the backbone runs on a pooling engine of its own beside the policy's;
with `endpoint` the token ids go to a pooling server of the same backbone.
"""

from __future__ import annotations

from typing import Any, Sequence

from pydantic import BaseModel, ConfigDict, Field

from ..records.problem import Problem
from .hidden_states import HiddenStates
from .value_model import layout, load, probabilities


class ValueScorerConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str  # a folder written by `ponder value train`, or a shipped value model's name
    endpoint: str | None = None  # a pooling server of the backbone (else an in-process engine)
    served_model: str | None = None
    max_model_len: int = Field(2048, ge=64)
    kv_cache_gib: float = Field(1.0, gt=0)
    timeout_s: float = Field(120, gt=0)
    log_stats: bool = False  # keep the pooling engine's Prometheus counters


class ValueScorer:
    name = "value"

    def __init__(self, config: ValueScorerConfig | None = None, states: HiddenStates | None = None, **options: Any) -> None:
        """`states`: a pooling engine of the backbone to share (else one is started, or the
        endpoint is used)."""
        self.config = config or ValueScorerConfig(**options)
        self.spec, self.head = load(self.config.model)
        from ..backends.models import resolve
        from ..backends.tokenizer import HFTokenizer

        self.tokenizer = HFTokenizer.load(resolve(self.spec.backbone))
        c = self.config
        self._owned = states is None
        self.states = states or HiddenStates(
            None if c.endpoint else self.spec.backbone, c.endpoint, c.served_model, c.max_model_len, c.kv_cache_gib,
            c.timeout_s, c.log_stats,
        )

    async def score(self, problem: Problem, steps: Sequence[str]) -> list[float]:
        if not steps:
            return []
        ids, ends = layout(self.tokenizer, self.spec, problem.question, steps)
        if len(ids) > self.config.max_model_len:
            raise ValueError(f"value scorer: {len(ids)} tokens exceed max_model_len {self.config.max_model_len}")
        (rows,) = await self.states.states([ids])
        return probabilities(self.head, rows[ends])

    def close(self) -> None:
        if self._owned:
            self.states.close()
