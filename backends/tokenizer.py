"""The model's own tokenizer and chat template behind the Tokenizer contract."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence


class HFTokenizer:
    def __init__(self, tok: Any) -> None:
        self._tok = tok
        self.eos_token_id: int = tok.eos_token_id

    @classmethod
    def load(cls, folder: Path | str) -> "HFTokenizer":
        from transformers import AutoTokenizer

        return cls(AutoTokenizer.from_pretrained(str(folder)))

    def encode(self, text: str) -> list[int]:
        return list(self._tok.encode(text, add_special_tokens=False))

    def decode(self, ids: Sequence[int]) -> str:
        return self._tok.decode(list(ids), skip_special_tokens=True)

    def chat(self, messages: Sequence[dict[str, str]], add_generation_prompt: bool = True) -> list[int]:
        # render to text, then encode without special tokens: the template already placed them
        text = self._tok.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=add_generation_prompt)
        return self.encode(text)
