"""The live progress bar of a batch run: problems done, accuracy, errors, tokens/s, cache hits."""

from __future__ import annotations

import time
from typing import Any, TextIO


class Progress:
    """Counts every finished record; draws a rich bar on `stream` when enabled."""

    def __init__(self, total: int, done: int, enabled: bool = True, stream: TextIO | None = None) -> None:
        self.total, self.done, self.enabled, self.stream = total, done, enabled, stream
        self.correct = self.graded = self.errors = 0
        self.started = time.monotonic()

    def __enter__(self) -> "Progress":
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeElapsedColumn

            self._bar = Bar(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                TextColumn("{task.fields[stats]}"), console=Console(file=self.stream, stderr=self.stream is None),
            )
            self._bar.__enter__()
            self._task = self._bar.add_task("solving", total=self.total, completed=self.done, stats="")
        return self

    def update(self, record: dict[str, Any], ledger: Any) -> None:
        self.errors += bool(record.get("error"))
        if record["correct"] is not None:
            self.graded += 1
            self.correct += bool(record["correct"])
        if not self.enabled:
            return
        rate = ledger.generated_tokens / max(time.monotonic() - self.started, 1e-6)
        hit = ledger.cached_tokens / ledger.prompt_tokens if ledger.prompt_tokens else 0.0
        acc = f"acc {self.correct / self.graded:.1%}" if self.graded else "acc -"
        errors = f" | {self.errors} errored" if self.errors else ""
        self._bar.update(self._task, advance=1, stats=f"{acc}{errors} | {rate:.0f} tok/s | cache hit {hit:.0%}")

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self._bar.__exit__(*exc)  # type: ignore[arg-type]
