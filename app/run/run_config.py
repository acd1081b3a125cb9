"""A batch run as one strict YAML file: every section maps onto a frozen config.

Unknown keys, wrong types and unknown names fail at load time, before any work starts,
with one line naming the file, the key and what was expected. `imports:` names modules (or
.py files beside the config) imported before anything is checked, so a strategy or scorer
they register can be named in the same file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ...runtime.budget import Budget
from ...records.registry import import_target
from ..data.datasets import DatasetConfig
from .imports import import_module
from ...runtime.prompt import PromptConfig


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class BackendSection(_Section):
    kind: Literal["vllm", "openai", "scripted"] = "vllm"  # scripted: the deterministic test backend
    model: str = "smollm2-135m-instruct"
    engine: dict[str, Any] = Field(default_factory=dict)  # EngineConfig fields (vllm)
    endpoints: list[str] = Field(default_factory=list)  # base URLs (openai)
    options: dict[str, Any] = Field(default_factory=dict)  # OpenAIConfig fields (openai); `script` (scripted)

    @model_validator(mode="after")
    def _check(self) -> "BackendSection":
        if self.kind == "vllm":
            from ...backends.vllm import EngineConfig

            EngineConfig(model=self.model, **self.engine)
        elif self.kind == "scripted":
            scripted_options(self.options)
        elif not self.endpoints:
            raise ValueError("backend.endpoints: the openai backend needs at least one base URL")
        return self

    def build(self, seed: int = 0) -> Any:
        """The backend this section describes, through the one backend factory."""
        from ...backends import make_backend

        if self.kind == "vllm":
            return make_backend("vllm", model=self.model, **{"seed": seed, **self.engine})
        if self.kind == "scripted":
            return make_backend("scripted", **scripted_options(self.options))
        return make_backend("openai", endpoints=self.endpoints, model=self.model, **self.options)


def scripted_options(options: dict[str, Any]) -> dict[str, Any]:
    """The scripted backend's arguments: `script` is a list of answers (sample i answers the
    i-th, cyclically) or "module:function" (a function of a ScriptCall returning the answer)."""
    script = options.get("script")
    if isinstance(script, str):
        try:
            script = import_target(script) if ":" in script else None
        except (ImportError, AttributeError) as e:
            raise ValueError(f"backend.options.script: cannot load {options['script']!r}: {e}") from None
    if not (callable(script) or (isinstance(script, list) and script and all(isinstance(x, str) for x in script))):
        raise ValueError("backend.options.script: expected a list of answers or 'module:function'")
    return {**options, "script": script}


class StrategySection(_Section):
    name: str
    config: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> "StrategySection":
        from ...strategies.base import make_strategy

        make_strategy(self.name, **self.config)
        return self


class ScorerSection(_Section):
    name: str
    options: dict[str, Any] = Field(default_factory=dict)
    backend: BackendSection | None = None  # a second engine for logprob / judge scorers (e.g. a PRM)

    @model_validator(mode="after")
    def _check(self) -> "ScorerSection":
        from ...verifiers import SCORERS

        if self.name not in SCORERS:
            raise ValueError(f"unknown scorer {self.name!r}: expected one of {', '.join(sorted(SCORERS))}")
        return self


class ExecutorSection(_Section):
    """Where the problems are solved: in this process (`local`), or on a pool of Ray actors, each
    with its own backend (`ray`; app/cluster/worker_pool.py). Never what they answer: a run may resume
    under another executor."""

    kind: Literal["local", "ray"] = "local"
    address: str | None = None  # ray: None starts a local cluster; "auto", "host:port" or "ray://host:port"
    workers: int = Field(1, ge=1)  # actors, each holding one engine; more wait for nodes to join
    gpus_per_worker: float = Field(0, ge=0)
    cpus_per_worker: float = Field(1, gt=0)
    retries: int = Field(3, ge=0)  # attempts more for a problem whose worker died under it

    @field_validator("address")
    @classmethod
    def _address(cls, address: str | None) -> str | None:
        if address is not None and address not in ("auto", "local") and \
                not re.fullmatch(r"(ray://)?[A-Za-z0-9_.-]+:\d{1,5}", address):
            raise ValueError(f"expected auto, local, HOST:PORT or ray://HOST:PORT, got {address!r}")
        return address

    @model_validator(mode="after")
    def _check(self) -> "ExecutorSection":
        if self.kind == "local":
            # a key left at its default is fine: a run directory's config.yaml names every key
            ray_only = [k for k in sorted(self.model_fields_set - {"kind"}) if getattr(self, k) != type(self).model_fields[k].default]
            if ray_only:
                raise ValueError(f"{ray_only[0]}: only for kind: ray")
        return self


class RunConfig(_Section):
    name: str = "run"
    imports: list[str] = Field(default_factory=list)  # modules or .py files (beside the config), imported first
    backend: BackendSection = Field(default_factory=BackendSection)
    strategy: StrategySection
    scorer: ScorerSection | None = None
    dataset: DatasetConfig
    prompt: PromptConfig = Field(default_factory=PromptConfig)
    concurrency: int = Field(8, ge=1)
    budget: Budget = Field(default_factory=Budget)  # per problem
    global_budget: Budget = Field(default_factory=Budget)  # whole run
    output_dir: str = "runs"
    seed: int = 0
    delimiter: str = "\n\n"
    executor: ExecutorSection = Field(default_factory=ExecutorSection)

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name: str) -> str:
        # the name is a folder under output_dir: never a path that leaves it
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name) or ".." in name:
            raise ValueError("expected a plain folder name (letters, digits, '_', '-', '.'; no '/' or '..')")
        return name


# Keys that change how fast a run goes, never what it answers: a resumed run may change them.
TUNING = {
    "name", "output_dir", "concurrency", "dataset.limit", "executor",
    "backend.engine.kv_cache_gib", "backend.engine.gpu_memory_utilization", "backend.engine.max_num_seqs",
    "backend.engine.tensor_parallel_size", "backend.engine.enforce_eager", "backend.engine.threads",
    "backend.engine.log_stats", "backend.engine.block_size", "backend.engine.max_num_batched_tokens",
    "backend.engine.extra_args.enable_chunked_prefill",
    "backend.engine.extra_args.max_num_batched_tokens", "backend.engine.extra_args.enable_prefix_caching",
    "backend.endpoints", "backend.options.api_key", "backend.options.timeout_s", "backend.options.connect_timeout_s",
    "backend.options.retries", "backend.options.backoff_s", "backend.options.affinity_block",
    "backend.options.affinity_entries", "backend.options.max_connections",
}


def with_defaults(saved: Any) -> Any:
    """A run directory's saved config with the keys added to RunConfig since it was written
    filled in with their defaults, so a resume compares like with like; as saved where it no
    longer validates (the comparison then names what changed)."""
    try:
        return RunConfig.model_validate(saved).model_dump(mode="json")
    except (ValueError, TypeError):  # pydantic's ValidationError is a ValueError
        return saved


def result_difference(old: Any, new: Any, path: str = "") -> str | None:
    """The first key (in config order) where two resolved configs differ in a way that can
    change results, as `key: old -> new`; None when a run may resume under `new`."""
    if path.removeprefix("scorer.") in TUNING or path in TUNING:  # a scorer's backend tunes alike
        return None
    if isinstance(old, dict) and isinstance(new, dict):
        for key in list(old) + [k for k in new if k not in old]:
            found = result_difference(old.get(key, "(absent)"), new.get(key, "(absent)"), f"{path}.{key}" if path else key)
            if found:
                return found
        return None
    return None if old == new else f"{path}: {old!r} -> {new!r}"


def apply_override(data: dict[str, Any], item: str) -> None:
    """`a.b.c=value`; the value is read as YAML, so numbers, booleans and lists keep their type."""
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise ValueError(f"--set expects key.path=value, got {item!r}")
    parts = key.split(".")
    node = data
    for p in parts[:-1]:
        nxt = node.setdefault(p, {})
        if not isinstance(nxt, dict):
            raise ValueError(f"--set {key}: {p!r} is not a section")
        node = nxt
    node[parts[-1]] = yaml.safe_load(raw) if raw else ""


def load_run_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    path = Path(path)
    data = read_yaml(path)
    for item in overrides:
        apply_override(data, item)
    import_config_modules(path, data)
    try:
        return RunConfig.model_validate(data)
    except ValidationError as e:
        raise ValueError(f"{path}: {describe(e)}") from None


def read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ValueError(f"{path}: no such config file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ValueError(f"{path}: invalid YAML{where}: {getattr(e, 'problem', None) or e}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of sections at the top level")
    return data


def import_config_modules(path: str | Path, data: dict[str, Any] | None = None) -> None:
    """Import what the config at `path` lists under `imports:` (relative to its folder)."""
    path = Path(path)
    imports = (read_yaml(path) if data is None else data).get("imports", [])
    if not isinstance(imports, list) or not all(isinstance(i, str) for i in imports):
        raise ValueError(f"{path}: imports: expected a list of module names or .py paths")
    for item in imports:
        try:
            import_module(item, path.parent)
        except ValueError as e:
            raise ValueError(f"{path}: imports: {e}") from None


def describe(e: ValidationError) -> str:
    err = e.errors()[0]
    key = ".".join(str(p) for p in err["loc"]) or "(top level)"
    if err["type"] == "extra_forbidden":
        return f"{key}: unknown key"
    if err["type"] == "missing":
        return f"{key}: required key is missing"
    msg = err["msg"].removeprefix("Value error, ")
    return f"{key}: {msg}" + (f" (got {err['input']!r})" if err["type"] not in ("value_error",) and not isinstance(err.get("input"), dict) else "")
