"""`ponder serve`: an OpenAI-compatible chat-completions endpoint in front of any strategy.

The request's `model` names the strategy (`"beam_search"`, or `"ponder"` for the server's
default) and an extra body field `ponder` carries its config. The reply's `usage` counts every
token the strategy spent, not just the returned text; `ponder` in the reply adds the extracted
answer, the candidates and the full ledger. The question is the last user message; a system
message is kept.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from ..backends.base import Backend
from ..strategies.base import REGISTRY, make_strategy
from ..verifiers import make_scorer
from ..records.problem import Problem
from ..runtime.prompt import PromptConfig
from ..runtime.solver import Solver


def make_app(backend: Backend, default_strategy: str = "best_of_n", scorer: str | None = None) -> Any:
    from aiohttp import web

    scorers: dict[str, Any] = {}

    def error(status: int, message: str) -> Any:
        return web.json_response({"error": {"message": message, "type": "invalid_request_error"}}, status=status)

    async def chat(request: Any) -> Any:
        try:
            body = await request.json()
        except Exception:
            return error(400, "body: expected a JSON object")
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body["messages"]:
            return error(400, "messages: expected a non-empty list of {role, content}")
        name = body.get("model") or "ponder"
        name = default_strategy if name == "ponder" else name
        config = body.get("ponder") or {}
        if not isinstance(config, dict):
            return error(400, "ponder: expected an object of strategy fields")
        users = [m.get("content", "") for m in body["messages"] if isinstance(m, dict) and m.get("role") == "user"]
        systems = [m.get("content", "") for m in body["messages"] if isinstance(m, dict) and m.get("role") == "system"]
        if not users or not isinstance(users[-1], str) or not users[-1].strip():
            return error(400, "messages: no user message with text content")
        try:
            strategy = make_strategy(name, **config)
            chosen_scorer = body.get("scorer") or scorer or ("arithmetic" if strategy.needs_scorer else None)
            if chosen_scorer and chosen_scorer not in scorers:
                scorers[chosen_scorer] = make_scorer(chosen_scorer, backend)
            solver = Solver(
                backend, strategy, scorers.get(chosen_scorer) if chosen_scorer else None,
                PromptConfig(system=systems[-1] if systems else None, template="{question}"),
                seed=int(body.get("seed", 0) or 0),
            )
        except ValueError as e:
            return error(400, str(e))
        result = await solver.solve(Problem(id=uuid.uuid4().hex[:12], question=users[-1]))
        led = result.ledger
        return web.json_response({
            "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()), "model": name,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": result.text}, "finish_reason": "stop"}],
            "usage": {
                "prompt_tokens": led.prompt_tokens, "completion_tokens": led.generated_tokens,
                "total_tokens": led.prompt_tokens + led.generated_tokens,
                "prompt_tokens_details": {"cached_tokens": led.cached_tokens},
            },
            "ponder": {
                "answer": result.answer, "candidates": [c.answer for c in result.candidates],
                "ledger": led.as_dict(), "metrics": dict(result.metrics),
            },
        })

    async def models(_: Any) -> Any:
        names = ["ponder", *sorted(REGISTRY)]
        return web.json_response({"object": "list", "data": [{"id": n, "object": "model", "owned_by": "ponder"} for n in names]})

    async def health(_: Any) -> Any:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.add_routes([web.post("/v1/chat/completions", chat), web.get("/v1/models", models), web.get("/health", health)])
    return app
