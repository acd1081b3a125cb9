"""The registry that finds strategies by name, and the spec that names a strategy inside
another's config.

The contract itself (Strategy, StrategyConfig, StrategyContext) is runtime/contract.py.
Implementations live in strategies/ (built in) or anywhere else (users' files, installed
packages); all of them are registered through `register_strategy`, and names become
strategies here only (`resolve_strategy`, used by the context's sub-runs and the app).
"""

from __future__ import annotations

from typing import Any, Mapping, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails

from ..records.registry import Registry, registrar
from .contract import Strategy, StrategyConfig


STRATEGIES: Registry[type[Strategy]] = Registry("strategy", "ponder.strategies")
S = TypeVar("S", bound=type)


def register_strategy(what: Any = None, target: Any = None, *, name: str | None = None) -> Any:
    """Make a strategy class findable by name (in YAML, `make_strategy`, `ctx.run`, the CLI).

    As a decorator: `@register_strategy` (the name is the class's `name`) or
    `@register_strategy("my_name")`. As a call: `register_strategy(MyStrategy)`,
    `register_strategy("my_name", MyStrategy)`, or `register_strategy("my_name",
    "package.module:Class")` to import the class on first use. The class needs a `Config` (a
    StrategyConfig subclass) and `async run(self, ctx)`; it is built as `Class(config)`."""
    return registrar(_add, what, target, name)


def _add(name: str | None, obj: Any) -> Any:
    if isinstance(obj, str):  # "module:Class", checked when first loaded
        STRATEGIES.register(name, obj)
        return obj
    return _register_class(obj, name)


def _register_class(cls: S, name: str | None) -> S:
    name = name or getattr(cls, "name", None)
    STRATEGIES.register(_checked(cls, name), cls)  # type: ignore[arg-type]
    return cls


def _checked(cls: Any, name: str | None) -> str:
    """The name of a well-formed strategy class, its optional attributes defaulted; a class
    from an entry point is checked when it is first loaded."""
    if not isinstance(cls, type):
        raise ValueError(f"register_strategy expects a class, got {cls!r}")
    if not name:
        raise ValueError(f"strategy {cls.__qualname__}: give it a `name` class attribute or register it with a name")
    config = getattr(cls, "Config", None)
    if not (isinstance(config, type) and issubclass(config, StrategyConfig)):
        raise ValueError(f"strategy {name!r}: `Config` must be a StrategyConfig subclass")
    if not callable(getattr(cls, "run", None)):
        raise ValueError(f"strategy {name!r}: needs `async def run(self, ctx)`")
    if "name" not in vars(cls):
        cls.name = name  # type: ignore[attr-defined]
    if not hasattr(cls, "needs_scorer"):
        cls.needs_scorer = False  # type: ignore[attr-defined]
    return name


def strategy_class(name: str) -> type[Strategy]:
    cls = STRATEGIES.load(name)
    _checked(cls, name)
    return cls


def make_strategy(name: str, **config: object) -> Strategy:
    """The strategy `name` built from its config; nested strategy specs are checked all the way
    down, and an error names the field's path (`stages.1.config.width`)."""
    cls = strategy_class(name)
    try:
        return cls(cls.Config(**config))  # type: ignore[call-arg]
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"strategy {name}: field {field!r}: {first['msg'].removeprefix('Value error, ')}") from None


class StrategySpec(BaseModel):
    """A strategy named inside another's config: `{name: beam_search, config: {n: 8}}` or just
    `beam_search`. Checked when the enclosing config is built, before any engine starts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    config: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _bare_name(cls, data: Any) -> Any:
        return {"name": data} if isinstance(data, str) else data

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        strategy_class(name)
        return name

    @model_validator(mode="after")
    def _valid_config(self) -> "StrategySpec":
        try:
            strategy_class(self.name).Config(**self.config)
        except ValidationError as e:  # re-raised under `config`, so the path names every level
            raise ValidationError.from_exception_data(e.title, [
                InitErrorDetails(type=err["type"], loc=("config", *err["loc"]), input=err["input"], ctx=err.get("ctx", {}))  # type: ignore[typeddict-item]
                for err in e.errors()
            ]) from None
        return self

    def build(self) -> Strategy:
        return make_strategy(self.name, **self.config)


def resolve_strategy(strategy: Strategy | StrategySpec | str, config: Mapping[str, object] | None = None) -> Strategy:
    """A strategy instance from an instance, a spec, or a name with its config."""
    if isinstance(strategy, str):
        return make_strategy(strategy, **(config or {}))
    if config:
        raise ValueError(f"config fields {sorted(config)} are given for an already built strategy")
    if isinstance(strategy, StrategySpec):
        return strategy.build()
    if not callable(getattr(strategy, "run", None)):
        raise ValueError(f"expected a strategy, its name or a StrategySpec, got {strategy!r}")
    return strategy


__all__ = [
    "STRATEGIES", "Strategy", "StrategyConfig", "StrategySpec", "make_strategy", "register_strategy",
    "resolve_strategy", "strategy_class",
]
