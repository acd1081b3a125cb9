"""`import ponder` gives what the examples need, lazily (no torch or vLLM), with real imports for
type checkers; `ponder.solve` works inside a running event loop, and `ponder.solve_async` exists."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import ponder
from ponder.backends.scripted import ScriptedBackend

ROOT = Path(__file__).resolve().parents[1]
NEEDED = ["make_backend", "Sampling", "PromptConfig", "Budget", "Solver", "Problem", "make_strategy", "register_strategy",
          "make_scorer", "StrategyContext", "solve", "solve_async"]


def test_import_ponder_gives_the_public_names_without_heavy_imports():
    code = (
        "import json, sys, ponder\n"
        f"names = {NEEDED!r}\n"
        "found = [n for n in names if callable(getattr(ponder, n, None))]\n"
        "heavy = sorted(m for m in ('torch', 'vllm', 'transformers') if m in sys.modules)\n"
        "print(json.dumps({'found': found, 'heavy': heavy}))\n"
    )
    out = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert out == {"found": NEEDED, "heavy": []}


def test_type_checkers_see_every_lazy_name_as_a_real_import():
    tree = ast.parse((ROOT / "__init__.py").read_text())
    (guard,) = [n for n in tree.body if isinstance(n, ast.If) and getattr(n.test, "id", None) == "TYPE_CHECKING"]
    imported = {alias.asname or alias.name for node in guard.body for alias in node.names}
    assert imported == set(ponder._LAZY)


async def test_solve_works_inside_a_running_event_loop():
    backend = ScriptedBackend(lambda call: "\\boxed{7}")
    r = ponder.solve("What is 3 + 4?", "best_of_n", backend=backend, answer="7", n=2, max_tokens=16)
    assert r.answer == "7" and r.correct and r.ledger.requests == 2


async def test_solve_async_runs_on_the_callers_loop():
    r = await ponder.solve_async("What is 3 + 4?", "best_of_n", backend=ScriptedBackend(lambda call: "\\boxed{7}"), n=3, max_tokens=16)
    assert r.answer == "7" and r.ledger.requests == 3


def test_solve_from_synchronous_code():
    r = ponder.solve("What is 3 + 4?", backend=ScriptedBackend(lambda call: "\\boxed{7}"), max_tokens=16)
    assert r.answer == "7"
