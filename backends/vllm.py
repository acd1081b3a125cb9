"""The in-process vLLM backend: AsyncLLM with prefix caching, on its own loop thread.

Every request sends token ids (`TokensPrompt`), never text, so continuations are token-exact
and hit the prefix cache on every full block. Stop strings are kept in the output so a
trajectory's ids are exactly what the model produced.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from typing import Any, AsyncIterator, Sequence

from .base import BackendStats, Completion, Delta, Sampling, Usage, each_sample, finish_reason
from .engine_config import EngineConfig, engine_setup
from .loop import LoopThread
from .meter import Meter
from .models import ModelError, resolve
from .tokenizer import HFTokenizer

_END = object()

__all__ = ["EngineConfig", "VllmBackend"]


class VllmBackend:
    def __init__(self, config: EngineConfig | None = None, **overrides: Any) -> None:
        config = config or EngineConfig()
        # model_copy(update=...) skips validation; rebuilding from the merged fields does not
        self.config = EngineConfig.model_validate({**config.model_dump(), **overrides}) if overrides else config
        self.model_path = resolve(self.config.model)
        self._ids = itertools.count()
        self._meter = Meter()
        self._thread = LoopThread(f"vllm-{self.model_path.name}")
        try:
            self._engine, tok = self._thread.call(self._start())
        except Exception as e:
            self._thread.stop()
            raise ModelError(f"vLLM could not start model {self.model_path}: {type(e).__name__}: {_first_line(e)}") from e
        self._tokenizer = tok

    # -- lifecycle ---------------------------------------------------------------------
    async def _start(self) -> tuple[Any, Any]:
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")  # read once, at vLLM's import
        from vllm.v1.engine.async_llm import AsyncLLM

        with engine_setup(self.config, self.model_path) as vllm_config:
            engine = AsyncLLM.from_vllm_config(vllm_config, disable_log_stats=not self.config.log_stats)
        return engine, HFTokenizer.load(self.model_path)

    async def close(self) -> None:
        engine, self._engine = getattr(self, "_engine", None), None
        if engine is not None:
            # Stop the output handler (and any request still running) on the engine's loop
            # before the engine core goes: a handler still reading would see the core's exit
            # as EngineDeadError and log a traceback on every normal shutdown.
            await self._thread.run(_quiesce(engine))
            engine.shutdown()
            # AsyncLLM.__del__ shuts down again; by interpreter exit its module globals may be gone.
            engine.shutdown = lambda *args, **kwargs: None
        self._thread.stop()

    # -- contract -------------------------------------------------------------------------
    @property
    def tokenizer(self) -> HFTokenizer:
        return self._tokenizer

    def stats(self) -> BackendStats:
        return self._meter.stats

    @property
    def engine(self) -> Any:
        """The underlying AsyncLLM; await its coroutines through `run_on_engine`."""
        return self._engine

    async def run_on_engine(self, coro: Any) -> Any:
        return await self._thread.run(coro)

    def unfinished_requests(self) -> int:
        """Requests the engine still holds (0 once every stream ended or was aborted)."""
        return self._engine.output_processor.get_num_unfinished_requests()

    def _params(self, s: Sampling, kind: str, **extra: Any) -> Any:
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        return SamplingParams(
            n=s.n, temperature=s.temperature, top_p=s.top_p, max_tokens=s.max_tokens,
            stop=list(s.stop) or None, seed=s.seed, logprobs=s.logprobs,
            include_stop_str_in_output=True, skip_special_tokens=True,
            output_kind=getattr(RequestOutputKind, kind), **extra,
        )

    async def generate(self, prompt_ids: Sequence[int], sampling: Sampling) -> list[Completion]:
        return await self._thread.run(self._generate(list(prompt_ids), sampling))

    async def _generate(self, ids: list[int], sampling: Sampling) -> list[Completion]:
        return await each_sample(sampling, lambda one: self._sample(ids, one))

    async def _sample(self, ids: list[int], sampling: Sampling) -> Completion:
        from vllm.inputs import TokensPrompt

        # deltas, not the final output alone: a request cut short is recorded with the tokens it
        # had generated, as the engine's own counters count them
        final, cached = None, 0
        token_ids: list[int] = []
        texts: list[str] = []
        logprobs: list[Any] | None = [] if sampling.logprobs is not None else None
        try:
            async for out in self._engine.generate(TokensPrompt(prompt_token_ids=ids), self._params(sampling, "DELTA"), f"g{next(self._ids)}"):
                (o,) = out.outputs
                token_ids += o.token_ids
                texts.append(o.text)
                if logprobs is not None and o.logprobs is not None:
                    logprobs += o.logprobs
                cached = out.num_cached_tokens or cached
                final = out
        except asyncio.CancelledError:
            self._meter.record(Usage(len(ids), cached, len(token_ids)), aborted=True)  # AsyncLLM aborts it in the engine
            raise
        if final is None or not final.finished:
            raise RuntimeError("vLLM returned no final output")
        o = final.outputs[0]
        usage = Usage(len(ids), cached, len(token_ids))
        self._meter.record(usage)
        chosen, tops = _logprobs(token_ids, logprobs)
        reason, hit = finish_reason(o.finish_reason, o.stop_reason)
        return Completion(tuple(token_ids), "".join(texts), reason, hit, chosen, tops, usage)

    async def stream(self, prompt_ids: Sequence[int], sampling: Sampling) -> AsyncIterator[Delta]:
        if sampling.n != 1:
            raise ValueError(f"stream needs Sampling.n == 1, got {sampling.n}")
        caller = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        put = lambda item: caller.call_soon_threadsafe(queue.put_nowait, item)  # noqa: E731
        job = self._thread.submit(self._pump(list(prompt_ids), sampling, put))
        done = False
        try:
            while True:
                item = await queue.get()
                if item is _END:
                    done = True
                    return
                if isinstance(item, BaseException):
                    done = True
                    raise item
                yield item
        finally:
            if not done:
                # cancels the pump on the engine loop (AsyncLLM aborts the request) and waits until
                # it has recorded what the request generated
                await self._thread.cancel(job)

    async def _pump(self, ids: list[int], sampling: Sampling, put: Any) -> None:
        from vllm.inputs import TokensPrompt

        generated, cached, finished = 0, 0, False
        try:
            async for out in self._engine.generate(TokensPrompt(prompt_token_ids=ids), self._params(sampling, "DELTA"), f"s{next(self._ids)}"):
                o = out.outputs[0]
                first = generated == 0
                generated += len(o.token_ids)
                cached = out.num_cached_tokens or cached  # known from the first output on
                chosen, tops = _logprobs(o.token_ids, o.logprobs)
                if out.finished:
                    finished = True
                    reason, hit = finish_reason(o.finish_reason, o.stop_reason)
                    usage = Usage(len(ids), cached, generated)
                    self._meter.record(usage, aborted=reason == "abort")
                    put(Delta(tuple(o.token_ids), o.text, reason, hit, chosen, tops, usage, cached if first else None))
                else:
                    put(Delta(tuple(o.token_ids), o.text, None, None, chosen, tops, cached_tokens=cached if first else None))
            put(_END)
        except asyncio.CancelledError:
            if not finished:
                self._meter.record(Usage(len(ids), cached, generated), aborted=True)
            raise
        except BaseException as e:  # surface engine errors to the consumer
            put(e)

    async def prompt_logprobs(self, ids: Sequence[int], positions: Sequence[int]) -> list[float]:
        for p in positions:
            if not 1 <= p < len(ids):
                raise ValueError(f"prompt_logprobs position {p} outside 1..{len(ids) - 1}")
        return await self._thread.run(self._prompt_logprobs(list(ids), list(positions)))

    async def _prompt_logprobs(self, ids: list[int], positions: list[int]) -> list[float]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt
        from vllm.sampling_params import RequestOutputKind

        params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0, output_kind=RequestOutputKind.FINAL_ONLY)
        final = None
        async for out in self._engine.generate(TokensPrompt(prompt_token_ids=ids), params, f"p{next(self._ids)}"):
            final = out
        self._meter.record(Usage(len(ids), final.num_cached_tokens or 0, 1))
        table = final.prompt_logprobs
        return [float(table[p][ids[p]].logprob) for p in positions]


    async def next_token_logprobs(self, ids: Sequence[int], candidates: Sequence[int]) -> list[float]:
        return await self._thread.run(self._next_token_logprobs(list(ids), list(candidates)))

    async def _next_token_logprobs(self, ids: list[int], candidates: list[int]) -> list[float]:
        # One 1-token request per candidate, restricted to that token: the returned logprob is
        # the raw one (before the restriction), and every request after the first reads the
        # prefix from the cache. Top-k prompt logprobs would miss candidates outside the top k.
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt
        from vllm.sampling_params import RequestOutputKind

        async def one(token: int) -> float:
            params = SamplingParams(max_tokens=1, temperature=0.0, logprobs=0, allowed_token_ids=[token], output_kind=RequestOutputKind.FINAL_ONLY)
            final = None
            async for out in self._engine.generate(TokensPrompt(prompt_token_ids=ids), params, f"n{next(self._ids)}"):
                final = out
            self._meter.record(Usage(len(ids), final.num_cached_tokens or 0, 1))
            return float(final.outputs[0].logprobs[0][token].logprob)

        first = await one(candidates[0])  # fills the cache for the others
        return [first] + list(await asyncio.gather(*(one(t) for t in candidates[1:])))


def _logprobs(token_ids: Sequence[int], logprobs: Any) -> tuple[tuple[float, ...] | None, tuple[tuple[float, ...], ...] | None]:
    if logprobs is None:
        return None, None
    chosen, tops = [], []
    for tid, table in zip(token_ids, logprobs):
        chosen.append(float(table[tid].logprob))
        tops.append(tuple(sorted((float(v.logprob) for v in table.values()), reverse=True)))
    return tuple(chosen), tuple(tops)


async def _quiesce(engine: Any) -> None:
    """Cancel every task on the engine's loop but this one: the output handler and requests
    still in flight (their callers see CancelledError), and wait for them to end."""
    me = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not me and not t.done()]
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _first_line(e: BaseException) -> str:
    return str(e).splitlines()[0] if str(e) else ""
