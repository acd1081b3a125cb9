"""A run's problems solved on a pool of Ray actors (`ponder run --ray`, `executor: {kind: ray}`).

The driver (this process) reads the dataset and owns the run directory; each worker
(app/cluster/worker.py) holds one engine and solves whole problems, several at once. Problems go out
from one queue to `concurrency` slots per worker and their Results come back to the caller's
sink (batch.execute writes them exactly as a local run does). That is all the scheduling:
submit, wait, retry.

- A worker whose process dies (its node lost) is restarted by Ray; one whose engine died under
  a problem (the call raised) is killed here for Ray to restart. The problems it held go back on
  the queue for any worker; a problem whose engine died under it, or whose worker died, `retries`
  + 1 times is recorded with an error, and problems beside a dead engine's own do not count it.
  A problem is written once: only a Result that came back is written, and a lost call returns none.
- Workers beyond what the cluster can place wait for it: a node that joins later (`ray start
  --address`, an autoscaler) starts them, and they take problems from then on.
- The run's budget is leased out per problem (app/cluster/run_budget.py); once it is spent no problem
  starts, and each left is a `not started` error record, as in a local run (`--resume` runs them).
- Bad input (app/cluster/ray_cluster.py) is a ValueError of one line, raised before any run directory exists.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable

from ...records.ledger_summary import LedgerSummary
from ...records.problem import Problem
from ...records.result import Result
from ...runtime.solver import error_line, not_started
from .ray_cluster import connect, placeable, ray_module
from .run_budget import RunBudget
from ..run.run_config import BackendSection, ExecutorSection, RunConfig
from .worker import Worker

OnResult = Callable[[Problem, Result], Awaitable[None] | None]


class WorkerPool:
    """The workers of one `ponder run` (its configs share them, as they share a local engine)."""

    def __init__(self, executor: ExecutorSection, backend: BackendSection, seed: int, concurrency: int) -> None:
        self.executor, self.backend, self.seed, self.concurrency = executor, backend, seed, concurrency
        self.actors: list[Any] = []
        self.pids: dict[int, int] = {}  # worker index -> process id, once its engine is up
        self.kills: list[int] = []
        self.connected = False  # by this pool (not by its caller), so it disconnects (a local cluster stops)

    def connect(self) -> None:
        """Join (or start) the cluster and check it can hold a worker; a ValueError line if not."""
        connect(self.executor)
        self.connected = True
        try:
            placeable(self.executor)
        except BaseException:
            ray_module().shutdown()
            raise

    async def start(self) -> None:
        """Place the workers and wait for the first engine: the run directory appears only once
        a worker is ready, so a start that fails leaves nothing."""
        ray = ray_module()
        if not ray.is_initialized():
            self.connect()
        else:  # the caller's connection, checked as ours would be
            placeable(self.executor)
        try:
            remote = ray.remote(Worker).options(
                num_cpus=self.executor.cpus_per_worker, num_gpus=self.executor.gpus_per_worker,
                max_restarts=-1, max_concurrency=self.concurrency + 2,  # + the liveness calls
            )
            self.actors = [remote.remote(self.backend, self.seed) for _ in range(self.executor.workers)]
            self.kills = [0] * len(self.actors)  # restarts asked for (a dead engine), per worker
            waiting = {asyncio.ensure_future(self._ready(i)): i for i in range(len(self.actors))}
            errors: list[BaseException] = []
            while waiting and not self.pids:
                done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    waiting.pop(task)
                    if task.exception() is not None:
                        errors.append(task.exception())
            for task in waiting:  # the others start in their own time
                task.add_done_callback(lambda t: t.cancelled() or t.exception())
            if not self.pids:
                raise RuntimeError(f"no worker started: {_line(errors[0])}")
        except BaseException:
            await self.close()
            raise

    async def _ready(self, index: int) -> None:
        self.pids[index] = await self.actors[index].ready.remote()

    def runner(self, config: RunConfig, base: Path) -> PoolRunner:
        """What batch.execute solves `config`'s problems with; `base`: the folder its `imports` are relative to."""
        return PoolRunner(self, config, str(base.resolve()))

    async def close(self) -> None:
        ray = ray_module()
        if ray.is_initialized():
            started = [a for i, a in enumerate(self.actors) if i in self.pids]  # one still waiting for room has no engine
            if started:  # engines shut down cleanly where they can, then the processes go
                await asyncio.wait([asyncio.ensure_future(_settled(a.close.remote())) for a in started], timeout=30)
            for actor in self.actors:
                ray.kill(actor)
            if self.connected:
                ray.shutdown()  # a cluster started here stops with it
                self.connected = False
        self.actors = []


async def _settled(ref: Any) -> None:
    try:
        await ref
    except Exception:  # a worker that died or never started has nothing to close
        pass


def _line(error: BaseException) -> str:
    cause = getattr(error, "cause", None)
    return error_line(cause if isinstance(cause, BaseException) else error)


class PoolRunner:
    """One config's problems on the pool: `solve_many` and `ledger` as a Solver has them."""

    def __init__(self, pool: WorkerPool, config: RunConfig, base: str) -> None:
        self.pool, self.config, self.base = pool, config, base
        self.budget = RunBudget(config.global_budget, len(pool.actors) * config.concurrency)
        self.retried = 0  # problems sent again because their worker died under them
        self.solved = [0] * len(pool.actors)  # results each worker sent back

    @property
    def ledger(self) -> LedgerSummary:
        return self.budget.spent

    async def solve_many(
        self, problems: Iterable[Problem], concurrency: int, on_result: OnResult, keep_results: bool = False,
        on_retry: Callable[[], None] | None = None,
    ) -> list[Result]:
        if keep_results:
            raise ValueError("a worker pool hands every Result to on_result and keeps none")
        queue: asyncio.Queue[tuple[Problem, int]] = asyncio.Queue()
        for p in problems:
            queue.put_nowait((p, 0))
        returned = asyncio.Condition()
        ray = ray_module()

        async def sink(problem: Problem, result: Result) -> None:
            done = on_result(problem, result)
            if asyncio.iscoroutine(done):
                await done

        async def settle(lease: Any, spent: LedgerSummary | None) -> None:
            self.budget.settle(lease, spent)
            async with returned:
                returned.notify_all()

        up = [asyncio.Event() for _ in self.pool.actors]  # set while a worker takes problems

        async def alive(index: int, dead_pid: int | None = None) -> bool:
            """Wait out a worker's (re)start, until it answers from a process other than `dead_pid`
            (a restart not yet begun still answers from the old one); False when it is gone for good."""
            while True:
                try:
                    pid = await self.pool.actors[index].ready.remote()
                except ray.exceptions.ActorUnavailableError:
                    pid = dead_pid
                except ray.exceptions.RayActorError:
                    return False
                if pid != dead_pid:
                    self.pool.pids[index] = pid
                    up[index].set()
                    return True
                await asyncio.sleep(0.2)

        async def slot(index: int) -> None:
            actor = self.pool.actors[index]
            while True:
                await up[index].wait()
                problem, attempts = await queue.get()
                try:
                    lease = self.budget.grant()
                    while lease is None and self.budget.out:  # what the problems out hold may come back
                        async with returned:
                            await returned.wait()
                        lease = self.budget.grant()
                    if lease is None:  # the run's budget is spent: recorded as a local run records it
                        await sink(problem, not_started(problem, self.config.strategy.name, self.config.global_budget))
                        continue
                    pid, kills = self.pool.pids.get(index), self.pool.kills[index]
                    try:
                        result = await actor.solve.remote(self.config, self.base, problem, lease.budget)
                    except (ray.exceptions.RayActorError, ray.exceptions.RayTaskError) as e:
                        up[index].clear()
                        engine_died = isinstance(e, ray.exceptions.RayTaskError)  # under this very problem
                        if engine_died and self.pool.kills[index] == kills:
                            self.pool.kills[index] += 1
                            ray.kill(actor, no_restart=False)  # Ray restarts the worker, with a new engine
                        # a worker restarted for another problem's dead engine is no fault of this one
                        attempts += engine_died or self.pool.kills[index] == kills
                        await settle(lease, None)
                        if attempts <= self.pool.executor.retries:
                            queue.put_nowait((problem, attempts))  # for whichever worker is free first
                            self.retried += 1
                            if on_retry is not None:
                                on_retry()
                        else:
                            await sink(problem, self._lost(problem, e, attempts))
                        if not await alive(index, pid):
                            return
                        continue
                    await settle(lease, result.ledger)
                    self.solved[index] += 1
                    await sink(problem, result)
                finally:
                    queue.task_done()

        async def drive(index: int) -> None:
            if await alive(index):  # a worker waiting for a node takes problems once placed
                await asyncio.gather(*(slot(index) for _ in range(concurrency)))

        drivers = asyncio.gather(*(drive(i) for i in range(len(self.pool.actors))))
        finished = asyncio.ensure_future(queue.join())
        try:
            await asyncio.wait([finished, drivers], return_when=asyncio.FIRST_COMPLETED)
            if not finished.done():
                raise RuntimeError(f"every worker is gone; {queue.qsize()} problems not solved")
        finally:
            for task in (finished, drivers):
                task.cancel()
            await asyncio.gather(finished, drivers, return_exceptions=True)
        return []

    def _lost(self, problem: Problem, error: BaseException, attempts: int) -> Result:
        return Result(
            problem_id=problem.id, strategy=self.config.strategy.name, answer="", text="", candidates=(),
            ledger=LedgerSummary(), trace=None,  # type: ignore[arg-type]
            error=f"{attempts} workers died solving it (last: {_line(error)})",
        )
