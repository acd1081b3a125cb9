"""Problem sets: built-in benchmark names, local files, reasoning-gym generators, HF datasets.

Built-in names resolve to the gzipped copies shipped in this folder (package data), unless a
data directory (`--data-dir` / `PONDER_DATA`) holds `<name>/test.jsonl` (or `.jsonl.gz`).
GPQA-Diamond is not shipped (its authors ask that it not be redistributed in plain text).
A malformed line fails with the file and line number.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
import random
from pathlib import Path
from typing import Any, Iterator, Mapping
from urllib.parse import parse_qsl

from pydantic import BaseModel, ConfigDict, Field

from ...records.problem import Problem

BUILTIN = ("gsm8k", "math500", "aime24", "aime25", "amc23", "humaneval", "mbpp", "gpqa_diamond")
CODE_PROMPT = "Complete the following Python code. Answer with the whole function in a ```python block.\n\n{code}"


class DatasetConfig(BaseModel):
    """`name`: a built-in name, a file path (.jsonl/.json/.csv/.parquet, optionally .gz),
    `gym:TASK?size=50&seed=1`, or `hf:OWNER/NAME?split=test`. `fields` maps ponder's
    id/question/answer to the file's own field names."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    fields: dict[str, str] = Field(default_factory=dict)
    limit: int | None = Field(None, ge=1)
    shuffle_seed: int | None = None


NOT_SHIPPED = {"gpqa_diamond": "hf:Idavidrein/gpqa?config=gpqa_diamond&split=train"}
SHIPPED = tuple(name for name in BUILTIN if name not in NOT_SHIPPED)  # shipped beside this file: <name>.jsonl.gz


def data_dir(override: str | Path | None = None) -> Path | None:
    chosen = override or os.environ.get("PONDER_DATA")
    return Path(chosen) if chosen else None


def builtin_file(name: str, root: Path | None) -> Path:
    """The data directory's copy when it has one, else the packaged one."""
    if root is not None:
        for candidate in (root / name / "test.jsonl", root / name / "test.jsonl.gz"):
            if candidate.is_file():
                return candidate
    if name in NOT_SHIPPED:
        where = f"{root}/{name}/test.jsonl" if root else f"<dir>/{name}/test.jsonl with --data-dir <dir> or PONDER_DATA=<dir>"
        raise ValueError(f"dataset {name!r} is not shipped (not to be redistributed in plain text): put it at {where}, or use {NOT_SHIPPED[name]}")
    from importlib.resources import as_file, files

    # package data installed as files (regular or editable install), so the path stays valid
    with as_file(files(__package__) / f"{name}.jsonl.gz") as path:
        return Path(path)


def load(config: DatasetConfig, data: str | Path | None = None) -> list[Problem]:
    name = config.name
    if name.startswith("gym:"):
        problems = _gym(name[4:])
    elif name.startswith("hf:"):
        problems = _hf(name[3:], config.fields)
    elif name in BUILTIN:
        problems = _builtin(name, data_dir(data))
    else:
        path = Path(name).expanduser()
        if not path.is_file():
            raise ValueError(f"dataset {name!r}: not a built-in name ({', '.join(BUILTIN)}), gym:/hf: spec, or existing file")
        problems = [_mapped(row, config.fields, path, n) for n, row in rows_of(path)]
    seen: set[str] = set()
    for p in problems:  # ids key results, traces and resume
        if p.id in seen:
            raise ValueError(f"dataset {name!r}: problem id {p.id!r} appears more than once (ids must be unique)")
        seen.add(p.id)
    if config.shuffle_seed is not None:
        random.Random(config.shuffle_seed).shuffle(problems)
    return problems[: config.limit] if config.limit else problems


def rows_of(path: Path) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """(line number, record) of a JSONL / JSON / CSV / Parquet file, optionally gzipped; a
    malformed line raises ValueError naming the file and line."""
    suffixes = [s.lower() for s in path.suffixes]
    opener = gzip.open if suffixes[-1:] == [".gz"] else open
    kind = suffixes[-2] if suffixes[-1:] == [".gz"] and len(suffixes) > 1 else suffixes[-1] if suffixes else ""
    if kind == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError as e:
            raise ValueError(f"{path}: reading Parquet needs pyarrow (pip install pyarrow)") from e
        for n, row in enumerate(pq.read_table(path).to_pylist(), 1):
            yield n, row
        return
    with opener(path, "rt", encoding="utf-8") as f:  # type: ignore[operator]
        if kind == ".csv":
            for n, row in enumerate(csv.DictReader(f), 2):
                yield n, row
            return
        if kind == ".json":
            rows = json.load(f)
            if not isinstance(rows, list):
                raise ValueError(f"{path}: expected a JSON list of objects")
            yield from enumerate(rows, 1)
            return
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{n}: not valid JSON ({e.msg} at column {e.colno})") from None
            if not isinstance(row, dict):
                raise ValueError(f"{path}:{n}: expected a JSON object, got {type(row).__name__}")
            yield n, row


def _mapped(row: Mapping[str, Any], fields: Mapping[str, str], path: Any, n: int) -> Problem:
    q_key, a_key, id_key = fields.get("question", "problem"), fields.get("answer", "answer"), fields.get("id", "id")
    if q_key not in row and "question" in row and "question" not in fields:
        q_key = "question"
    if q_key not in row:
        raise ValueError(f"{path}:{n}: missing field {q_key!r} (map it with dataset.fields.question)")
    answer = row.get(a_key)
    return Problem(id=str(row.get(id_key, n)), question=str(row[q_key]), answer=None if answer is None else str(answer))


def _builtin(name: str, root: Path | None) -> list[Problem]:
    path = builtin_file(name, root)
    rows = list(rows_of(path))
    if name == "humaneval":
        return [_humaneval(row) for _, row in rows]
    if name == "mbpp":
        return [_mbpp(row, path, n) for n, row in rows]
    if name == "gpqa_diamond":
        return [_gpqa(row, path, n) for n, row in rows]
    return [_mapped(row, {}, path, n) for n, row in rows]


def _humaneval(row: Mapping[str, Any]) -> Problem:
    return Problem(
        id=str(row["task_id"]), question=CODE_PROMPT.format(code=row["prompt"]), kind="code",
        meta={k: row[k] for k in ("prompt", "test", "entry_point")},
    )


def _mbpp(row: Mapping[str, Any], path: Path, n: int) -> Problem:
    tests = row.get("test_list")
    if isinstance(tests, str):
        tests = eval_list(tests, path, n)
    imports = row.get("test_imports") or []
    if isinstance(imports, str):
        imports = eval_list(imports, path, n)
    question = f"{row['prompt']}\nYour code should pass this test:\n{tests[0] if tests else ''}\n" + CODE_PROMPT.format(code=row.get("code_header", ""))
    return Problem(id=str(row["id"]), question=question, kind="code", meta={"tests": list(tests), "test_setup": "\n".join(imports)})


def eval_list(text: str, path: Path, n: int) -> list[str]:
    import ast

    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError) as e:
        raise ValueError(f"{path}:{n}: expected a list literal of strings ({e})") from None
    return [str(x) for x in value]


def _gpqa(row: Mapping[str, Any], path: Path, n: int) -> Problem:
    try:
        options = [row["Correct Answer"], row["Incorrect Answer 1"], row["Incorrect Answer 2"], row["Incorrect Answer 3"]]
    except KeyError as e:
        raise ValueError(f"{path}:{n}: missing field {e.args[0]!r}") from None
    order = list(range(4))
    random.Random(str(row.get("id", n))).shuffle(order)  # a fixed shuffle per question
    letters = "ABCD"
    listing = "\n".join(f"({letters[i]}) {str(options[j]).strip()}" for i, j in enumerate(order))
    question = f"{str(row['Question']).strip()}\n\n{listing}\n\nAnswer with the letter of the correct option."
    return Problem(id=str(row.get("id", n)), question=question, answer=letters[order.index(0)], choices=4, kind="choice")


def _gym(spec: str) -> list[Problem]:
    task, _, query = spec.partition("?")
    params: dict[str, Any] = {k: _number(v) for k, v in parse_qsl(query)}
    try:
        import reasoning_gym
    except ImportError as e:
        raise ValueError("gym: datasets need reasoning-gym (pip install 'ponder[data]')") from e
    size, seed = int(params.pop("size", 50)), int(params.pop("seed", 1))
    try:
        data = reasoning_gym.create_dataset(task, size=size, seed=seed, **params)
    except Exception as e:
        raise ValueError(f"gym:{task}: {type(e).__name__}: {e}") from None
    return [Problem(id=f"{task}-{i}", question=x["question"], answer=str(x["answer"])) for i, x in enumerate(data)]


def _number(v: str) -> Any:
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return v


def _hf(spec: str, fields: Mapping[str, str]) -> list[Problem]:
    repo, _, query = spec.partition("?")
    params = dict(parse_qsl(query))
    try:
        import datasets
    except ImportError as e:
        raise ValueError("hf: datasets need the `datasets` package and a reachable hub") from e
    try:
        ds = datasets.load_dataset(repo, params.get("config"), split=params.get("split", "test"))
    except Exception as e:
        raise ValueError(f"hf:{repo}: could not load ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    return [_mapped(row, fields, f"hf:{repo}", n) for n, row in enumerate(ds, 1)]
