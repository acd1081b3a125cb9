"""How a problem becomes prompt token ids: the model's chat template around a user template."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from ..backends.base import Tokenizer
from ..records.problem import Problem
from .thinking import ThinkingConfig

MATH_TEMPLATE = "{question}\nPlease reason step by step, and put your final answer within \\boxed{{}}."


class PromptConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    system: str | None = None
    template: str = MATH_TEMPLATE  # {question} is replaced by the problem text
    chat: bool = True  # False: plain text prompt (base models)
    thinking: ThinkingConfig | None = None  # the model's thinking block (runtime/thinking.py)

    def render(self, problem: Problem) -> str:
        try:
            return self.template.format(question=problem.question)
        except (KeyError, IndexError) as e:
            raise ValueError(f"prompt.template: only {{question}} may appear in braces (double other braces), got {e}") from e

    def ids(self, tokenizer: Tokenizer, problem: Problem, suffix: str = "") -> list[int]:
        """The prompt's token ids; `suffix` is appended to the user's message (refinement rounds)."""
        user = self.render(problem) + suffix
        if not self.chat:
            ids = tokenizer.encode(((self.system + "\n\n") if self.system else "") + user)
        else:
            messages = ([{"role": "system", "content": self.system}] if self.system else []) + [{"role": "user", "content": user}]
            ids = tokenizer.chat(messages)
        return self.thinking.prefilled(tokenizer, ids) if self.thinking is not None else ids
