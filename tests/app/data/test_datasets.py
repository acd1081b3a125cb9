"""Problem sets: the shipped benchmarks (package data), overrides, generators and files."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

import ponder.app
from ponder.app.data.datasets import SHIPPED as SHIPPED_NAMES
from ponder.app.data.datasets import DatasetConfig, builtin_file, load

SHIPPED = {"gsm8k": 1319, "math500": 500, "aime24": 30, "aime25": 30, "amc23": 40, "humaneval": 164, "mbpp": 257}


@pytest.fixture(autouse=True)
def no_data_dir(monkeypatch):
    monkeypatch.delenv("PONDER_DATA", raising=False)


def test_every_shipped_set_loads_from_package_data():
    assert set(SHIPPED_NAMES) == set(SHIPPED)
    package = Path(ponder.app.__file__).parent
    for name, count in SHIPPED.items():
        path = builtin_file(name, None)
        assert path.is_relative_to(package) and path.name == f"{name}.jsonl.gz"
        problems = load(DatasetConfig(name=name))
        assert len(problems) == count and len({p.id for p in problems}) == count
    assert all(p.meta["tests"] for p in load(DatasetConfig(name="mbpp")))
    assert all(p.kind == "code" and p.meta["entry_point"] for p in load(DatasetConfig(name="humaneval")))
    readme = (package / "data" / "README.md").read_text()
    assert all(f"{name}.jsonl.gz" in readme for name in SHIPPED)


def test_gpqa_is_not_shipped_and_says_where_to_put_it():
    with pytest.raises(ValueError, match=r"dataset 'gpqa_diamond' is not shipped .*put it at <dir>/gpqa_diamond/test.jsonl with --data-dir <dir> or PONDER_DATA=<dir>, or use hf:") as e:
        load(DatasetConfig(name="gpqa_diamond"))
    assert "\n" not in str(e.value)


def gpqa_rows(n: int) -> str:
    return "".join(json.dumps({
        "id": f"g{i}", "Question": f"Which is {i}?", "Correct Answer": str(i),
        "Incorrect Answer 1": "x", "Incorrect Answer 2": "y", "Incorrect Answer 3": "z",
    }) + "\n" for i in range(n))


def test_a_data_dir_supplies_gpqa_and_overrides_a_shipped_set(tmp_path, monkeypatch):
    (tmp_path / "gpqa_diamond").mkdir()
    with gzip.open(tmp_path / "gpqa_diamond" / "test.jsonl.gz", "wt") as f:
        f.write(gpqa_rows(12))
    gpqa = load(DatasetConfig(name="gpqa_diamond"), tmp_path)
    assert len(gpqa) == 12 and all(p.choices == 4 and p.answer in "ABCD" for p in gpqa)
    assert len({p.answer for p in gpqa}) > 1  # the fixed shuffle moves the right option around
    (tmp_path / "gsm8k").mkdir()
    (tmp_path / "gsm8k" / "test.jsonl").write_text(json.dumps({"id": "mine", "problem": "1+1?", "answer": "2"}) + "\n")
    monkeypatch.setenv("PONDER_DATA", str(tmp_path))
    assert [p.id for p in load(DatasetConfig(name="gsm8k"))] == ["mine"]
    assert len(load(DatasetConfig(name="math500"))) == 500  # not in the folder: the shipped copy


def test_gym_and_local_files(tmp_path):
    spec = "gym:chain_sum?size=3&seed=1"
    assert [p.answer for p in load(DatasetConfig(name=spec))] == [p.answer for p in load(DatasetConfig(name=spec))]
    csv_file = tmp_path / "q.csv"
    csv_file.write_text("qid,text,gold\n1,What is 1+1?,2\n")
    (p,) = load(DatasetConfig(name=str(csv_file), fields={"id": "qid", "question": "text", "answer": "gold"}))
    assert (p.id, p.question, p.answer) == ("1", "What is 1+1?", "2")
    with pytest.raises(ValueError, match="q.csv:2: missing field 'problem'"):
        load(DatasetConfig(name=str(csv_file)))
