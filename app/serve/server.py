"""`ponder serve`: OpenAI-compatible chat and text completions in front of any strategy.

The request's `model` names the strategy (`"beam_search"`, or `"ponder"` for the server's
default) and an extra body field `ponder` carries its config. The reply's `usage` counts every
token the strategy spent, not just the returned text; `ponder` in the reply adds the extracted
answers, the candidates and the full ledger. Streamed replies carry the strategy's progress in
a `ponder` field of their chunks and the answer's text as soon as it is known.

The server protects itself: an optional API key, caps on what one request may cause (generated
tokens of the policy and the scorer together, verifier calls, wall time), on requests running
at once (429 beyond it), a solve cancelled (its engine requests
aborted) when its client goes away, and every error a JSON body in OpenAI's shape.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import traceback
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ...backends.base import Backend
from ...strategies.base import STRATEGIES
from ...runtime.thinking import ThinkingConfig
from .api_job import ApiJob, Outcome
from .openai_api import ApiError, ApiRequest, Choice, chunk, error_body, new_id, parse_request, response
from .reasoning import EFFORTS, ReasoningDelta
from .sse import EventStream
from ..view.recent import Recent, view_authorized

ROUTES = ("POST /v1/chat/completions", "POST /v1/completions", "GET /v1/models", "GET /health", "GET /view")
log = logging.getLogger("ponder.serve")


class ServeConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    strategy: str = "best_of_n"  # for requests naming model "ponder"
    scorer: str | None = None  # step scorer for search strategies (default arithmetic)
    api_key: str | None = None  # required as `Authorization: Bearer KEY` when set
    max_tokens_per_request: int | None = Field(16384, ge=1)  # generated tokens, all samples and steps, the scorer's too
    max_verifier_calls_per_request: int | None = Field(4096, ge=1)  # step scores and judge questions, per solve
    max_seconds_per_request: float | None = Field(600, gt=0)  # wall time of a solve; then it answers with what it has
    max_concurrent: int = Field(8, ge=1)  # requests solving at once; more get 429
    keepalive_s: float = Field(5.0, gt=0)  # comment frames on a quiet stream
    thinking: ThinkingConfig | None = None  # the served model's thinking block: replies carry reasoning_content
    reasoning_efforts: dict[str, int] = Field(default_factory=lambda: dict(EFFORTS))  # reasoning_effort -> max_thinking_tokens
    view_requests: int = Field(20, ge=0)  # solved requests GET /view shows (0: none kept)


def json_error(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    from aiohttp import web

    return web.json_response(body, status=status, headers=headers)


def pieces(text: str) -> list[str]:
    """The answer in line-sized chunks (a chat UI renders them as they come)."""
    return text.splitlines(keepends=True) or [text]


class Server:
    def __init__(self, backend: Backend, config: ServeConfig) -> None:
        self.backend = backend
        self.config = config
        self.running = 0
        self._scorers: dict[str, Any] = {}
        self.recent = Recent(config.view_requests)

    # -- protection --------------------------------------------------------------------------
    def authorized(self, request: Any) -> bool:
        if self.config.api_key is None or request.path == "/health":
            return True
        given = request.headers.get("Authorization", "")
        if request.path == "/view":
            return view_authorized(given, self.config.api_key)
        return hmac.compare_digest(given.encode(), f"Bearer {self.config.api_key}".encode())

    def scorer(self, name: str | None, needs: bool) -> Any:
        from ...verifiers import make_scorer

        chosen = name or self.config.scorer or ("arithmetic" if needs else None)
        if chosen is None:
            return None
        if chosen not in self._scorers:
            try:
                self._scorers[chosen] = make_scorer(chosen, self.backend)
            except ValueError as e:
                raise ApiError(400, str(e), "scorer") from None
        return self._scorers[chosen]

    def job(self, request: ApiRequest) -> ApiJob:
        from ...strategies.base import strategy_class

        name = self.config.strategy if request.model == "ponder" else request.model
        try:
            needs = strategy_class(name).needs_scorer
        except ValueError as e:
            raise ApiError(400, f"{e}; or 'ponder' for the server's default ({self.config.strategy})", "model", code="model_not_found") from None
        cap = self.config.max_tokens_per_request
        if cap is not None and request.max_tokens is not None and request.max_tokens > cap:
            raise ApiError(400, f"max_tokens: {request.max_tokens} is over this server's cap of {cap} generated tokens per request", "max_tokens")
        return ApiJob(self.backend, request, name, self.scorer(request.scorer, needs), cap,
                      thinking=self.config.thinking, efforts=self.config.reasoning_efforts)

    # -- handlers ----------------------------------------------------------------------------
    async def completions(self, request: Any, chat: bool) -> Any:
        try:
            body = await request.json()
        except ValueError as e:
            raise ApiError(400, f"body: expected a JSON object ({e})") from None
        api = parse_request(body, chat, "ponder")
        job = self.job(api)
        if self.running >= self.config.max_concurrent:
            raise ApiError(429, f"server busy: {self.running} requests running (limit {self.config.max_concurrent}); retry later",
                           kind="rate_limit_error", code="rate_limit_exceeded")
        self.running += 1
        try:
            if api.stream:
                return await self.stream(request, job, chat)
            outcome = await self.solve(job)
            self.recent.add(job.problem.id, job.name, job.request.question, outcome)
            return json_ok(response(new_id(chat), chat, job.name, outcome.choices, outcome.ledger, outcome.extra))
        finally:
            self.running -= 1

    async def solve(self, job: ApiJob, emit: Any = None, first: Any = None) -> Outcome:
        job.limit(self.config.max_verifier_calls_per_request, self.config.max_seconds_per_request)
        try:
            return await job.run(emit, first)
        except Exception as e:
            # bad input the engine or a strategy refused; vLLM's validation errors are not ValueErrors
            if isinstance(e, ValueError) or type(e).__name__.endswith("ValidationError"):
                raise ApiError(400, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
            raise

    async def stream(self, request: Any, job: ApiJob, chat: bool) -> Any:
        rid, model = new_id(chat), job.name
        out = EventStream(request)
        queue: asyncio.Queue = asyncio.Queue()
        await out.open()
        task = asyncio.create_task(self.solve(job, queue.put_nowait, lambda c: queue.put_nowait(("first", c))))
        sent_first = live = False  # live: choice 0's thinking was streamed as it grew
        try:
            if chat:
                await out.send(chunk(rid, chat, model, 0, "", role=True))
            while True:
                item = await self.next_item(queue, task)
                if item is None:
                    if task.done():
                        break
                    await out.keepalive()
                    continue
                if isinstance(item, ReasoningDelta):
                    await out.send(chunk(rid, chat, model, 0, reasoning=item.text))
                    live = True
                elif isinstance(item, tuple):
                    await send_choice(out, rid, chat, model, 0, item[1], reasoning=not live)
                    sent_first = True
                else:
                    await out.send(chunk(rid, chat, model, 0, ponder=item))
            try:
                outcome = task.result()
            except Exception as e:  # headers are sent: the error goes down the stream, as OpenAI does
                await out.send(e.body() if isinstance(e, ApiError) else internal_error(e))
                await out.done()
                return out.response
            self.recent.add(job.problem.id, job.name, job.request.question, outcome)
            for i, choice in enumerate(outcome.choices):
                if i or not sent_first:
                    if chat and i:
                        await out.send(chunk(rid, chat, model, i, "", role=True))
                    await send_choice(out, rid, chat, model, i, choice)
                await out.send(chunk(rid, chat, model, i, finish=choice.finish_reason))
            if job.request.include_usage:
                await out.send(chunk(rid, chat, model, None, ledger=outcome.ledger, ponder=outcome.extra))
            await out.done()
            return out.response
        finally:
            if not task.done():  # the client went away (or writing to it failed): stop the solve
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    async def next_item(self, queue: asyncio.Queue, task: asyncio.Task) -> Any:
        """The next queued item; None once the solve ended with nothing left, or after
        `keepalive_s` of quiet."""
        if not queue.empty():
            return queue.get_nowait()
        if task.done():
            return None
        get = asyncio.ensure_future(queue.get())
        try:
            await asyncio.wait({get, task}, timeout=self.config.keepalive_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            get.cancel()
        if get.done() and not get.cancelled():
            return get.result()
        return queue.get_nowait() if not queue.empty() else None

    async def models(self, _: Any) -> Any:
        names = ["ponder", *sorted(STRATEGIES)]
        return json_ok({"object": "list", "data": [{"id": n, "object": "model", "created": 0, "owned_by": "ponder"} for n in names]})

    async def health(self, _: Any) -> Any:
        stats = self.backend.stats()
        engine: dict[str, Any] = {"requests": stats.requests, "aborted_requests": stats.aborted_requests}
        unfinished = getattr(self.backend, "unfinished_requests", None)
        if callable(unfinished):
            engine["unfinished_requests"] = unfinished()
        return json_ok({"status": "ok", "running": self.running, "engine": engine})

    async def view(self, _: Any) -> Any:
        from aiohttp import web

        return web.Response(text=self.recent.page(), content_type="text/html")


async def send_choice(out: EventStream, rid: str, chat: bool, model: str, index: int, choice: Choice, reasoning: bool = True) -> None:
    """A choice's text in pieces, its thinking (`reasoning_content`) before its answer."""
    if reasoning and choice.reasoning:
        for piece in pieces(choice.reasoning):
            await out.send(chunk(rid, chat, model, index, reasoning=piece))
    for piece in pieces(choice.text):
        await out.send(chunk(rid, chat, model, index, piece))


def internal_error(e: BaseException) -> dict[str, Any]:
    log.error("request failed:\n%s", "".join(traceback.format_exception(e)))
    first = str(e).splitlines()[0] if str(e) else ""
    return error_body(f"internal error: {type(e).__name__}: {first}", "server_error")


def json_ok(body: dict[str, Any]) -> Any:
    from aiohttp import web

    return web.json_response(body)


def make_app(backend: Backend, config: ServeConfig | None = None) -> Any:
    from aiohttp import web

    server = Server(backend, config or ServeConfig())

    @web.middleware
    async def guard(request: Any, handler: Any) -> Any:
        try:
            if not server.authorized(request):
                raise ApiError(401, "missing or wrong API key: send `Authorization: Bearer KEY`", code="invalid_api_key")
            return await handler(request)
        except ApiError as e:
            headers = {"Retry-After": "1"} if e.status == 429 else None
            if e.status == 401 and request.path == "/view":  # a browser asks for the key
                headers = {"WWW-Authenticate": 'Basic realm="ponder serve"'}
            return json_error(e.status, e.body(), headers)
        except web.HTTPException as e:
            if e.status == 404:
                return json_error(404, error_body(f"no route {request.method} {request.path}; supported: {', '.join(ROUTES)}", code="unknown_url"))
            if e.status == 405:
                return json_error(405, error_body(f"{request.method} not allowed on {request.path}; supported: {', '.join(ROUTES)}", code="method_not_allowed"))
            if e.status < 400:
                raise
            return json_error(e.status, error_body(e.reason or str(e)))
        except (asyncio.CancelledError, ConnectionError):
            raise
        except Exception as e:
            return json_error(500, internal_error(e))

    async def chat(request: Any) -> Any:
        return await server.completions(request, chat=True)

    async def text(request: Any) -> Any:
        return await server.completions(request, chat=False)

    app = web.Application(middlewares=[guard])
    app.add_routes([
        web.post("/v1/chat/completions", chat), web.post("/v1/completions", text),
        web.get("/v1/models", server.models), web.get("/health", server.health), web.get("/view", server.view),
    ])
    return app
