"""The live progress bar of a batch run: problems done, accuracy (with the 95% interval the
summary will carry), errors, tokens/s, cache hits."""

from __future__ import annotations

import time
from typing import Any, TextIO

from .stats import bootstrap_mean

LOG_WIDTH = 200  # columns of the bar's line when stderr is not a terminal


class Progress:
    """Counts every finished record; draws a rich bar on `stream` when enabled."""

    def __init__(self, total: int, done: int, enabled: bool = True, stream: TextIO | None = None) -> None:
        self.total, self.done, self.enabled, self.stream = total, done, enabled, stream
        self.correct = self.graded = self.errors = self.retries = 0
        self.started = time.monotonic()
        self._stats = ""
        self._interval: tuple[int, int, float] | None = None  # (correct, graded, when) it was drawn for

    def accuracy(self) -> str:
        """`acc 0.360 [0.180, 0.560]`, as the summary will say it. The bootstrap costs milliseconds per hundred problems and runs
        on the engine's event loop, so it is redrawn at most once a second and at the last problem."""
        if not self.graded:
            return "acc -"
        now, last = time.monotonic(), self._interval
        finished = self.done >= self.total
        if last is None or (last[:2] != (self.correct, self.graded) and (finished or now - last[2] >= 1.0)):
            iv = bootstrap_mean([True] * self.correct + [False] * (self.graded - self.correct))
            self._text = f"acc {iv}"
            self._interval = (self.correct, self.graded, now)
        return self._text

    def __enter__(self) -> "Progress":
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeElapsedColumn

            console = Console(file=self.stream, stderr=self.stream is None)
            if not console.is_terminal:
                # a log file or pipe has no width of its own; rich's 80 columns would cut the
                # counts and the interval to "3…"
                console = Console(file=self.stream, stderr=self.stream is None, width=LOG_WIDTH)
            self._bar = Bar(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                TextColumn("{task.fields[stats]}"), console=console,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task("solving", total=self.total, completed=self.done, stats="")
        return self

    def update(self, record: dict[str, Any], ledger: Any) -> None:
        self.done += 1
        self.errors += bool(record.get("error"))
        if record["correct"] is not None:
            self.graded += 1
            self.correct += bool(record["correct"])
        if not self.enabled:
            return
        rate = ledger.generated_tokens / max(time.monotonic() - self.started, 1e-6)
        hit = ledger.cached_tokens / ledger.prompt_tokens if ledger.prompt_tokens else 0.0
        acc = self.accuracy()
        errors = f" | {self.errors} errored" if self.errors else ""
        self._stats = f"{acc}{errors} | {rate:.0f} tok/s | cache hit {hit:.0%}"
        self._bar.update(self._task, advance=1, stats=self._stats + self._retried())

    def retry(self) -> None:
        """A problem went back to the queue (its Ray worker died under it)."""
        self.retries += 1
        if self.enabled:
            self._bar.update(self._task, stats=self._stats + self._retried())

    def _retried(self) -> str:
        return f" | {self.retries} retried" if self.retries else ""

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self._bar.__exit__(*exc)  # type: ignore[arg-type]
