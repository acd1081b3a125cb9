"""The event stream of one solve: the emitter that hands the runtime's events to the caller in
order. The events come from the problem's trace (records/trace/observed.py) and from the
solve's end ("done", with the Result)."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any, Awaitable, Callable

from ..records.event import Event, EventKind
from ..records.ledger_summary import LedgerSummary
from ..records.result import Result
from ..records.trace import Node

OnEvent = Callable[[Event], Awaitable[None] | None]


class Emitter:
    """Calls `on_event` for each event, in order; an async callback's calls are chained so
    the caller sees events in the order they happened. Emits nothing after "done"."""

    def __init__(self, problem_id: str, on_event: OnEvent | None = None) -> None:
        self.problem_id = problem_id
        self._on_event = on_event
        self._tail: asyncio.Future | None = None
        self._closed = False

    @property
    def active(self) -> bool:
        return self._on_event is not None and not self._closed

    def emit(self, kind: EventKind, node: Node | None = None, score: float | None = None,
             ledger: LedgerSummary | None = None, result: Result | None = None) -> None:
        if not self.active:
            return
        event = Event(
            kind, self.problem_id, node.id if node else None, node.parent if node else None,
            node.step if node else "", score, node.finish if node else None, ledger or LedgerSummary(), result,
        )
        out = self._on_event(event)  # type: ignore[misc]
        if inspect.isawaitable(out):
            self._tail = asyncio.ensure_future(_after(self._tail, out))

    async def done(self, result: Result) -> None:
        self.emit("done", score=None, ledger=result.ledger, result=result)
        self._closed = True

    async def close(self) -> None:
        """Wait until an async callback has seen every event (its error, if any, is raised)."""
        self._closed = True
        if self._tail is not None:
            tail, self._tail = self._tail, None
            await tail


async def _after(previous: asyncio.Future | None, call: Awaitable[Any]) -> None:
    if previous is not None:
        await previous
    await call
