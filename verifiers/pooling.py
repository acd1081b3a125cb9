"""Classifier PRMs served by vLLM's pooling runner, in-process or over HTTP.

Step k's score is the probability of the `label` class for the question followed by the
first k steps. All prefixes of one trajectory go to the classifier as one batch. In-process,
an offline `LLM(runner="pooling", convert="classify")` runs on a worker thread of its own;
over HTTP the same texts go to a `vllm serve` pooling server's /classify endpoint.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
from typing import Any, Sequence

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..backends.base import Usage
from ..records.problem import Problem
from .base import report_usage


class PoolingPRMConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str | None = None  # in-process: embedded name or HF folder of a classifier
    endpoint: str | None = None  # HTTP: base URL of a pooling server
    served_model: str | None = None
    label: int = Field(1, ge=0)  # index of the "good step" class
    separator: str = "\n\n"
    max_model_len: int = Field(2048, ge=64)
    kv_cache_gib: int = Field(1, ge=1)
    timeout_s: float = Field(120, gt=0)
    seed: int = 0  # an untrained classifier head is drawn from this seed

    @model_validator(mode="after")
    def _one_source(self) -> "PoolingPRMConfig":
        if (self.model is None) == (self.endpoint is None):
            raise ValueError("pooling scorer: give exactly one of model (in-process) or endpoint (HTTP)")
        return self


class PoolingPRM:
    def __init__(self, config: PoolingPRMConfig | None = None, **options: Any) -> None:
        self.config = config or PoolingPRMConfig(**options)
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._llm: Any = None
        if self.config.model is not None:
            self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="pooling-prm")
            self._llm = self._pool.submit(self._start).result()

    def _start(self) -> Any:
        from ..backends.models import resolve

        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(self.config.kv_cache_gib))
        from vllm import LLM
        from vllm.platforms import current_platform

        return LLM(
            model=str(resolve(self.config.model)), runner="pooling", convert="classify", enforce_eager=True,
            dtype="float32" if current_platform.is_cpu() else "auto", max_model_len=self.config.max_model_len,
            seed=self.config.seed,
        )

    def texts(self, problem: Problem, steps: Sequence[str]) -> list[str]:
        sep = self.config.separator
        return [problem.question + sep + sep.join(s.strip() for s in steps[: k + 1]) for k in range(len(steps))]

    async def probabilities(self, problem: Problem, steps: Sequence[str]) -> list[list[float]]:
        """Every class's probability for each step prefix, in one batch."""
        if not steps:
            return []
        texts = self.texts(problem, steps)
        return await (self._local(texts) if self._llm is not None else self._remote(texts))

    async def score(self, problem: Problem, steps: Sequence[str]) -> list[float]:
        probs = await self.probabilities(problem, steps)
        label = self.config.label
        for p in probs:
            if label >= len(p):
                raise ValueError(f"pooling scorer: label {label} but the classifier has {len(p)} classes")
        return [float(p[label]) for p in probs]

    async def _local(self, texts: list[str]) -> list[list[float]]:
        loop = asyncio.get_running_loop()
        outs = await loop.run_in_executor(self._pool, lambda: self._llm.classify(texts, use_tqdm=False))
        for o in outs:  # one engine request per text
            report_usage(Usage(len(o.prompt_token_ids or ()), o.num_cached_tokens or 0, 0))
        return [list(o.outputs.probs) for o in outs]

    async def _remote(self, texts: list[str]) -> list[list[float]]:
        import aiohttp

        base = self.config.endpoint.rstrip("/").removesuffix("/v1")  # type: ignore[union-attr]
        body: dict[str, Any] = {"input": texts}
        if self.config.served_model:
            body["model"] = self.config.served_model
        timeout = aiohttp.ClientTimeout(total=self.config.timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as s:
            async with s.post(f"{base}/classify", json=body) as r:
                if r.status != 200:
                    raise RuntimeError(f"{base}/classify: HTTP {r.status}: {(await r.text())[:200]}")
                data = await r.json()
        usage = data.get("usage") or {}
        cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
        report_usage(Usage(usage.get("prompt_tokens", 0), cached, 0), requests=len(texts))
        return [d["probs"] for d in sorted(data["data"], key=lambda d: d["index"])]

    def close(self) -> None:
        if self._llm is not None:
            self._llm.llm_engine.engine_core.shutdown()
            self._llm = None
        if self._pool is not None:
            self._pool.shutdown(wait=False)
