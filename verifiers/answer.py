"""Answer extraction and equivalence: the one entry point every strategy and grader uses.

Extraction order (first that applies): the last `\\boxed{...}` (nested braces), GSM8K's
`#### N`, "the answer is X" / "final answer: X", a multiple-choice letter when choices exist,
the last number in the text. Equivalence: exact after normalisation, then numbers with a
relative tolerance (thousands separators, units and trailing words dropped), then
math-verify in a worker process under a time limit (symbolic.py).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from fractions import Fraction

from .symbolic import shared_pool

_NUMBER = r"-?\d+(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?(?:/\d+)?|-?\.\d+"
_ANSWER_IS = re.compile(
    r"(?:final answer|the answer|answer)\s*(?:is|:|=)\s*[:\s]*(.+?)(?:\n|$)", re.IGNORECASE
)
_HASHES = re.compile(r"####\s*(.+?)\s*$", re.MULTILINE)
_LETTER = re.compile(r"(?:^|[^A-Za-z])\(?([A-J])\)?(?:[^A-Za-z]|$)")


@dataclass(frozen=True)
class Extracted:
    text: str  # the extracted answer, normalised
    how: str  # boxed | hashes | phrase | letter | number | none


def boxed(text: str) -> str | None:
    """Content of the last \\boxed{...} or \\fbox{...}, nested braces included."""
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    i = text.find("{", start)
    if i < 0:
        m = re.match(r"\\boxed\s+(\S+)", text[start:])  # \boxed 5
        return m.group(1) if m else None
    depth = 0
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i + 1 : j]
    return None


def extract(text: str, choices: int = 0) -> Extracted:
    """The answer a response gives. `choices` > 0 means a multiple-choice question with that many options."""
    b = boxed(text)
    if b is not None:
        return Extracted(normalise(b), "boxed")
    m = _HASHES.findall(text)
    if m:
        return Extracted(normalise(m[-1]), "hashes")
    phrases = _ANSWER_IS.findall(text)
    if phrases:
        phrase = normalise(phrases[-1])
        if as_number(phrase) is None and not choices:
            # "the answer is x = 5 apples, since ..." -> the first number in the phrase
            num = re.search(_NUMBER, phrase)
            phrase = num.group(0) if num else phrase
        return Extracted(phrase, "phrase")
    if choices:
        letters = [x for x in _LETTER.findall(text) if ord(x) - ord("A") < choices]
        if letters:
            return Extracted(letters[-1], "letter")
    nums = re.findall(_NUMBER, text)
    if nums:
        return Extracted(normalise(nums[-1]), "number")
    return Extracted("", "none")


def _strip_text_wrappers(s: str) -> str:
    return re.sub(r"\\(?:text|textbf|mathrm|mbox)\{([^{}]*)\}", r"\1", s)


def normalise(s: str) -> str:
    s = _strip_text_wrappers(s.strip().strip("$").strip())
    s = re.sub(r"\\[,;!: ]|\\quad", "", s)  # LaTeX spacing
    s = re.sub(r"^\\text\{(.*)\}$", r"\1", s)
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac").replace("\\left", "").replace("\\right", "")
    s = s.rstrip(".").strip()
    return s


def as_number(s: str) -> Fraction | float | None:
    """A number read from an answer: '1,234', '$18.00', '18 dollars', '3/4', '\\frac{3}{4}', '50%'."""
    t = normalise(s).replace("\\$", "").replace("$", "").replace("\\%", "%")
    t = re.sub(r"^\\frac\{(-?\d+)\}\{(\d+)\}$", r"\1/\2", t)
    t = re.sub(r"^-\\frac\{(\d+)\}\{(\d+)\}$", r"-\1/\2", t)
    # a unit is a word of two letters or more after a space ("18 dollars", "864 inches^2"), never "2x"
    m = re.fullmatch(rf"\s*({_NUMBER})\s*%?(?:\s+[A-Za-z]{{2,}}[A-Za-z .^0-9]*)?\s*", t)
    if not m:
        return None
    raw = m.group(1)
    if "," in raw and not re.fullmatch(r"-?\d{1,3}(,\d{3})+(\.\d+)?", raw):
        return None  # "1,2" is a list, not a thousands separator
    raw = raw.replace(",", "")
    try:
        return Fraction(raw) if "/" in raw else Fraction(raw)
    except (ValueError, ZeroDivisionError):
        return None


def equivalent(answer: str, reference: str, rel_tol: float = 1e-6, timeout_s: float = 5.0) -> bool:
    """Whether `answer` means the same as `reference`. Cheap checks run here; math-verify runs in
    a worker process and counts as "not equal" past `timeout_s`, whichever thread calls."""
    a, r = normalise(answer), normalise(reference)
    verdict = _cheap(a, r, rel_tol)
    return verdict if verdict is not None else shared_pool().equivalent(a, r, timeout_s)


async def equivalent_async(answer: str, reference: str, rel_tol: float = 1e-6, timeout_s: float = 5.0) -> bool:
    """`equivalent` for callers on the event loop: waiting on math-verify never blocks the loop."""
    a, r = normalise(answer), normalise(reference)
    verdict = _cheap(a, r, rel_tol)
    if verdict is not None:
        return verdict
    return await asyncio.to_thread(shared_pool().equivalent, a, r, timeout_s)


def _cheap(a: str, r: str, rel_tol: float) -> bool | None:
    """The verdict of exact, numeric and letter comparison of normalised answers; None when
    only math-verify can tell."""
    if not a or not r:
        return False
    if a == r or a.lower() == r.lower():
        return True
    na, nr = as_number(a), as_number(r)
    if na is not None and nr is not None:
        return abs(na - nr) <= rel_tol * max(1, abs(nr))
    if re.fullmatch(r"[A-J]", r) or re.fullmatch(r"[A-J]", a):
        return a.strip("()").upper() == r.strip("()").upper()
    return None
