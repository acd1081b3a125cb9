"""Structured concurrency inside one problem: work fanned out together ends together.

Every fan-out of a strategy (subtrees, beams, particles, drafts, scores of siblings) and of the
context itself goes through `together`, with TaskGroup semantics: the first failure cancels
the siblings and waits until they have ended, so their engine requests are aborted and
recorded in the problem's ledger before the error reaches the caller. Nothing of a failed
problem keeps running, and its ledger equals what the engine was asked for.
"""

from __future__ import annotations

import asyncio
from typing import Awaitable, Iterable, TypeVar

T = TypeVar("T")


async def together(runs: Iterable[Awaitable[T]]) -> list[T]:
    """The results of `runs`, awaited concurrently, in their order. When one raises (or the
    caller is cancelled) the others are cancelled and awaited before the error goes up."""
    tasks = [asyncio.ensure_future(r) for r in runs]
    if not tasks:
        return []
    try:
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        failed = next((t for t in tasks if t.done() and not t.cancelled() and t.exception() is not None), None)
        if failed is not None:
            raise failed.exception()  # type: ignore[misc]
        return [t.result() for t in tasks]
    finally:
        unfinished = [t for t in tasks if not t.done()]
        for t in unfinished:
            t.cancel()
        if unfinished:
            await asyncio.gather(*unfinished, return_exceptions=True)
        for t in tasks:  # a second failure among siblings is not left unretrieved
            if t.done() and not t.cancelled():
                t.exception()
