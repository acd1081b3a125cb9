"""What every strategy shares (strategies/base.py): the registry, configs checked when built and
naming the field, the step-level base config, and step searches continuing cached prefixes on
the real engine."""

from __future__ import annotations

import pytest

from ponder.records.problem import Problem
from ponder.runtime.solver import Solver
from ponder.strategies.base import STRATEGIES, make_strategy

from ..engine_runs import solver
from ..scripts import backend

CHOICES = [
    ("best_of_n", "selection"), ("best_of_n", "aggregate"),
    ("beam_search", "selection"), ("beam_search", "aggregate"),
    ("dvts", "selection"), ("dvts", "aggregate"),
    ("early_rejection", "selection"), ("early_rejection", "aggregate"),
    ("particle_filtering", "selection"), ("particle_filtering", "aggregate"),
    ("a_star", "aggregate"), ("a_star", "g"), ("a_star", "push"),
    ("pdr", "distill"), ("pdr", "aggregate"), ("sr", "distill"),
    ("first_finish", "mode"), ("deepconf", "mode"), ("deepconf", "preset"), ("trim", "same_answer"),
]


@pytest.mark.parametrize("name,field", CHOICES)
def test_an_unknown_choice_is_refused_naming_the_field(name, field):
    with pytest.raises(ValueError, match=f"strategy {name}: field '{field}': Input should be"):
        make_strategy(name, **{field: "nope"})


def test_width_must_divide_n_in_every_tree_search():
    for name in ("beam_search", "dvts", "early_rejection"):
        with pytest.raises(ValueError, match=r"n \(6\) must be a multiple of width \(4\)"):
            make_strategy(name, n=6, width=4)


def test_step_level_strategies_share_one_base_config():
    from ponder.strategies.base import StepConfig, strategy_class

    shared = set(StepConfig.model_fields)
    assert shared == {"temperature", "top_p", "step_tokens", "final_tokens", "aggregate"}
    for name in ("beam_search", "dvts", "early_rejection", "a_star", "mcts", "particle_filtering"):
        config = strategy_class(name).Config
        assert issubclass(config, StepConfig) and not shared & set(config.__annotations__), name  # none repeats them
        assert {f: config.model_fields[f].default for f in shared} == {f: StepConfig.model_fields[f].default for f in shared}


def test_registry_and_config_errors():
    assert {"best_of_n", "beam_search", "dvts", "first_finish", "particle_filtering"} <= set(STRATEGIES)
    with pytest.raises(ValueError, match="unknown strategy 'nope'"):
        make_strategy("nope")
    with pytest.raises(ValueError, match="field 'n'"):
        make_strategy("best_of_n", n=0)
    with pytest.raises(ValueError, match="multiple of width"):
        make_strategy("beam_search", n=6, width=4)
    with pytest.raises(ValueError, match="needs a step scorer"):
        Solver(backend(), make_strategy("beam_search"))


ENGINE_PROBLEM = Problem(id="add", question="What is 12 + 7?", answer="19")
SMALL = dict(step_tokens=32, final_tokens=64, max_steps=3)


@pytest.mark.parametrize("name,config", [
    ("beam_search", dict(n=4, width=2, **SMALL)),
    ("dvts", dict(n=4, width=2, **SMALL)),
    ("particle_filtering", dict(particles=4, **SMALL)),
])
@pytest.mark.engine
async def test_step_search_reuses_the_prefix_cache(engine, name, config):
    r = await solver(engine, name, **config).solve(ENGINE_PROBLEM)
    assert r.candidates and all(c.score is not None for c in r.candidates)
    g = r.trace.graph
    later = [a for _, a in g.nodes(data=True) if a["depth"] >= 2]
    assert later, "the search went past its first step"
    # every request after the first step continues a token-exact prefix: whole blocks come from the cache
    assert all(a["cached_tokens"] >= 32 for a in later)
    assert r.ledger.cached_tokens > 0 and r.ledger.verifier_calls >= len(g) - 1
