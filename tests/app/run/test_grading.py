"""`ponder grade` run as a subprocess."""

from __future__ import annotations

import json

from ...commands import ponder


def test_grade_writes_each_line_back_and_prints_accuracy(tmp_path):
    src = tmp_path / "r.jsonl"
    src.write_text("\n".join(json.dumps(x) for x in [
        {"id": 1, "response": "so \\boxed{1,000}", "reference": "1000"},
        {"id": 2, "response": "#### 7", "reference": "8"},
    ]) + "\n")
    p = ponder("grade", str(src))
    assert p.returncode == 0 and p.stdout.startswith("accuracy: 0.500 [0.000, 1.000] (1/2)")
    out = [json.loads(x) for x in (tmp_path / "r.graded.jsonl").read_text().splitlines()]
    assert [(o["extracted"], o["is_correct"]) for o in out] == [("1,000", True), ("7", False)]


def test_grade_custom_fields_and_malformed_line(tmp_path):
    src = tmp_path / "r.jsonl"
    src.write_text(json.dumps({"out": "\\boxed{2}", "gold": "2"}) + "\n{broken\n")
    p = ponder("grade", str(src), "--response-field", "out", "--reference-field", "gold")
    assert p.returncode == 2 and p.stderr.startswith(f"error: {src}:2: not valid JSON")
    assert not (tmp_path / "r.graded.jsonl").exists() and list(tmp_path.iterdir()) == [src]
    src.write_text(json.dumps({"out": "\\boxed{2}"}) + "\n")
    p = ponder("grade", str(src), "--response-field", "out", "--reference-field", "gold")
    assert p.returncode == 2 and "r.jsonl:1: missing field 'gold'" in p.stderr
