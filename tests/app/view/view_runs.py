"""Real runs for the viewer's tests: `ponder run` on the scripted backend with a step script,
so a beam search leaves chosen, pruned and finished nodes and a cascade leaves sub-runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ponder.backends.scripted import ScriptCall

PONDER = str(Path(sys.executable).parent / "ponder")
PROBLEMS = [("p0", "What is 3 + 4?", "7"), ("p1", "What is 3 + 4, or is it?", "8"), ("p/2", "And 3 + 4?", "7"),
            ("p3", "FAIL What is 3 + 4?", "7")]


def stepwise(call: ScriptCall) -> str:
    """Two steps, right or wrong by the sample's seed, then a boxed answer; a FAIL problem
    raises after its first step."""
    depth = call.generated.count("\n\n")
    if "FAIL" in call.prompt and depth:
        raise RuntimeError("this problem cannot be solved")
    if depth >= 2:
        return "So 3 + 4 = 7 and the answer is \\boxed{7}."
    claim = "3 + 4 = 7" if (call.seed or 0) % 3 else "3 + 4 = 8"
    return f"Step {depth}: {claim}.\n\n"


CONFIG = """\
name: {name}
backend: {{kind: scripted, options: {{script: "view_runs:stepwise"}}}}
strategy: {strategy}
scorer: {{name: arithmetic}}
dataset: {{name: "{data}"}}
output_dir: {out}
"""
STRATEGIES = {
    "beam": "{name: beam_search, config: {n: 4, width: 2, max_steps: 4}}",
    "cascade": "{name: cascade, config: {}}",
}


def make_runs(root: Path, names=("beam", "cascade"), problems=PROBLEMS) -> list[Path]:
    """Run each named strategy over `problems` into root/runs/NAME; the run directories."""
    data = root / "problems.jsonl"
    data.write_text("".join(json.dumps({"id": i, "problem": q, "answer": a}) + "\n" for i, q, a in problems))
    configs = []
    for name in names:
        cfg = root / f"{name}.yaml"
        cfg.write_text(CONFIG.format(name=name, strategy=STRATEGIES[name], data=data, out=root / "runs"))
        configs.append(str(cfg))
    # one command runs them all, one after another; exit 1: the FAIL problem is an error record,
    # the others are answered
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}  # where `view_runs:stepwise` is found
    done = subprocess.run([PONDER, "run", *configs, "-q"], capture_output=True, text=True, env=env)
    assert done.returncode in (0, 1), done.stderr
    return [root / "runs" / name for name in names]


def trace(run: Path, problem: str) -> dict:
    record = next(r for r in map(json.loads, (run / "results.jsonl").read_text().splitlines()) if r["id"] == problem)
    return json.loads((run / record["trace"]).read_text())
