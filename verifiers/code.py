"""The code verifier: candidate code from a response, tests from the problem, run in the sandbox.

HumanEval / MBPP style problems: `problem.meta` holds `prompt` (prepended when the candidate
lacks the signature), `test` and `entry_point`, or `tests` (a list of assert lines) with an
optional `test_setup`. The candidate's code and the tests run in separate processes
(sandbox.py): the tests call the candidate's functions, never the other way round.
"""

from __future__ import annotations

import ast

from ..records.problem import Problem
from .answer import Extracted
from .base import Verdict
from .sandbox import SandboxConfig, SandboxRun, run_program

__all__ = ["CodeVerifier", "SandboxConfig", "SandboxRun", "extract_code", "run_program"]


def extract_code(response: str) -> str:
    """The last fenced Python block of a response, or the response itself."""
    blocks = []
    rest = response
    while "```" in rest:
        _, _, after = rest.partition("```")
        body, sep, rest = after.partition("```")
        if not sep:
            break
        first, _, tail = body.partition("\n")
        blocks.append(tail if first.strip().lower() in ("python", "py", "") else body)
    return blocks[-1] if blocks else response


class CodeVerifier:
    def __init__(self, config: SandboxConfig | None = None, **options: object) -> None:
        self.config = config or SandboxConfig(**options)  # type: ignore[arg-type]

    def program(self, problem: Problem, code: str) -> tuple[str, str]:
        """The candidate's module and the test statements that run against it."""
        meta = problem.meta
        entry = meta.get("entry_point")
        prefix = meta.get("prompt", "") if entry and f"def {entry}" not in code else ""
        if "test" in meta:
            return f"{prefix}{code}\n", f"{meta['test']}\n\ncheck({entry})\n"
        tests = "\n".join(meta.get("tests", []))
        return f"{prefix}{code}\n", f"{meta.get('test_setup', '')}\n{tests}\n"

    def subjects(self, problem: Problem) -> list[str]:
        """The functions under test: the entry point, or what the first test statement calls."""
        entry = problem.meta.get("entry_point")
        if entry:
            return [str(entry)]
        for line in problem.meta.get("tests", []):
            try:
                tree = ast.parse(line)
            except SyntaxError:
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                    return [node.func.id]  # walk is breadth-first: the outermost call of the first statement
        return []

    async def verify(self, problem: Problem, response: str) -> Verdict:
        code = extract_code(response)
        source, tests = self.program(problem, code)
        outcome = await run_program(source, self.config, tests, self.subjects(problem))
        return Verdict(outcome.passed, 1.0 if outcome.passed else 0.0, Extracted(code, outcome.status).text)
