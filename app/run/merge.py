"""`ponder merge`: the shards of one run (`ponder run --shard i/N`) joined into one run
directory that `ponder report` and `ponder run --resume` read like an unsharded run.

Shards are read, never written: the merged run is built in a new directory beside the output
and renamed into place when complete. Runs merge only when they are one experiment (their
configs differ at most in keys that change speed, never answers: run_config.TUNING) and no
problem is in two of them.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import yaml

from .run_config import result_difference
from .shard import Shard
from .store import RunStore, summarize


@dataclass(frozen=True)
class Part:
    """One run directory as read for merging: its resolved config, the latest record of each
    of its problems, its summary, and its place among the shards (None: not a shard)."""

    directory: Path
    config: dict[str, Any]
    records: list[dict[str, Any]]
    summary: dict[str, Any]
    shard: Shard | None

    @classmethod
    def read(cls, directory: Path) -> Part:
        store = RunStore(directory)
        summary_file = directory / "summary.json"
        if not store.config.is_file() or not summary_file.is_file():
            missing = "config.yaml" if not store.config.is_file() else "summary.json"
            raise ValueError(f"{directory}: no {missing} (not a run directory, or a run that never finished: resume it first)")
        try:
            summary = json.loads(summary_file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ValueError(f"{summary_file}: not valid JSON ({e.msg})") from None
        config = yaml.safe_load(store.config.read_text(encoding="utf-8"))
        if not isinstance(config, dict):
            raise ValueError(f"{store.config}: expected a run config mapping")
        shard = Shard.from_json(summary["shard"], summary_file) if "shard" in summary else None
        return cls(directory, config, store.records(), summary, shard)


@dataclass(frozen=True)
class Merged:
    """Runs joined: every record once, and the summary of them all."""

    parts: tuple[Part, ...]
    records: list[dict[str, Any]]
    wall_s: float
    extra: dict[str, Any]  # what a merged run's summary adds: where it came from

    @property
    def name(self) -> str:
        return str(self.parts[0].config.get("name", "run"))

    @property
    def strategy(self) -> str:
        return str(self.parts[0].config["strategy"]["name"])

    @property
    def summary(self) -> dict[str, Any]:
        return {**summarize(self.name, self.strategy, self.records, self.wall_s), **self.extra}

    @property
    def missing(self) -> list[Shard]:
        """Shards of the run that were not among the parts."""
        shards = [p.shard for p in self.parts if p.shard is not None]
        if not shards:
            return []
        count, have = shards[0].count, {s.index for s in shards}
        return [Shard(i, count) for i in range(count) if i not in have]


def combine(directories: Sequence[Path]) -> Merged:
    """The runs in `directories` as one (in shard order); ValueError, naming two of them,
    where they are not shards of one experiment."""
    if not directories:
        raise ValueError("no run directories to merge")
    parts = tuple(sorted((Part.read(Path(d)) for d in directories), key=lambda p: p.shard.index if p.shard else -1))
    first = parts[0]
    for part in parts[1:]:
        diff = result_difference(first.config, part.config)
        if diff:
            raise ValueError(f"cannot merge {first.directory} and {part.directory}: their configs differ in {diff}")
        if (first.shard is None) != (part.shard is None) or (first.shard and part.shard and first.shard.count != part.shard.count):
            split = lambda p: f"shard {p.shard}" if p.shard else "not a shard"  # noqa: E731
            raise ValueError(f"cannot merge {first.directory} ({split(first)}) and {part.directory} ({split(part)}): "
                             "shards of one run split it the same way (one N)")
    owner: dict[str, int] = {}
    for k, part in enumerate(parts):
        for record in part.records:
            seen = owner.setdefault(str(record["id"]), k)
            if seen != k:
                raise ValueError(f"cannot merge {parts[seen].directory} and {part.directory}: both hold problem {record['id']!r} (the same shard twice?)")
    records = [r for p in parts for r in p.records]
    extra: dict[str, Any] = {"merged_from": [str(p.directory) for p in parts]}
    if first.shard is not None:
        extra["shards"] = {"count": first.shard.count, "merged": [p.shard.index for p in parts if p.shard]}
    # the shards ran side by side: the merged run took as long as the slowest of them
    wall_s = max(float(p.summary.get("wall_s") or 0.0) for p in parts)
    return Merged(parts, records, wall_s, extra)


def merge_runs(directories: Sequence[Path], output: Path) -> Merged:
    """Write the merged run to `output` (a new directory): config.yaml, results.jsonl,
    traces/ and summary.json."""
    if output.exists():
        raise ValueError(f"--output {output}: already exists; merge writes a new run directory")
    for d in directories:
        if output.resolve().is_relative_to(Path(d).resolve()):
            raise ValueError(f"--output {output}: inside the run {d}, which merge never writes to")
    merged = combine(directories)
    output.parent.mkdir(parents=True, exist_ok=True)
    building = output.with_name(f".{output.name}.merging-{os.getpid()}")
    if building.exists():
        shutil.rmtree(building)  # left by an earlier merge of this process id that failed
    try:
        store = RunStore(building)
        store.traces.mkdir(parents=True)
        shutil.copyfile(merged.parts[0].directory / "config.yaml", store.config)
        lines = []
        for part in merged.parts:
            for record in part.records:
                if record.get("trace"):
                    name = Path(record["trace"]).name
                    source = part.directory / "traces" / name
                    if source.is_file():
                        shutil.copyfile(source, store.traces / name)
                        record = {**record, "trace": f"traces/{name}"}
                    else:
                        record = {**record, "trace": None}
                lines.append(json.dumps(record) + "\n")
        with store.results.open("w", encoding="utf-8") as f:
            f.writelines(lines)
            f.flush()
            os.fsync(f.fileno())
        store.write_summary(merged.name, merged.strategy, merged.records, merged.wall_s, **merged.extra)
        os.rename(building, output)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return merged
