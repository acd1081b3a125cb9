"""Every closed set of choices in a strategy config is checked when the config is built,
before any compute is spent, and the error names the field."""

from __future__ import annotations

import pytest

from ponder.strategies.base import make_strategy

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
