"""A whole conversation as the solver's prompt.

The runtime's PromptConfig renders one question (plus a system message) through the chat
template. A chat request carries system, user and assistant turns; ChatPrompt keeps them all
and renders them with the model's chat template, so earlier turns reach the model. Refinement
rounds append their suffix to the last user turn, as PromptConfig does for its one turn.
"""

from __future__ import annotations

from ...backends.base import Tokenizer
from ...records.problem import Problem
from ...runtime.prompt import PromptConfig


class ChatPrompt(PromptConfig):
    turns: tuple[tuple[str, str], ...] = ()  # (role, content), in order

    def ids(self, tokenizer: Tokenizer, problem: Problem, suffix: str = "") -> list[int]:
        if not self.turns:
            return super().ids(tokenizer, problem, suffix)
        messages = [{"role": role, "content": content} for role, content in self.turns]
        last_user = max(i for i, m in enumerate(messages) if m["role"] == "user")
        messages[last_user]["content"] += suffix
        ids = tokenizer.chat(messages)
        return self.thinking.prefilled(tokenizer, ids) if self.thinking is not None else ids


def prompt_for(turns: tuple[tuple[str, str], ...], text: str | None) -> PromptConfig:
    """Chat turns through the chat template, or a plain-text prompt sent as it is."""
    if text is not None:
        return PromptConfig(template="{question}", chat=False)
    return ChatPrompt(template="{question}", turns=turns)
