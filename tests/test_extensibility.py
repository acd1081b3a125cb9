"""Strategies and scorers from outside the package: registered by decorator or call, imported by
a run config, installed as entry points; the example of docs/custom-strategies.md runs as written."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import ClassVar

import pytest

import ponder
from ponder.app.run.batch import execute
from ponder.app.run.imports import import_module
from ponder.app.run.run_config import load_run_config
from ponder.backends.scripted import ScriptedBackend
from ponder.records.problem import Problem
from ponder.records.registry import Registry
from ponder.runtime.solver import Solver
from ponder.strategies.base import STRATEGIES, Configured, StrategyConfig, make_strategy, strategy_class
from ponder.verifiers import make_scorer

from .commands import PONDER

README = Path(__file__).resolve().parents[1] / "README.md"
PAGE = README.parent / "docs" / "custom-strategies.md"
PROBLEM = Problem(id="q", question="What is 12 + 7?", answer="19")
EXAMPLE = README.parent / "configs" / "custom" / "until_agree.py"  # the example config's strategy file


def readme_example() -> str:
    """The strategy file docs/custom-strategies.md shows: its first Python block up to where it
    runs the strategy on the scripted backend, then the file's own `__main__`, as written."""
    block = re.search(r"```python\n(.*?)```", PAGE.read_text(), re.S).group(1)
    strategy = block.split("\n\n\n# run here on the scripted test backend", 1)[0]
    main = EXAMPLE.read_text().split("\n\nif __name__ == \"__main__\":", 1)[1]
    return f"{strategy}\n\nif __name__ == \"__main__\":{main}"


@pytest.fixture(scope="module")
def user_dir(tmp_path_factory) -> Path:
    """A user's folder holding the docs' strategy as until_agree.py. In this process the
    same code is imported from configs/custom (one module: a name is registered once)."""
    assert EXAMPLE.read_text() == readme_example()
    import_module(str(EXAMPLE), README.parent)
    folder = tmp_path_factory.mktemp("user")
    (folder / "until_agree.py").write_text(readme_example())
    return folder


async def test_the_readme_example_runs_as_written(user_dir):
    b = ScriptedBackend(["The sum is \\boxed{19}.", "The sum is \\boxed{18}.", "It is \\boxed{19}."])
    r = await Solver(b, make_strategy("until_agree", batch=3, agree=0.6)).solve(PROBLEM)
    assert r.answer == "19" and r.correct is True
    assert r.metrics["samples"] == 3 and r.ledger.requests == 3  # 2 of 3 agree: one round
    hard = ScriptedBackend(lambda call: f"\\boxed{{{call.seed}}}")
    r = await Solver(hard, make_strategy("until_agree", batch=2, rounds=3, agree=0.6)).solve(PROBLEM)
    assert r.metrics["samples"] == 6 and len(r.candidates) == 6  # never agree: every round
    assert "until_agree" in STRATEGIES and strategy_class("until_agree").__module__.startswith("ponder_user_until_agree")


def test_register_strategy_by_decorator_by_name_and_refuses_a_second_class_for_a_name():
    @ponder.register_strategy
    class Decorated(Configured[StrategyConfig]):
        name: ClassVar[str] = "test_decorated"
        Config: ClassVar[type[StrategyConfig]] = StrategyConfig

        async def run(self, ctx):
            raise NotImplementedError

    @ponder.register_strategy("test_named")
    class Named(Decorated):
        pass

    assert strategy_class("test_decorated") is Decorated and strategy_class("test_named") is Named
    assert Named.needs_scorer is False and make_strategy("test_named").config == StrategyConfig()
    ponder.register_strategy(Decorated)  # the same class again: nothing changes
    with pytest.raises(ValueError, match="strategy 'best_of_n' is already registered as ponder.strategies.best_of_n:BestOfN"):
        ponder.register_strategy("best_of_n", Named)
    with pytest.raises(ValueError, match="`Config` must be a StrategyConfig subclass"):
        ponder.register_strategy("test_bad", type("Bad", (), {"Config": dict, "run": lambda self, ctx: None}))


def test_register_scorer_and_a_scorer_that_needs_the_backend():
    class Halves:
        def __init__(self, value: float = 0.5) -> None:
            self.value = value

        async def score(self, problem, steps):
            return [self.value] * len(steps)

    class ReadsEngine(Halves):
        needs_backend: ClassVar[bool] = True

        def __init__(self, backend, value: float = 0.5) -> None:
            super().__init__(value)
            self.backend = backend

    ponder.register_scorer("test_halves", Halves)
    ponder.register_scorer("test_reads_engine")(ReadsEngine)
    assert make_scorer("test_halves", value=0.25).value == 0.25
    b = ScriptedBackend(["x"])
    assert make_scorer("test_reads_engine", b).backend is b
    with pytest.raises(ValueError, match="scorer 'test_reads_engine' needs a backend"):
        make_scorer("test_reads_engine")
    with pytest.raises(ValueError, match="unknown scorer 'nope': expected one of .*arithmetic.*test_halves"):
        make_scorer("nope")


def test_the_confidence_scorer_is_built_in():
    assert type(make_scorer("confidence")).__name__ == "ConfidenceScorer"


PLUGIN = '''
from typing import ClassVar
from ponder.strategies.base import Configured, StrategyConfig

class EchoConfig(StrategyConfig):
    words: int = 3

class Echo(Configured[EchoConfig]):
    name: ClassVar[str] = "echo_answer"
    Config: ClassVar[type[StrategyConfig]] = EchoConfig

    async def run(self, ctx):
        raise NotImplementedError

class Constant:
    async def score(self, problem, steps):
        return [1.0] * len(steps)
'''


@pytest.fixture
def installed(tmp_path) -> Path:
    """A package installed as pip would (a .dist-info with entry points) in a folder of its own."""
    site = tmp_path / "site"
    (site / "ponder_plugin_demo-0.1.dist-info").mkdir(parents=True)
    (site / "ponder_plugin_demo.py").write_text(PLUGIN)
    info = site / "ponder_plugin_demo-0.1.dist-info"
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ponder-plugin-demo\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[ponder.strategies]\necho_answer = ponder_plugin_demo:Echo\n\n[ponder.scorers]\nconstant = ponder_plugin_demo:Constant\n")
    return site


def test_an_installed_entry_point_is_found_when_a_name_is_missing(installed, monkeypatch):
    monkeypatch.syspath_prepend(str(installed))
    strategies, scorers = Registry("strategy", "ponder.strategies"), Registry("scorer", "ponder.scorers")
    assert strategies.load("echo_answer").Config().words == 3
    assert list(scorers) == ["constant"] and scorers.load("constant").__name__ == "Constant"
    assert list(Registry("strategy", "ponder.nothing_here")) == []


def child(code: str, pythonpath: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": f"{pythonpath}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)


def test_ponder_strategies_lists_an_installed_entry_point_and_imports_no_engine(installed):
    p = subprocess.run([PONDER, "strategies"], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(installed)})
    assert p.returncode == 0, p.stderr
    assert "echo_answer\n    words = 3\n" in p.stdout and "cascade\n" in p.stdout and "vote\n" in p.stdout
    probe = textwrap.dedent("""
        import sys
        from typer.testing import CliRunner
        from ponder.cli import app
        for args in (["--help"], ["strategies"]):
            out = CliRunner().invoke(app, args)
            assert out.exit_code == 0, out.output
        print("echo_answer" in out.output, sorted(m for m in ("torch", "vllm", "transformers") if m in sys.modules))
    """)
    p = child(probe, installed)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "True []"


def test_ponder_strategies_takes_a_config_or_an_import(user_dir):
    config = user_dir / "mine.yaml"
    config.write_text("imports: [until_agree.py]\nstrategy: {name: until_agree}\n")
    for args in (["--config", str(config)], ["--import", str(user_dir / "until_agree.py")]):
        p = subprocess.run([PONDER, "strategies", *args], capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        assert "until_agree\n    batch = 4\n    rounds = 3\n" in p.stdout
    p = subprocess.run([PONDER, "strategies", "--import", "no_such_module_here"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and p.stderr.strip() == "error: no_such_module_here: ModuleNotFoundError: No module named 'no_such_module_here'"


RUN = """\
name: mine
imports: [until_agree.py]
backend: {{kind: scripted, options: {{script: ["The sum is \\\\boxed{{19}}.", "I think \\\\boxed{{19}}.", "\\\\boxed{{20}}"]}}}}
strategy: {{name: until_agree, config: {{batch: 3}}}}
dataset: {{name: "{data}"}}
output_dir: {out}
"""


def test_ponder_run_uses_a_strategy_file_beside_the_config(user_dir, tmp_path):
    data = tmp_path / "two.jsonl"
    data.write_text("".join(json.dumps({"id": f"s{i}", "problem": f"What is 12 + {7 + i}?", "answer": "19"}) + "\n" for i in range(2)))
    config = user_dir / "run_mine.yaml"
    config.write_text(RUN.format(data=data, out=tmp_path / "runs"))
    p = subprocess.run([PONDER, "run", str(config), "-q"], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    records = [json.loads(line) for line in (tmp_path / "runs" / "mine" / "results.jsonl").read_text().splitlines()]
    assert [(r["id"], r["answer"], r["correct"]) for r in records] == [("s0", "19", True), ("s1", "19", True)]
    assert all(r["strategy"] == "until_agree" and r["requests"] == 3 for r in records)
    assert "accuracy 1.000" in p.stdout


def test_a_missing_or_broken_import_is_one_line_naming_the_config(tmp_path):
    (tmp_path / "broken.py").write_text("import ponder\nraise RuntimeError('half written')\n")
    for imports, message in (("[nowhere.py]", "imports: nowhere.py: no such file"),
                             ("[broken.py]", "imports: broken.py: RuntimeError: half written"),
                             ("nowhere.py", "imports: expected a list")):
        config = tmp_path / "c.yaml"
        config.write_text(f"imports: {imports}\nstrategy: {{name: best_of_n}}\ndataset: {{name: gsm8k}}\n")
        with pytest.raises(ValueError, match=re.escape(f"{config}: {message}")) as e:
            load_run_config(config)
        assert "\n" not in str(e.value)


NESTED = {  # strategy -> (its YAML, the sub-runs it makes on a problem whose samples all agree)
    "vote": ("{name: vote, config: {k: 3, strategy: {name: beam_search, config: {n: 4, width: 2, max_steps: 4}}}}", 3),
    "cascade": ("{name: cascade, config: {stages: [{name: best_of_n, config: {n: 2}}, {name: beam_search, config: {n: 4, width: 2}}], threshold: 0.9}}", 1),
    "pdr": ("{name: pdr, config: {schedule: [2, 1], workspace_tokens: 64, max_tokens: 64, drafter: {name: beam_search, config: {n: 2, width: 2}}}}", 2),
}


@pytest.mark.parametrize("name", sorted(NESTED))
async def test_nested_strategies_run_from_yaml(name, tmp_path):
    data = tmp_path / "one.jsonl"
    data.write_text(json.dumps({"id": "a", "problem": "What is 3 + 4?", "answer": "7"}) + "\n")
    config = tmp_path / f"{name}.yaml"
    config.write_text(
        f"name: {name}\nbackend: {{kind: scripted, options: {{script: ['3 + 4 = 7.\\n\\nSo the answer is \\\\boxed{{7}}.']}}}}\n"
        f"strategy: {NESTED[name][0]}\nscorer: {{name: arithmetic}}\ndataset: {{name: \"{data}\"}}\noutput_dir: {tmp_path / 'runs'}\n")
    cfg = load_run_config(config)
    done = await execute(cfg, [Problem(id="a", question="What is 3 + 4?", answer="7")], progress=False)
    (record,) = [json.loads(line) for line in (done.directory / "results.jsonl").read_text().splitlines()]
    assert record["strategy"] == name and record["answer"] == "7" and record["error"] is None
    trace = json.loads((done.directory / record["trace"]).read_text())
    assert [n["subrun"] for n in trace["nodes"] if n.get("subrun")] == ["beam_search" if name != "cascade" else "best_of_n"] * NESTED[name][1]


def test_a_nested_config_error_in_yaml_names_the_path(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("strategy: {name: cascade, config: {stages: [best_of_n, {name: beam_search, config: {n: 6, width: 4}}]}}\n"
                      "dataset: {name: gsm8k}\n")
    with pytest.raises(ValueError, match=re.escape("strategy: strategy cascade: field 'stages.1.config': n (6) must be a multiple of width (4)")):
        load_run_config(config)
