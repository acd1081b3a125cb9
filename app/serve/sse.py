"""Server-Sent Events for streamed completions: `data: {json}` frames, comment frames that
keep a quiet connection alive (and find out early when the client has gone), `data: [DONE]`."""

from __future__ import annotations

import json
from typing import Any, Mapping


class EventStream:
    def __init__(self, request: Any) -> None:
        from aiohttp import web

        self.request = request
        self.response = web.StreamResponse(headers={
            "Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no",
        })

    async def open(self) -> None:
        await self.response.prepare(self.request)

    async def send(self, data: Mapping[str, Any]) -> None:
        await self.response.write(b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n")

    async def keepalive(self) -> None:
        await self.response.write(b": working\n\n")

    async def done(self) -> None:
        await self.response.write(b"data: [DONE]\n\n")
        await self.response.write_eof()
