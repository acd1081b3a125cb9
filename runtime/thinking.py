"""The thinking block of reasoning models: its delimiters, and which generated tokens are in it.

R1 distills, Qwen3 and QwQ write `<think> ... </think>` before the answer. Where the chat
template (or ponder, with `prefill`) puts the start tag at the end of the prompt, the model
is thinking from its first token. The ledger splits every request's generated tokens into
thinking and answer tokens by reading the text of its prefix and its output: a token is a
thinking token when the block is open where the token begins (the end tag counts as
thinking). Probe requests (strategies/dynasor.py) are counted apart from both.
"""

from __future__ import annotations

from typing import Any, Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..backends.base import Tokenizer

# the family's tags, and whether its template leaves the assistant turn open in thinking
PRESETS: dict[str, dict[str, Any]] = {
    "r1": {"start": "<think>", "end": "</think>", "prefill": True},  # R1 distills: templates open <think>\n themselves
    "qwen3": {"start": "<think>", "end": "</think>", "prefill": False},  # Qwen3 writes <think> itself
    "qwq": {"start": "<think>", "end": "</think>", "prefill": True},
}


class ThinkingConfig(BaseModel):
    """`thinking:` in the prompt config."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    preset: Literal["r1", "qwen3", "qwq"] | None = None
    start: str = Field("<think>", min_length=1)
    end: str = Field("</think>", min_length=1)
    prefill: bool = False  # the assistant turn starts with `start` + newline (never doubled)

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("preset") is not None:
            if data["preset"] not in PRESETS:
                raise ValueError(f"preset: expected one of {', '.join(PRESETS)}, got {data['preset']!r}")
            return {**PRESETS[data["preset"]], **data}
        return data

    def check(self, tokenizer: Tokenizer) -> None:
        """Refuse delimiters the tokenizer cannot write exactly: token-exact continuation
        inserts their ids, and a delimiter that decodes to other text would never be found."""
        for name in ("start", "end"):
            text = getattr(self, name)
            back = tokenizer.decode(tokenizer.encode(text))
            if back != text:
                raise ValueError(f"thinking.{name}: the tokenizer cannot encode {text!r} exactly (it decodes to {back!r})")

    def prefilled(self, tokenizer: Tokenizer, ids: list[int]) -> list[int]:
        """The prompt with the start tag opening the assistant turn, unless the template did."""
        if not self.prefill or self.is_open(tokenizer.decode(ids[-64:])):
            return ids
        return ids + tokenizer.encode(self.start + "\n")

    def is_open(self, text: str) -> bool:
        """Whether a thinking block is open at the end of `text`."""
        return text.rfind(self.start) > text.rfind(self.end)

    def spans(self, text: str, open_: bool) -> list[tuple[int, bool]]:
        """`text` as consecutive runs: (end offset, thinking?) each; the end tag is thinking."""
        out: list[tuple[int, bool]] = []
        at = 0
        while at < len(text):
            tag = self.end if open_ else self.start
            i = text.find(tag, at)
            if i < 0:
                out.append((len(text), open_))
                break
            stop = i + len(tag) if open_ else i  # the end tag closes a thinking run; the start tag opens one
            if stop > at:
                out.append((stop, open_))
            at, open_ = stop, not open_
        return out


def tokens_before(tokenizer: Tokenizer, ids: Sequence[int], offset: int) -> int:
    """How many of `ids` begin before character `offset` of their decoded text (binary
    search: a few decodes, not one per token, for traces of tens of thousands of tokens)."""
    lo, hi = 0, len(ids)
    while lo < hi:
        mid = (lo + hi) // 2
        if len(tokenizer.decode(ids[:mid])) >= offset:
            hi = mid
        else:
            lo = mid + 1
    return lo


def split_tokens(config: ThinkingConfig, tokenizer: Tokenizer, prefix: Sequence[int], generated: Sequence[int]) -> tuple[int, int]:
    """(thinking, answer) tokens among `generated`, continuing `prefix`; a token belongs to
    the run its text begins in."""
    if not generated:
        return 0, 0
    runs = config.spans(tokenizer.decode(generated), config.is_open(tokenizer.decode(prefix)))
    if len(runs) == 1:
        return (len(generated), 0) if runs[0][1] else (0, len(generated))
    thinking, first = 0, 0
    for i, (end, inside) in enumerate(runs):
        # tokens with no text (EOS) at the very end belong to the last run
        last = len(generated) if i == len(runs) - 1 else tokens_before(tokenizer, generated, end)
        if inside:
            thinking += last - first
        first = last
    return thinking, len(generated) - thinking


def parts(config: ThinkingConfig, text: str, open_: bool) -> tuple[str, str]:
    """(reasoning, answer) of a generated text: the thinking without its tags, and the rest."""
    thinking, answer = [], []
    at = 0
    for end, inside in config.spans(text, open_):
        (thinking if inside else answer).append(text[at:end])
        at = end
    reasoning = "".join(thinking).replace(config.start, "").replace(config.end, "")
    return reasoning.strip("\n"), "".join(answer).lstrip("\n")


def note_generated(ledger: Any, config: ThinkingConfig | None, tokenizer: Tokenizer, prefix: Sequence[int],
                   outputs: Sequence[Sequence[int]], probe: bool = False, unread: int = 0) -> None:
    """Record how the tokens of requests from `prefix` split: probe, thinking or answer.
    Nothing without a thinking config (no block to split by), unless they were probes.
    `unread`: tokens the engine generated for a stream left early past what was read (one
    output); they count where the text read ends."""
    if probe:
        ledger.record_split(probe=sum(len(o) for o in outputs) + unread, probe_requests=len(outputs))
        return
    if config is None:
        return
    thinking = answer = 0
    for out in outputs:
        t, a = split_tokens(config, tokenizer, prefix, out)
        thinking, answer = thinking + t, answer + a
    if unread:
        if config.is_open(tokenizer.decode(list(prefix) + list(outputs[-1]))):
            thinking += unread
        else:
            answer += unread
    ledger.record_split(thinking=thinking, answer=answer)
