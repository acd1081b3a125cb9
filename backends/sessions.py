"""aiohttp sessions, one per event loop: a session is bound to the loop it was made on."""

from __future__ import annotations

import asyncio
from typing import Any, Callable


class Sessions:
    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        # keyed by the loop itself, not id(loop): an id can be reused once a loop is gone
        self._by_loop: dict[asyncio.AbstractEventLoop, Any] = {}

    def get(self) -> Any:
        loop = asyncio.get_running_loop()
        for old in [lp for lp in self._by_loop if lp.is_closed()]:
            # a session of a finished loop cannot be used again; closing it needs no I/O
            asyncio.ensure_future(self._by_loop.pop(old).close())
        session = self._by_loop.get(loop)
        if session is None or session.closed:
            session = self._by_loop[loop] = self._factory()
        return session

    def __len__(self) -> int:
        return len(self._by_loop)

    async def close(self) -> None:
        """Close every session, whichever loop made it."""
        current = asyncio.get_running_loop()
        while self._by_loop:
            loop, session = self._by_loop.popitem()
            if loop is current or loop.is_closed() or not loop.is_running():
                await session.close()  # on a closed loop there is nothing left to wait for
            else:
                await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(session.close(), loop))
