"""An aiohttp client for OpenAI-compatible servers (vLLM, SGLang, llama.cpp server).

Prompts go out as token ids (`prompt: [ids]`), never text, and vLLM's `return_token_ids`
brings the sampled ids back, so continuations stay token-exact. With several endpoints, a
new prompt picks its server by rendezvous hashing (prompts spread out), and every request whose
ids extend a prefix already sent (a continuation, a beam, another sample) goes where that
prefix went, so it reuses the KV cache there; when a server fails, its requests move to the
next server in their own order and the prefix follows them. Retries, endpoint cool-off and
Retry-After live in endpoints.py; a stream is retried only before its first token. Leaving a
stream early closes the connection, which makes vLLM abort the request.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import OrderedDict
from typing import Any, AsyncIterator, Sequence

from pydantic import BaseModel, ConfigDict, Field

from .base import BackendStats, Completion, Delta, Sampling, Usage, each_sample, finish_reason
from .endpoints import RETRY_STATUS, Attempts, BackendError, Health, RetryPolicy
from .meter import Meter
from .sessions import Sessions
from .tokenizer import HFTokenizer

__all__ = ["BackendError", "OpenAIBackend", "OpenAIConfig", "RETRY_STATUS"]


class OpenAIConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    endpoints: list[str] = Field(min_length=1)  # base URLs ending in /v1
    model: str = "smollm2-135m-instruct"  # for the local tokenizer (name, folder or hub id)
    served_model: str | None = None  # the server's model id; default: the first of GET /models
    api_key: str | None = None
    timeout_s: float = Field(600, gt=0)  # a whole request; a stream: the longest wait between two chunks
    connect_timeout_s: float = Field(10, gt=0)
    retries: int = Field(4, ge=0)
    backoff_s: float = Field(0.5, ge=0)
    cooloff_s: float = Field(30, ge=0)  # a failed endpoint is tried last for this long
    retry_after_max_s: float = Field(60, ge=0)  # longest Retry-After honoured
    # A server that returns no token ids (no `return_token_ids` support) breaks token-exact
    # continuation; re-encoding its text is only done when asked for here.
    retokenize_missing_ids: bool = False
    affinity_block: int = Field(32, ge=1)  # prefixes are remembered in blocks of this many ids
    affinity_entries: int = Field(200_000, ge=1)
    max_connections: int = Field(256, ge=1)


# transient failures: the request may be tried again (a stream only before its first token)
def _transient() -> tuple[type[BaseException], ...]:
    import aiohttp

    return (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, asyncio.TimeoutError)


class OpenAIBackend:
    def __init__(self, config: OpenAIConfig | None = None, **options: Any) -> None:
        from .models import resolve

        self.config = config or OpenAIConfig(**options)
        cfg = self.config
        self.endpoints = [e.rstrip("/") for e in cfg.endpoints]
        self._tokenizer = HFTokenizer.load(resolve(cfg.model))
        self._meter = Meter()
        self.sent: dict[str, int] = {e: 0 for e in self.endpoints}  # requests per endpoint
        self.retried = 0
        self._health = Health(RetryPolicy(cfg.retries, cfg.backoff_s, cfg.cooloff_s, cfg.retry_after_max_s))
        self._sessions = Sessions(self._new_session)
        self._served: str | None = cfg.served_model
        self._affinity: OrderedDict[bytes, str] = OrderedDict()  # block-prefix digest -> endpoint

    # -- plumbing ------------------------------------------------------------------------------
    @property
    def tokenizer(self) -> HFTokenizer:
        return self._tokenizer

    def stats(self) -> BackendStats:
        return self._meter.stats

    def _new_session(self) -> Any:
        import aiohttp

        headers = {"Authorization": f"Bearer {self.config.api_key}"} if self.config.api_key else {}
        timeout = aiohttp.ClientTimeout(total=self.config.timeout_s, connect=self.config.connect_timeout_s)
        return aiohttp.ClientSession(headers=headers, timeout=timeout, connector=aiohttp.TCPConnector(limit=self.config.max_connections))

    def _stream_timeout(self) -> Any:
        """A stream may run for as long as it generates (a long chain of thought): no total
        limit, only on connecting and on the wait for each next chunk."""
        import aiohttp

        return aiohttp.ClientTimeout(total=None, connect=self.config.connect_timeout_s, sock_read=self.config.timeout_s)

    def _session(self) -> Any:
        return self._sessions.get()

    async def close(self) -> None:
        await self._sessions.close()

    def _block_keys(self, ids: Sequence[int]) -> list[bytes]:
        """A digest of every whole-block prefix of `ids`, shortest first (one pass)."""
        b, h, keys = self.config.affinity_block, hashlib.blake2b(digest_size=16), []
        for end in range(b, len(ids) + 1, b):
            h.update(json.dumps(list(ids[end - b : end])).encode())
            keys.append(h.digest())
        return keys

    def route(self, ids: Sequence[int]) -> list[str]:
        """Endpoints in preference order: where the longest known prefix of `ids` went, then
        the rendezvous order of the whole prompt."""
        whole = json.dumps(list(ids)).encode()
        order = sorted(self.endpoints, key=lambda e: hashlib.blake2b(whole + e.encode(), digest_size=8).digest(), reverse=True)
        for key in reversed(self._block_keys(ids)):
            sticky = self._affinity.get(key)
            if sticky is not None:
                return [sticky] + [e for e in order if e != sticky]
        return order

    def _remember(self, ids: Sequence[int], endpoint: str) -> None:
        for key in self._block_keys(ids):
            self._affinity[key] = endpoint
            self._affinity.move_to_end(key)
        while len(self._affinity) > self.config.affinity_entries:
            self._affinity.popitem(last=False)

    async def _served_model(self) -> str:
        if self._served is None:
            last: Exception | None = None
            for endpoint in self.endpoints:
                try:
                    async with self._session().get(f"{endpoint}/models") as r:
                        r.raise_for_status()
                        self._served = (await r.json())["data"][0]["id"]
                        break
                except Exception as e:
                    last = e
            if self._served is None:
                raise BackendError(f"no endpoint answered GET /models ({', '.join(self.endpoints)}): {type(last).__name__}: {last}")
        return self._served

    def _attempts(self, ids: Sequence[int], what: str) -> Attempts:
        return Attempts(self.route(ids), self._health, what, self._count_retry)

    def _count_retry(self) -> None:
        self.retried += 1

    @staticmethod
    async def _refused(attempts: Attempts, endpoint: str, response: Any) -> None:
        """A non-200 answer: retried later if transient, else a BackendError now."""
        text = (await response.text())[:200].replace("\n", " ")
        if response.status not in RETRY_STATUS:
            raise BackendError(f"{endpoint}: HTTP {response.status}: {text}")
        attempts.failed(endpoint, f"HTTP {response.status}", response.headers.get("Retry-After"))

    async def _post(self, ids: Sequence[int], body: dict[str, Any]) -> tuple[dict[str, Any], str]:
        """POST /completions with retries: (the answer, the endpoint that gave it)."""
        body = {"model": await self._served_model(), "prompt": list(ids), **body}
        attempts = self._attempts(ids, "request")
        async for endpoint in attempts:
            try:
                self.sent[endpoint] += 1
                async with self._session().post(f"{endpoint}/completions", json=body) as r:
                    if r.status == 200:
                        data = await r.json()  # a broken body raises ClientPayloadError: retried
                        attempts.succeeded(endpoint)
                        self._remember(ids, endpoint)
                        return data, endpoint
                    await self._refused(attempts, endpoint, r)
            except _transient() as e:
                attempts.failed(endpoint, type(e).__name__)
        raise attempts.exhausted()

    def _ids(self, choice: dict[str, Any], endpoint: str) -> tuple[int, ...]:
        ids = choice.get("token_ids")
        if ids is not None:
            return tuple(ids)
        if not self.config.retokenize_missing_ids:
            raise BackendError(
                f"{endpoint} returned no token ids (it needs vLLM's return_token_ids); "
                "set retokenize_missing_ids to accept re-encoded text, which is not token-exact"
            )
        return tuple(self._tokenizer.encode(choice.get("text", "")))

    @staticmethod
    def _sampling_body(s: Sampling) -> dict[str, Any]:
        return {
            "n": s.n, "temperature": s.temperature, "top_p": s.top_p, "max_tokens": s.max_tokens,
            "stop": list(s.stop) or None, "seed": s.seed, "logprobs": s.logprobs,
            "include_stop_str_in_output": True, "skip_special_tokens": True, "return_token_ids": True,
        }

    # -- contract --------------------------------------------------------------------------------
    async def generate(self, prompt_ids: Sequence[int], sampling: Sampling) -> list[Completion]:
        return await each_sample(sampling, lambda one: self._sample(prompt_ids, one))

    async def _sample(self, prompt_ids: Sequence[int], sampling: Sampling) -> Completion:
        data, endpoint = await self._post(prompt_ids, self._sampling_body(sampling))
        (ch,) = data["choices"]
        ids = self._ids(ch, endpoint)
        chosen, tops = _logprobs(ch.get("logprobs"))
        reason, hit = finish_reason(ch.get("finish_reason"), ch.get("stop_reason"))
        usage = Usage(len(prompt_ids), _cached(data.get("usage")), len(ids))
        self._meter.record(usage)
        return Completion(ids, ch["text"], reason, hit, chosen, tops, usage)

    async def stream(self, prompt_ids: Sequence[int], sampling: Sampling) -> AsyncIterator[Delta]:
        if sampling.n != 1:
            raise ValueError(f"stream needs Sampling.n == 1, got {sampling.n}")
        body = {
            "model": await self._served_model(), "prompt": list(prompt_ids), **self._sampling_body(sampling),
            "stream": True, "stream_options": {"include_usage": True},
        }
        attempts = self._attempts(prompt_ids, "stream")
        state = {"generated": 0, "finished": False, "answered": False}
        try:
            async for endpoint in attempts:
                try:
                    self.sent[endpoint] += 1
                    async with self._session().post(f"{endpoint}/completions", json=body, timeout=self._stream_timeout()) as r:
                        if r.status == 200:
                            attempts.succeeded(endpoint)
                            self._remember(prompt_ids, endpoint)
                            state["answered"] = True  # the server took the request: a cut from here on is an abort
                            async for delta in self._read_stream(r, endpoint, len(prompt_ids), state):
                                yield delta
                            return
                        await self._refused(attempts, endpoint, r)
                except _transient() as e:
                    if state["generated"]:  # tokens were already handed out: no silent restart
                        raise BackendError(f"{endpoint}: stream broke after {state['generated']} tokens ({type(e).__name__})") from None
                    attempts.failed(endpoint, type(e).__name__)
            raise attempts.exhausted()
        finally:
            if not state["finished"] and state["answered"]:
                # vLLM reports cached prompt tokens only in the closing usage chunk
                self._meter.record(Usage(len(prompt_ids), 0, state["generated"]), aborted=True)

    async def _read_stream(self, response: Any, endpoint: str, prompt_len: int, state: dict[str, Any]) -> AsyncIterator[Delta]:
        """Server-sent events to Deltas; the finishing chunk is held back until the usage chunk
        that follows it, so the last Delta carries finish reason and usage together."""
        last: Delta | None = None
        cached = 0
        async for raw in response.content:
            line = raw.decode().strip()
            if not line.startswith("data:") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[5:])
            for ch in chunk.get("choices") or []:
                ids = self._ids(ch, endpoint)
                state["generated"] += len(ids)
                chosen, tops = _logprobs(ch.get("logprobs"))
                if ch.get("finish_reason"):
                    reason, hit = finish_reason(ch["finish_reason"], ch.get("stop_reason"))
                    last = Delta(ids, ch.get("text", ""), reason, hit, chosen, tops)
                else:
                    yield Delta(ids, ch.get("text", ""), None, None, chosen, tops)
            if chunk.get("usage"):
                cached = _cached(chunk["usage"])
        if last is None:
            raise BackendError(f"{endpoint}: stream ended without a finish reason")
        usage = Usage(prompt_len, cached, state["generated"])
        state["finished"] = True
        self._meter.record(usage)
        yield Delta(last.token_ids, last.text, last.finish_reason, last.stop_string, last.token_logprobs, last.top_logprobs, usage)

    async def prompt_logprobs(self, ids: Sequence[int], positions: Sequence[int]) -> list[float]:
        for p in positions:
            if not 1 <= p < len(ids):
                raise ValueError(f"prompt_logprobs position {p} outside 1..{len(ids) - 1}")
        data, _ = await self._post(ids, {"max_tokens": 1, "temperature": 0.0, "prompt_logprobs": 0})
        table = data["choices"][0]["prompt_logprobs"]
        self._meter.record(Usage(len(ids), _cached(data.get("usage")), 1))
        return [float(_entry(table[p], ids[p])) for p in positions]

    async def next_token_logprobs(self, ids: Sequence[int], candidates: Sequence[int]) -> list[float]:
        async def one(token: int) -> float:
            data, _ = await self._post(ids, {"max_tokens": 1, "temperature": 0.0, "logprobs": 0, "allowed_token_ids": [token]})
            self._meter.record(Usage(len(ids), _cached(data.get("usage")), 1))
            return float(data["choices"][0]["logprobs"]["token_logprobs"][0])

        first = await one(candidates[0])  # the server caches the prefix for the others
        return [first] + list(await asyncio.gather(*(one(t) for t in candidates[1:])))


def _cached(usage: dict[str, Any] | None) -> int:
    """Prompt tokens served from the server's prefix cache (vLLM reports them with
    --enable-prompt-tokens-details; 0 when the server does not say)."""
    return ((usage or {}).get("prompt_tokens_details") or {}).get("cached_tokens") or 0


def _entry(row: dict[str, Any], token: int) -> float:
    value = row.get(str(token), row.get(token))  # type: ignore[call-overload]
    return value["logprob"] if isinstance(value, dict) else value


def _logprobs(lp: dict[str, Any] | None) -> tuple[tuple[float, ...] | None, tuple[tuple[float, ...], ...] | None]:
    if not lp or lp.get("token_logprobs") is None:
        return None, None
    chosen = tuple(float(x) for x in lp["token_logprobs"])
    tops = tuple(tuple(sorted((float(v) for v in (t or {}).values()), reverse=True)) for t in lp.get("top_logprobs") or [])
    return chosen, tops or None
