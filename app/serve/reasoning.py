"""Thinking budgets over the OpenAI API: the request's `max_thinking_tokens`,
`min_thinking_tokens` and `reasoning_effort` as budget forcing of the served strategy, and
the thinking text as `reasoning_content`, streamed as it grows. And a run's thinking
delimiters checked against its model's tokenizer before the engine starts.

A budget applies to any strategy that samples full solutions: those with a `thinking_budget`
field, and budget_forcing itself. `reasoning_effort` maps to a `max_thinking_tokens` from the
server's config; an explicit `max_thinking_tokens` wins over it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping, Sequence

from ...backends.base import Delta, Tokenizer
from ...runtime.thinking import ThinkingConfig, parts
from ...strategies.base import strategy_class
from ...strategies.thinking_budget import ThinkingBudget
from .openai_api import ApiError, ApiRequest, Choice

EFFORTS = {"low": 1024, "medium": 4096, "high": 16384}  # reasoning_effort -> max_thinking_tokens


@dataclass(frozen=True)
class ReasoningDelta:
    """A piece of the thinking of choice 0, for the stream."""

    text: str


def budget_of(request: ApiRequest, efforts: Mapping[str, int]) -> dict[str, int] | None:
    """The request's thinking budget as ThinkingBudget fields; None when it asks for none."""
    if request.max_thinking_tokens is None and request.min_thinking_tokens is None and request.reasoning_effort is None:
        return None
    budget: dict[str, int] = {}
    cap = request.max_thinking_tokens
    if cap is None and request.reasoning_effort is not None:
        cap = efforts[request.reasoning_effort]
    if cap is not None:
        budget["max_thinking_tokens"] = cap
    if request.min_thinking_tokens is not None:
        if cap is not None and request.min_thinking_tokens > cap:
            field = "max_thinking_tokens" if request.max_thinking_tokens is not None else "reasoning_effort"
            raise ApiError(400, f"min_thinking_tokens: {request.min_thinking_tokens} is above the thinking cap of {cap} ({field})", "min_thinking_tokens")
        budget["min_thinking_tokens"] = request.min_thinking_tokens
    return budget


def with_budget(name: str, config: dict[str, Any], budget: dict[str, int]) -> dict[str, Any]:
    """The strategy's config with the budget applied; a strategy that samples steps has no
    whole thinking block to budget, and is refused naming the field."""
    cls = strategy_class(name).Config
    if issubclass(cls, ThinkingBudget):
        return {**config, **budget}
    if "thinking_budget" in cls.model_fields:
        return {**config, "thinking_budget": {**(config.get("thinking_budget") or {}), **budget}}
    field = next(iter(budget))
    raise ApiError(400, f"{field}: strategy {name} does not sample whole solutions; thinking budgets apply to budget_forcing "
                        "and to strategies with a thinking_budget field (best_of_n, first_finish, deepconf, adaptive_consistency, dynasor)", field)


def split_choice(choice: Choice, thinking: ThinkingConfig, open_: bool) -> Choice:
    """The choice's thinking in `reasoning`, its answer in `text`."""
    reasoning, answer = parts(thinking, choice.text, open_)
    return replace(choice, text=answer, reasoning=reasoning)


class ReasoningFollower:
    """Follows the streamed requests of a one-sample solve and sends its thinking as it grows.

    Each request continues the one before (budget forcing drops a delimiter and appends
    "Wait"), so the trajectory so far is the latest request's prompt past the request's own
    prompt plus what it streamed. Text that may still turn into a delimiter is held back, so
    what was sent is always a prefix of the thinking."""

    def __init__(self, thinking: ThinkingConfig, tokenizer: Tokenizer, prompt_ids: Sequence[int], send: Callable[[Any], None]) -> None:
        self.thinking, self.tokenizer, self.send = thinking, tokenizer, send
        self.base = tuple(prompt_ids)
        self.open = thinking.is_open(tokenizer.decode(self.base[-64:]))
        self.call: int | None = None
        self.text = ""  # the followed trajectory's generated text
        self.sent = ""

    def __call__(self, call: int, prompt_ids: Sequence[int], d: Delta) -> None:
        if call != self.call:
            if tuple(prompt_ids[: len(self.base)]) != self.base:
                return
            self.call = call
            self.text = self.tokenizer.decode(prompt_ids[len(self.base):])
        self.text += d.text
        stable = self.text
        tags = (self.thinking.start, self.thinking.end)
        held = max((k for tag in tags for k in range(1, len(tag)) if stable.endswith(tag[:k])), default=0)
        reasoning = parts(self.thinking, stable[: len(stable) - held], self.open)[0]
        if reasoning.startswith(self.sent) and len(reasoning) > len(self.sent):
            self.send(ReasoningDelta(reasoning[len(self.sent):]))
            self.sent = reasoning


def check_delimiters(config: Any, source: str) -> None:
    """A run config's thinking delimiters against its policy model's tokenizer, before any
    engine starts. A model on this machine only: one still to download is checked by the
    solver once its engine has it; the scripted backend's tokenizer, by the solver at once."""
    thinking = config.prompt.thinking
    if thinking is None or config.backend.kind != "vllm":
        return
    from ...backends.tokenizer import HFTokenizer
    from ..run.dry_run import local_model

    found = local_model(config.backend.model)
    if found is not None:
        try:
            thinking.check(HFTokenizer.load(found))
        except ValueError as e:
            raise ValueError(f"{source}: prompt.{e}") from None
