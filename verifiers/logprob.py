"""A generative PRM read from next-token probabilities of good/bad tokens after each step.

Two layouts cover the common open PRMs:
- `tag` (Math-Shepherd style): "question step1<tag><sep>step2<tag>"; step k's prompt ends at its
  tag and the score is P(good) / (P(good) + P(bad)) read there, at the tag token itself (the
  separator after a tag only joins it to the next step).
- `chat` (RLHFlow style): each step is a user turn, earlier steps answered with the good token;
  the score is read at the assistant's first token.
Step k's prompt extends step k-1's, so the engine serves it from the prefix cache; scores of
step prefixes already seen are remembered.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import ClassVar, Literal, Sequence

from pydantic import BaseModel, ConfigDict, field_validator

from ..backends.base import Backend
from ..records.problem import Problem


class LogprobPRMConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    layout: Literal["tag", "chat"] = "tag"
    step_tag: str = " ки"  # the tag token; step k's score is read right after it
    separator: str = "\n"  # between a tag and the next step
    good: str = "+"
    bad: str = "-"
    template: str = "{question}\n"  # text before the steps (tag layout)
    memo_size: int = 4096

    @field_validator("step_tag")
    @classmethod
    def _ends_at_the_tag(cls, tag: str) -> str:
        if not tag.strip() or tag != tag.rstrip():
            raise ValueError(f"step_tag must end with the tag token (whitespace after it goes in `separator`), got {tag!r}")
        return tag


def two_way(good_lp: float, bad_lp: float) -> float:
    """P(good) renormalised over {good, bad}."""
    top = max(good_lp, bad_lp)
    g, b = math.exp(good_lp - top), math.exp(bad_lp - top)
    return g / (g + b)


class LogprobPRM:
    needs_backend: ClassVar[bool] = True  # make_scorer passes the engine to read from

    def __init__(self, backend: Backend, config: LogprobPRMConfig | None = None, **options: object) -> None:
        self.backend = backend
        self.config = config or LogprobPRMConfig(**options)  # type: ignore[arg-type]
        tok = backend.tokenizer
        self._good, self._bad = tok.encode(self.config.good)[0], tok.encode(self.config.bad)[0]
        if self._good == self._bad:
            raise ValueError(f"logprob PRM: good {self.config.good!r} and bad {self.config.bad!r} start with the same token")
        self._memo: OrderedDict[tuple, float] = OrderedDict()

    def _ids(self, problem: Problem, steps: Sequence[str]) -> list[int]:
        cfg, tok = self.config, self.backend.tokenizer
        if cfg.layout == "tag":
            body = (cfg.step_tag + cfg.separator).join(s.strip() for s in steps) + cfg.step_tag
            return tok.encode(cfg.template.format(question=problem.question) + body)
        messages: list[dict[str, str]] = []
        for i, s in enumerate(steps):
            content = (problem.question + "\n" + s.strip()) if i == 0 else s.strip()
            messages.append({"role": "user", "content": content})
            if i < len(steps) - 1:
                messages.append({"role": "assistant", "content": cfg.good})
        return tok.chat(messages)

    async def score(self, problem: Problem, steps: Sequence[str]) -> list[float]:
        out = []
        for k in range(len(steps)):
            key = (problem.id, problem.question, tuple(steps[: k + 1]))
            if key not in self._memo:
                good, bad = await self.backend.next_token_logprobs(self._ids(problem, steps[: k + 1]), [self._good, self._bad])
                self._memo[key] = two_way(good, bad)
                if len(self._memo) > self.config.memo_size:
                    self._memo.popitem(last=False)
            out.append(self._memo[key])
        return out
