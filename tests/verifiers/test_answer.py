"""Answer extraction and equivalence on the real benchmark files, and their edge cases."""

from __future__ import annotations

import json
import random
import re

import pytest

from ponder.verifiers.answer import boxed, equivalent, extract


def lines(path):
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def test_math500_boxed_solutions_equal_their_answers(data_dir):
    rows = lines(data_dir / "math500" / "test.jsonl")
    assert len(rows) == 500
    wrong = [r["id"] for r in rows if not equivalent(extract(r["solution"]).text, r["answer"])]
    assert wrong == []


def test_math500_shuffled_pairs_are_not_equal(data_dir):
    rows = lines(data_dir / "math500" / "test.jsonl")
    rng = random.Random(0)
    pairs = []
    while len(pairs) < 400:
        a, b = rng.sample(rows, 2)
        if a["answer"].strip() != b["answer"].strip():
            pairs.append((a, b))
    false_pos = [(a["answer"], b["answer"]) for a, b in pairs if equivalent(extract(a["solution"]).text, b["answer"])]
    # distinct reference strings can still be the same value (e.g. "5" and "5^\\circ"): only those may pass
    assert len(false_pos) / len(pairs) == 0, false_pos[:5]


def test_gsm8k_hash_answers_grade_correct(data_dir):
    rows = lines(data_dir / "gsm8k" / "test.jsonl")
    assert len(rows) == 1319
    wrong = [r["id"] for r in rows if not equivalent(extract(r["solution"]).text, r["answer"])]
    assert wrong == []


@pytest.mark.parametrize("text,expected", [
    ("so \\boxed{\\frac{1}{2}} and", "\\frac{1}{2}"),
    ("\\boxed{\\{1, 2\\}}", "\\{1, 2\\}"),
    ("first \\boxed{3} then \\boxed{x^{2}}", "x^{2}"),
    ("She pays 12 + 6 = 18.\n#### 18", "18"),
    ("Thus the answer is 1,234 dollars.", "1,234 dollars"),
    ("I think it is (C).", "C"),
    ("about 7 apples and 9 pears", "9"),
])
def test_extraction(text, expected):
    assert extract(text, choices=4 if "(C)" in text else 0).text == expected


@pytest.mark.parametrize("a,b,same", [
    ("1,000", "1000", True), ("$18.00", "18", True), ("18 dollars", "18", True), ("0.5", "\\frac{1}{2}", True),
    ("\\dfrac{3}{4}", "0.75", True), ("50%", "50", True), ("2\\sqrt{2}", "\\sqrt{8}", True),
    ("x^2+2x+1", "(x+1)^2", True), ("1,2", "12", False), ("19", "9", False), ("A", "(A)", True), ("B", "C", False),
    ("", "5", False), ("2x", "2", False), ("864 \\mbox{ inches}^2", "864", True),
])
def test_equivalence(a, b, same):
    assert equivalent(a, b) is same


def test_boxed_handles_unbalanced():
    assert boxed("\\boxed{1 + {2}") is None and boxed("no box") is None
    assert re.fullmatch(r"\d+", extract("The total is 42.").text)
