"""A sweep file: one base run config and the axes that vary it, expanded into cells.

```yaml
name: frontier            # the sweep's folder under the base's output_dir
base: ../demo/greedy.yaml # a run config file (relative to this file), or an inline mapping
grid:                     # dotted keys -> values; one cell per combination
  strategy.config.n: [1, 2, 4]
  strategy.config.temperature: [0.4, 0.8]
```
`set:` (dotted keys -> values) changes the base for every cell; `--set` on the command line
applies after it. Instead of `grid:`, `variants:`: a list of `{name, set: {dotted key: value},
grid: {...}}`, each a named cell (or a named grid of cells). Every cell's run config is built and validated when the file is loaded,
so a bad key in any cell fails in one line naming the file, the cell and the key before any
engine starts.
"""

from __future__ import annotations

import copy
import itertools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..run.run_config import RunConfig, apply_override, describe, import_config_modules, read_yaml

NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]*"


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Variant(_Strict):
    name: str
    set: dict[str, Any] = Field(default_factory=dict)  # dotted key -> value
    grid: dict[str, list[Any]] = Field(default_factory=dict)  # dotted key -> values


class DifficultyConfig(_Strict):
    """Difficulty bins and the compute-optimal fit (app/sweep/difficulty.py)."""

    wave: int = Field(4, ge=1)  # first-wave samples that predict a problem's difficulty
    bins: int = Field(5, ge=2)  # oracle bins: quantiles of the pass rate
    cell: str | None = None  # the sampling cell giving pass rates and waves (default: the largest)
    budgets: list[float] = Field(default_factory=list)  # generated tokens per problem (run: false: default every cell's cost)
    run: bool = True  # run compute_optimal on the held-out problems once the fit is written

    @model_validator(mode="after")
    def _budgets_to_run(self) -> "DifficultyConfig":
        if self.run and not self.budgets:
            raise ValueError("budgets: list the generated tokens per problem to run compute_optimal at (or run: false)")
        return self


class SweepConfig(_Strict):
    name: str
    base: str | dict[str, Any]
    set: dict[str, Any] = Field(default_factory=dict)  # dotted key -> value, applied to the base first
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    variants: list[Variant] = Field(default_factory=list)
    subsample: bool = True  # best-of-n majority cells at smaller n are estimated from the largest
    difficulty: DifficultyConfig | None = None

    @field_validator("name")
    @classmethod
    def _plain(cls, name: str) -> str:
        if not re.fullmatch(NAME, name) or ".." in name:
            raise ValueError("expected a plain folder name (letters, digits, '_', '-', '.')")
        return name

    @field_validator("grid")
    @classmethod
    def _lists(cls, grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in grid.items():
            if not values:
                raise ValueError(f"{key}: expected a non-empty list of values")
        return grid

    @model_validator(mode="after")
    def _one_kind(self) -> "SweepConfig":
        if self.grid and self.variants:
            raise ValueError("give either `grid:` or `variants:` (a variant may carry its own grid)")
        return self


@dataclass(frozen=True)
class Cell:
    """One point of the sweep: a full run config. A cell `derived_from` another is never run:
    its figures are estimated from that cell's samples (best-of-k out of the run's n)."""

    name: str
    config: RunConfig
    values: tuple[tuple[str, Any], ...]  # the axis values that made it
    derived_from: str | None = None
    series: str = ""  # the cells that differ only in the last grid axis share it (one line in the plot)

    @property
    def k(self) -> int:
        return int(self.config.strategy.config.get("n", 1))


@dataclass(frozen=True)
class Sweep:
    name: str
    path: Path
    directory: Path  # SWEEP_DIR: every cell's run directory is under it
    cells: tuple[Cell, ...]
    difficulty: DifficultyConfig | None

    def cell(self, name: str) -> Cell:
        for c in self.cells:
            if c.name == name:
                return c
        raise ValueError(f"{self.path}: no cell named {name!r}")

    @property
    def runs(self) -> list[Cell]:
        """The cells that need an engine."""
        return [c for c in self.cells if c.derived_from is None]


def set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    """`a.b.c` in nested mappings, creating sections on the way (values keep their type)."""
    node = data
    parts = key.split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ValueError(f"{key}: {p!r} is not a section")
    node[parts[-1]] = copy.deepcopy(value)


def load_sweep(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Sweep:
    """The sweep at `path` with every cell validated; `overrides` (`--set`) apply to the base."""
    path = Path(path)
    try:
        spec = SweepConfig.model_validate(read_yaml(path))
    except ValidationError as e:
        raise ValueError(f"{path}: {describe(e)}") from None
    if isinstance(spec.base, str):
        base_path = path.parent / spec.base
        base = read_yaml(base_path)
    else:
        base_path, base = path, copy.deepcopy(spec.base)
    try:
        for key, value in spec.set.items():
            set_dotted(base, key, value)
    except ValueError as e:
        raise ValueError(f"{path}: set: {e}") from None
    for item in overrides:
        apply_override(base, item)
    import_config_modules(base_path, base)
    directory = Path(base.get("output_dir", "runs")) / spec.name
    cells: list[Cell] = []
    for name, values, series in _expand(spec):
        data = copy.deepcopy(base)
        try:
            for key, value in values:
                set_dotted(data, key, value)
            data.update(name=name, output_dir=str(directory))
            config = RunConfig.model_validate(data)
        except ValidationError as e:
            raise ValueError(f"{path}: cell {name}: {describe(e)}") from None
        except ValueError as e:
            raise ValueError(f"{path}: cell {name}: {e}") from None
        cells.append(Cell(name, config, tuple(values), series=series))
    seen: set[str] = set()
    for c in cells:
        if c.name in seen:
            raise ValueError(f"{path}: two cells are named {c.name!r}: give the variants distinct names")
        seen.add(c.name)
    if spec.subsample:
        cells = derive(cells)
    sweep = Sweep(spec.name, path, directory, tuple(cells), spec.difficulty)
    if spec.difficulty and spec.difficulty.cell is not None:
        sweep.cell(spec.difficulty.cell)
    return sweep


def _expand(spec: SweepConfig) -> list[tuple[str, list[tuple[str, Any]], str]]:
    """(cell name, [(dotted key, value)], series) for every cell, in file order."""
    variants = spec.variants or [Variant(name="", grid=spec.grid)]
    out = []
    for v in variants:
        keys = list(v.grid)
        short = _short_names(keys)
        for combo in itertools.product(*(v.grid[k] for k in keys)):
            parts = [v.name] if v.name else []
            parts += [f"{short[k]}{_plain(value)}" for k, value in zip(keys, combo)]
            name = "-".join(parts) or "base"
            out.append((name, [*v.set.items(), *zip(keys, combo)], "-".join(parts[:-1]) if keys else name))
    return out


def _short_names(keys: list[str]) -> dict[str, str]:
    """The last part of each key (`n` for strategy.config.n), or the whole key where two share it."""
    last = [k.rsplit(".", 1)[-1] for k in keys]
    return {k: (s if last.count(s) == 1 else k.replace(".", "_")) for k, s in zip(keys, last)}


def _plain(value: Any) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", str(value))


def sampling_family(config: RunConfig) -> str | None:
    """The key shared by best-of-n majority cells that differ only in n (None: not one)."""
    s = config.strategy
    if s.name != "best_of_n" or s.config.get("selection", "majority") != "majority":
        return None
    if float(s.config.get("temperature", 0.8)) <= 0:  # greedy samples are not exchangeable draws
        return None
    data = config.model_dump(mode="json")
    data.pop("name")
    data["strategy"]["config"] = {k: v for k, v in data["strategy"]["config"].items() if k != "n"}
    return repr(data)


def derive(cells: list[Cell]) -> list[Cell]:
    """Mark each best-of-k majority cell whose family has a run at a larger n as derived from it."""
    largest: dict[str, Cell] = {}
    for c in cells:
        key = sampling_family(c.config)
        if key is not None and (key not in largest or c.k > largest[key].k):
            largest[key] = c
    out = []
    for c in cells:
        key = sampling_family(c.config)
        top = largest.get(key) if key is not None else None
        out.append(Cell(c.name, c.config, c.values, top.name, c.series) if top is not None and top is not c else c)
    return out
