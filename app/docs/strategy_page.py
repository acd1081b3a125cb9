"""docs/strategies.md's reference part, written from the strategy registry so it cannot drift.

Per built-in strategy: the paper it follows (its module's opening paragraph), whether it needs a
step scorer, and every config field with its type, default, bounds and the comment beside it in
the source. The page's hand-written part (above MARKER) is kept as it is;
`python -m ponder.app.docs.strategy_page` rewrites the part below, and tests/test_docs.py fails when
the page on disk differs from what this writes.
"""

from __future__ import annotations

import ast
import inspect
import io
import re
import sys
import textwrap
import tokenize
from pathlib import Path
from typing import Any

from ...strategies.base import BUILT_IN, strategy_class

PAGE = Path(__file__).resolve().parents[2] / "docs" / "strategies.md"
MARKER = "<!-- generated from the strategy registry by `python -m ponder.app.docs.strategy_page`: edit above this line only -->"


def _comments(cls: type) -> dict[str, str]:
    """The comment on each annotated field's line in `cls`'s own source (`n: int = 8  # why`)."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    by_line = {tok.start[0]: tok.string.lstrip("#").strip()
               for tok in tokenize.generate_tokens(io.StringIO(source).readline) if tok.type == tokenize.COMMENT}
    (node,) = ast.parse(source).body
    fields = {stmt.target.id: by_line.get(stmt.end_lineno or stmt.lineno, "")
              for stmt in getattr(node, "body", []) if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)}
    if isinstance(node, ast.ClassDef) and node.lineno in by_line:
        fields[""] = by_line[node.lineno]  # a comment on the class line explains several fields
    return fields


def _type(annotation: Any) -> str:
    if isinstance(annotation, type):
        return annotation.__name__
    return re.sub(r"\b(?:[A-Za-z_]\w*\.)+([A-Za-z_]\w*)", r"\1", str(annotation)).replace("NoneType", "None")


def _first_sentence(text: str) -> str:
    """Up to the first full stop that ends a sentence (not the one in `et al.`)."""
    return re.split(r"(?<!\bal)\.\s+(?=[A-Z])", text, maxsplit=1)[0].rstrip(".")


def _bounds(metadata: list[Any]) -> str:
    signs = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}
    return ", ".join(f"{signs[k]} {getattr(m, k)}" for m in metadata for k in signs if getattr(m, k, None) is not None)


def _default(info: Any) -> str:
    value = info.get_default(call_default_factory=True)
    dump = getattr(value, "model_dump", None)
    value = dump() if callable(dump) else [v.model_dump() if hasattr(v, "model_dump") else v for v in value] if isinstance(value, list) else value
    return f"`{value!r}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def fields_table(config: type) -> list[str]:
    """A markdown table of a StrategyConfig's fields, inherited ones included."""
    notes: dict[str, str] = {}
    for base in reversed(config.__mro__):  # a subclass's comment wins over its base's
        if isinstance(base, type) and hasattr(base, "model_fields") and base.__module__.startswith("ponder."):
            notes.update(_comments(base))
    rows = ["| field | type | default | bounds | notes |", "|---|---|---|---|---|"]
    for name, info in config.model_fields.items():
        rows.append(f"| `{name}` | {_cell(_type(info.annotation))} | {_cell(_default(info))} | {_bounds(info.metadata)} | {_cell(notes.get(name, ''))} |")
    if notes.get(""):
        rows.append(f"\n{notes['']}.")
    return rows


def _paper(cls: type) -> str:
    """The opening paragraph of the strategy's module docstring: what it is and where from."""
    doc = inspect.getdoc(sys.modules[cls.__module__]) or ""
    return " ".join(doc.split("\n\n")[0].split())


def reference() -> str:
    """The generated part of the page: a table of every built-in strategy, then one section each."""
    names = sorted(BUILT_IN)
    out = ["## Reference", "", "| strategy | what | needs a scorer |", "|---|---|---|"]
    for name in names:
        cls = strategy_class(name)
        first = _first_sentence(_paper(cls))
        out.append(f"| [`{name}`](#{name}) | {_cell(first)} | {'yes' if cls.needs_scorer else 'no'} |")
    for name in names:
        cls = strategy_class(name)
        out += ["", f"### {name}", "", _paper(cls), "",
                f"Class `{cls.__module__}.{cls.__qualname__}`; needs a step scorer: {'yes' if cls.needs_scorer else 'no'}.", ""]
        out += fields_table(cls.Config)
    return "\n".join(out) + "\n"


def below(path: Path, marker: str, current: str, generated: str) -> str:
    """`current` (the text of the page at `path`) with everything after `marker` replaced by
    `generated`: a page's hand-written part above, its generated reference below."""
    head, sep, _ = current.partition(marker)
    if not sep:
        raise ValueError(f"{path}: no line {marker!r} to write below")
    return f"{head}{marker}\n\n{generated}"


def page(current: str) -> str:
    """`current` with everything after MARKER replaced by `reference()`."""
    return below(PAGE, MARKER, current, reference())


def main() -> None:
    PAGE.write_text(page(PAGE.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"wrote {PAGE}")


if __name__ == "__main__":
    main()
