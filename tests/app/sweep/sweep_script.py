"""A policy for sweep tests on the scripted backend: problem i ("What is i + 3?") is right with a
probability that falls with i, by the sample's seed; a greedy sample (no seed) is right on even i."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from ponder.backends.scripted import ScriptCall


def answer(call: ScriptCall) -> str:
    i = int(re.search(r"What is (\d+) \+ 3\?", call.prompt).group(1))
    if call.seed is None:
        right = i % 2 == 0
    else:
        u = int.from_bytes(hashlib.blake2b(f"{call.seed}/{i}".encode(), digest_size=4).digest(), "big") / 2**32
        right = u < 1 - i / 10
    wrong = 4 + (call.seed or 0) % 3  # wrong answers split among three values
    return f"{i} + 3 = {i + 3 if right else wrong}.\n\nThe answer is \\boxed{{{i + 3 if right else wrong}}}."


def write_problems(path: Path, n: int = 10) -> Path:
    path.write_text("".join(json.dumps({"id": f"q{i}", "problem": f"What is {i} + 3?", "answer": str(i + 3)}) + "\n" for i in range(n)))
    return path
