"""A policy's last hidden state at every token, from vLLM's pooling runner.

The backbone is loaded as an embedding model (`runner="pooling", convert="embed"`) and asked for
the `token_embed` task without its normalisation: each request returns one row per prompt
token, the final-norm hidden state the language model head would read. One request per
trajectory gives the state at the end of every step prefix. In-process the offline `LLM`
runs on a worker thread of its own; over HTTP the same token ids go to a pooling server's
/pooling endpoint (`vllm serve MODEL --runner pooling --convert embed --pooler-config
'{"task": "token_embed"}'`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import Any, Sequence

from ..backends.base import Usage
from .base import report_usage


class HiddenStates:
    def __init__(
        self, model: str | None = None, endpoint: str | None = None, served_model: str | None = None,
        max_model_len: int = 2048, kv_cache_gib: float = 1.0, timeout_s: float = 120, log_stats: bool = False,
    ) -> None:
        if (model is None) == (endpoint is None):
            raise ValueError("hidden states: give exactly one of model (in-process) or endpoint (HTTP)")
        self.model, self.endpoint, self.served_model, self.timeout_s = model, endpoint, served_model, timeout_s
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._llm: Any = None
        self.served_requests = 0  # requests the in-process engine answered, and their prompt tokens
        self.served_tokens = 0
        self._waiting: list[tuple[list[Sequence[int]], asyncio.Future[list[Any]]]] = []
        self._busy = False
        if model is not None:
            self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="value-states")
            self._llm = self._pool.submit(self._start, model, max_model_len, kv_cache_gib, log_stats).result()

    @staticmethod
    def _start(model: str, max_model_len: int, kv_cache_gib: float, log_stats: bool) -> Any:
        from ..backends.engine_config import EngineConfig, engine_args, engine_env, scoped_env
        from ..backends.models import resolve

        path = resolve(model)
        from vllm import LLM
        from vllm.config import PoolerConfig
        from vllm.platforms import current_platform

        cfg = EngineConfig(model=model, max_model_len=max_model_len, kv_cache_gib=kv_cache_gib, log_stats=log_stats)
        # every token's state is computed: nothing to read from a prefix cache
        args = {**engine_args(cfg, path, current_platform.is_cpu()), "enable_prefix_caching": False}
        with scoped_env(engine_env(cfg, path)):
            try:
                return LLM(runner="pooling", convert="embed", pooler_config=PoolerConfig(task="token_embed"), **args)
            except Exception as e:  # vLLM raises many kinds for a model it cannot pool
                lines = str(e).strip().splitlines()
                raise ValueError(f"the pooling runner cannot load {model!r}: {type(e).__name__}: {lines[-1] if lines else ''}") from None

    def read(self, prompts: Sequence[Sequence[int]]) -> list[Any]:
        """Each prompt's hidden states, a float tensor [tokens, hidden] (blocking; in-process)."""
        from vllm import PoolingParams
        from vllm.inputs import TokensPrompt

        if self._llm is None:
            raise RuntimeError("hidden states: read() needs the in-process engine")
        outs = self._pool.submit(  # type: ignore[union-attr]
            self._llm.encode, [TokensPrompt(prompt_token_ids=list(p)) for p in prompts],
            pooling_params=PoolingParams(use_activation=False), pooling_task="token_embed", use_tqdm=False,
        ).result()
        for o in outs:  # what the engine says it computed, beside what the meter was told
            self.served_requests += 1
            self.served_tokens += len(o.prompt_token_ids or ())
        return [o.outputs.data for o in outs]

    async def states(self, prompts: Sequence[Sequence[int]]) -> list[Any]:
        """As `read`, awaitable; each engine request is reported to the verifier meter. Calls
        that arrive while the engine is busy go to it together, as one batch."""
        if not prompts:
            return []
        if self._llm is None:
            return await self._remote(prompts)
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._waiting.append((list(prompts), future))
        if not self._busy:
            self._busy = True
            asyncio.get_running_loop().create_task(self._drain())
        rows = await future
        for p in prompts:  # reported here, in the caller's context, where its meter is
            report_usage(Usage(len(p), 0, 0))
        return rows

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                try:
                    rows = await loop.run_in_executor(None, self.read, [p for prompts, _ in batch for p in prompts])
                except Exception as e:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(e)
                    continue
                at = 0
                for prompts, future in batch:
                    if not future.done():
                        future.set_result(rows[at: at + len(prompts)])
                    at += len(prompts)
        finally:
            self._busy = False

    async def _remote(self, prompts: Sequence[Sequence[int]]) -> list[Any]:
        import aiohttp
        import torch

        base = self.endpoint.rstrip("/").removesuffix("/v1")  # type: ignore[union-attr]
        body: dict[str, Any] = {"input": [list(p) for p in prompts], "task": "token_embed", "use_activation": False}
        if self.served_model:
            body["model"] = self.served_model
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_s)) as s:
            async with s.post(f"{base}/pooling", json=body) as r:
                if r.status != 200:
                    raise RuntimeError(f"{base}/pooling: HTTP {r.status}: {(await r.text())[:200]}")
                data = await r.json()
        usage = data.get("usage") or {}
        report_usage(Usage(usage.get("prompt_tokens", 0), 0, 0), requests=len(prompts))
        return [torch.tensor(d["data"]) for d in sorted(data["data"], key=lambda d: d["index"])]

    def close(self) -> None:
        if self._llm is not None:
            self._llm.llm_engine.engine_core.shutdown()
            self._llm = None
        if self._pool is not None:
            self._pool.shutdown(wait=False)
