"""The in-process engine under load and at shutdown (real vLLM engine)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap

import pytest

from ponder.backends.base import Sampling

pytestmark = pytest.mark.engine

TEXT = "The tide comes in over the flat grey sand, and the gulls rise and settle again. " * 40


def prompts_over_one_step(engine, count: int) -> list[list[int]]:
    """`count` distinct prompts whose tokens together exceed one scheduler step's budget."""
    budget = engine.engine.vllm_config.scheduler_config.max_num_batched_tokens
    each = budget // count + 40
    out = []
    for i in range(count):
        ids = engine.tokenizer.chat([{"role": "user", "content": f"Story {i}. {TEXT}"}])
        assert len(ids) >= each
        out.append(ids[:each])
    assert sum(map(len, out)) > budget
    return out


async def test_seeded_requests_over_one_step_budget_all_complete(engine):
    # 16 seeded requests whose prompts cannot all be prefilled in one step: with chunked
    # prefill the CPU engine died here ("CPU Generator does not use offset")
    prompts = prompts_over_one_step(engine, 16)
    outs = await asyncio.gather(*(engine.generate(p, Sampling(temperature=0.8, max_tokens=8, seed=100 + i)) for i, p in enumerate(prompts)))
    assert [len(o) for o in outs] == [1] * 16
    assert all(o[0].finish_reason in ("length", "eos", "stop") and o[0].token_ids for o in outs)
    # a seed still decides the sample whatever else is in the batch
    (alone,) = await engine.generate(prompts[5], Sampling(temperature=0.8, max_tokens=8, seed=105))
    assert alone.token_ids == outs[5][0].token_ids


async def test_seeded_streams_over_one_step_budget_all_complete(engine):
    prompts = prompts_over_one_step(engine, 16)

    async def run(i: int, ids: list[int]) -> str | None:
        last = None
        async for d in engine.stream(ids, Sampling(temperature=1.0, max_tokens=6, seed=i)):
            last = d
        return last.finish_reason

    reasons = await asyncio.gather(*(run(i, p) for i, p in enumerate(prompts)))
    assert all(r in ("length", "eos", "stop") for r in reasons)


SCRIPT = textwrap.dedent(
    """
    import asyncio

    from ponder.backends.base import Sampling
    from ponder.backends.vllm import EngineConfig, VllmBackend


    def main():
        b = VllmBackend(EngineConfig(max_model_len=512, kv_cache_gib=0.5))
        ids = b.tokenizer.chat([{"role": "user", "content": "Say something about the sea."}])

        async def go():
            await b.generate(ids, Sampling(max_tokens=8, temperature=0.7, seed=1))
            n = 0
            async for _ in b.stream(ids, Sampling(max_tokens=200, temperature=1.0, seed=2)):
                n += 1
                if n == 3:
                    break
            # a request still running when the backend closes is cancelled, not left hanging
            pending = asyncio.ensure_future(b.generate(ids, Sampling(max_tokens=400, temperature=1.0, seed=3)))
            await asyncio.sleep(0.5)
            await b.close()
            try:
                await pending
            except asyncio.CancelledError:
                print("in-flight request cancelled", flush=True)
            print("closed", flush=True)

        asyncio.run(go())


    if __name__ == "__main__":
        main()
    """
)


def test_normal_shutdown_prints_no_traceback(tmp_path):
    script = tmp_path / "engine_once.py"
    script.write_text(SCRIPT)
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=400)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    assert "in-flight request cancelled" in proc.stdout and "closed" in proc.stdout
    for bad in ("Traceback", "EngineDeadError", "Exception ignored", "output_handler failed"):
        assert bad not in output, output[-3000:]
