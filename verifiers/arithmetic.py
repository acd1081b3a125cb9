"""A rule-based step scorer: the share of a step's arithmetic claims that are true.

Claims are `a op b op ... = c` in prose and GSM8K's `<<expr=value>>` annotations. The
expression is evaluated by walking a whitelisted AST (numbers and + - * /), never eval.
A step with no claim scores 1.0; an unfinished last step is scored on what it has.
"""

from __future__ import annotations

import ast
import operator
import re
from typing import Sequence

from ..records.problem import Problem

_NUM = r"-?\d+(?:,\d{3})*(?:\.\d+)?"
_OP = r"[-+*/x×÷]"
_CLAIM = re.compile(rf"(?<![\w.])((?:{_NUM}\s*{_OP}\s*)+{_NUM})\s*=\s*({_NUM})(?![\d])")
_GSM = re.compile(r"<<([^=<>]+)=([^<>]+)>>")
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def evaluate(expr: str) -> float:
    """Value of an arithmetic expression; ValueError for anything but numbers and + - * / ( )."""
    text = expr.replace(",", "").replace("×", "*").replace("÷", "/")
    text = re.sub(r"(?<=\d)\s*x\s*(?=\d)", "*", text)
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as e:
        raise ValueError(f"not arithmetic: {expr!r}") from e

    def walk(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return float(node.value)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            v = walk(node.operand)
            return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            left, right = walk(node.left), walk(node.right)
            if abs(left) > 1e15 or abs(right) > 1e15:
                raise ValueError("number too large")
            return _OPS[type(node.op)](left, right)
        raise ValueError(f"not arithmetic: {expr!r}")

    return walk(tree)


def claims(step: str) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in _GSM.finditer(step)] + [
        (m.group(1), m.group(2)) for m in _CLAIM.finditer(_GSM.sub("", step))
    ]


def step_score(step: str) -> float:
    found = claims(step)
    if not found:
        return 1.0
    good = 0
    for expr, value in found:
        try:
            good += abs(evaluate(expr) - float(value.replace(",", ""))) <= 1e-6 * max(1.0, abs(float(value.replace(",", ""))))
        except (ValueError, ZeroDivisionError):
            pass
    return good / len(found)


class ArithmeticScorer:
    """StepScorer over arithmetic claims; costs no engine tokens."""

    async def score(self, problem: Problem, steps: Sequence[str]) -> list[float]:
        return [step_score(s) for s in steps]
