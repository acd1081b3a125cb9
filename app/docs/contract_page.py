"""docs/contract.md's reference part, written from runtime/contract.py so it cannot drift.

One table per protocol (the strategy's context, the tree it builds): each member with its
signature and its one-line contract, the docstring in the protocol. The page's hand-written
part (above MARKER) is kept; `python -m ponder.app.docs.contract_page` rewrites the part below, and
tests/runtime/test_contract.py fails when the page on disk differs from what this writes.
"""

from __future__ import annotations

import inspect
from pathlib import Path

from ...runtime.contract import StrategyContext, Tree
from .strategy_page import below

PAGE = Path(__file__).resolve().parents[2] / "docs" / "contract.md"
MARKER = "<!-- generated from runtime/contract.py by `python -m ponder.app.docs.contract_page`: edit above this line only -->"
PROTOCOLS = (StrategyContext, Tree)


def members(protocol: type) -> list[tuple[str, str, str]]:
    """(name, signature, contract) of each member, in the order the protocol defines them."""
    out = []
    for name, value in vars(protocol).items():
        if name.startswith("_"):
            continue
        if isinstance(value, property):
            hint = inspect.signature(value.fget).return_annotation
            out.append((name, f"`{name}: {hint}`", inspect.getdoc(value.fget) or ""))
        elif inspect.isfunction(value):
            prefix = "async " if inspect.iscoroutinefunction(value) else ""
            out.append((name, f"`{prefix}{name}{_signature(value)}`", inspect.getdoc(value) or ""))
    return out


def _signature(fn: object) -> str:
    """`(a: int, b: str = 'x') -> R` without self, annotations as written in the source."""
    sig = inspect.signature(fn)  # type: ignore[arg-type]
    params = []
    for p in list(sig.parameters.values())[1:]:
        text = ("**" if p.kind is p.VAR_KEYWORD else "*" if p.kind is p.VAR_POSITIONAL else "") + p.name
        if p.annotation is not p.empty:
            text += f": {p.annotation}"
        if p.default is not p.empty:
            text += f" = {p.default!r}"
        params.append(text)
    if any(p.kind is p.KEYWORD_ONLY for p in sig.parameters.values()):
        first = next(i for i, p in enumerate(list(sig.parameters.values())[1:]) if p.kind is p.KEYWORD_ONLY)
        params.insert(first, "*")
    return f"({', '.join(params)}) -> {sig.return_annotation}"


def reference() -> str:
    out = ["## Reference"]
    for protocol in PROTOCOLS:
        out += ["", f"### {protocol.__name__}", "", " ".join((inspect.getdoc(protocol) or "").split()), "",
                "| member | contract |", "|---|---|"]
        out += [f"| {sig.replace('|', chr(92) + '|')} | {doc.replace('|', chr(92) + '|')} |" for _, sig, doc in members(protocol)]
    return "\n".join(out) + "\n"


def page(current: str) -> str:
    """`current` with everything after MARKER replaced by `reference()`."""
    return below(PAGE, MARKER, current, reference())


if __name__ == "__main__":
    PAGE.write_text(page(PAGE.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"wrote {PAGE}")
