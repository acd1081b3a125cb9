"""The `ponder` command line. Heavy modules are imported inside commands so --help is instant."""

from __future__ import annotations

import typer
from typer.core import TyperCommand

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Test-time reasoning orchestration.")
models_app = typer.Typer(no_args_is_help=True, help="Provision and list models.")
app.add_typer(models_app, name="models")


def fail(message: str, terminal: object = None, code: int = 2) -> None:
    """One line on the user's stderr (the terminal's, when engine output is sent to a log)."""
    typer.echo(f"error: {message}", err=True, file=getattr(terminal, "err", None))
    raise typer.Exit(code)


@models_app.command("pull")
def models_pull(name: str = typer.Argument(..., help="embedded model name or hub id")) -> None:
    """Provision a model into $PONDER_HOME/models (idempotent)."""
    from .backends.models import ModelError, pull

    try:
        typer.echo(str(pull(name)))
    except ModelError as e:
        fail(str(e))


@models_app.command("list")
def models_list() -> None:
    """Known models and where they live."""
    from .backends.models import list_models

    for name, description, folder in list_models():
        typer.echo(f"{name:28} {'pulled: ' + str(folder) if folder else 'not pulled'}  {description}")


@app.command()
def solve(
    question: str = typer.Argument(..., help="the question to answer"),
    strategy: str = typer.Option("best_of_n", "--strategy", "-s", help="strategy name (see `ponder strategies`)"),
    n: int = typer.Option(1, "--n", "-n", help="samples (best_of_n / first_finish) or beams"),
    model: str = typer.Option("smollm2-135m-instruct", "--model", "-m", help="embedded name, HF folder or hub id"),
    scorer: str = typer.Option(None, "--scorer", help="step scorer for search strategies (arithmetic)"),
    max_tokens: int = typer.Option(512, "--max-tokens"),
    answer: str = typer.Option(None, "--answer", help="reference answer, to grade the result"),
    set_: list[str] = typer.Option([], "--set", help="strategy field=value (repeatable)"),
    endpoint: list[str] = typer.Option([], "--endpoint", help="OpenAI-compatible server(s) serving --model, instead of an in-process engine"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="show engine logs live (default: $PONDER_HOME/logs/solve.log)"),
) -> None:
    """Answer one question and print the answer and the tokens spent."""
    from .backends.models import ModelError
    from .app.run.run_config import apply_override
    from .app.run.solve import solve as solve_one
    from .app.run.terminal import Terminal, log_file
    from .strategies.base import strategy_class

    term = Terminal(None if verbose else log_file("solve"))
    try:
        fields = strategy_class(strategy).Config.model_fields
        config: dict[str, object] = {}
        if "n" in fields and (n > 1 or strategy == "best_of_n"):
            config["n"] = n
        if "max_tokens" in fields:
            config["max_tokens"] = max_tokens
        if strategy == "best_of_n" and n == 1:  # one sample: greedy
            config.update(temperature=0.0, selection="first")
        for item in set_:
            apply_override(config, item)
        result = solve_one(question, strategy, model, scorer, answer, endpoint or None, **config)
    except (ModelError, ValueError) as e:
        fail(str(e), term)
    led = result.ledger
    if getattr(result, "error", None):
        fail(f"{result.error} (engine log: {term.log})" if term.log else str(result.error), term, 1)
    term.show(f"answer: {result.answer or '(none)'}" + ("" if result.correct is None else f"  correct: {result.correct}"))
    term.show(
        f"tokens: generated {led.generated_tokens}, prompt {led.prompt_tokens} (cached {led.cached_tokens}), "
        f"aborted {led.aborted_tokens}; requests {led.requests}; verifier calls {led.verifier_calls}; {led.wall_s:.1f} s"
    )
    if len(result.candidates) > 1:
        term.show("candidates: " + ", ".join(c.answer or "-" for c in result.candidates))


@app.command()
def grade(
    file: str = typer.Argument(..., help="JSONL with a response and a reference per line"),
    output: str = typer.Option(None, "--output", "-o", help="default: FILE.graded.jsonl beside the input"),
    response_field: str = typer.Option("response", "--response-field"),
    reference_field: str = typer.Option("reference", "--reference-field"),
) -> None:
    """Grade responses against references; writes each line back with `extracted` and `is_correct`."""
    from pathlib import Path

    from .app.run.grading import grade_file

    try:
        s = grade_file(Path(file), Path(output) if output else None, response_field, reference_field)
    except ValueError as e:
        fail(str(e))
    typer.echo(f"accuracy: {s.interval or '-'} ({s.correct}/{s.total})  written: {s.output}")


class _RunCommand(TyperCommand):
    """`--ray` takes an address or none (a click option always takes a value): a bare `--ray`
    (last, or before an option or a config file) is read as `--ray=`."""

    def parse_args(self, ctx, args):  # type: ignore[no-untyped-def]
        args = list(args)
        for i, arg in enumerate(args):
            if arg == "--ray" and (i + 1 == len(args) or args[i + 1].startswith("-") or args[i + 1].endswith((".yaml", ".yml"))):
                args[i] = "--ray="
        return super().parse_args(ctx, args)


@app.command(cls=_RunCommand)
def run(
    configs: list[str] = typer.Argument(..., help="YAML run config(s); several run one after another on one engine"),
    limit: int = typer.Option(None, "--limit", help="only the first N problems"),
    resume: bool = typer.Option(False, "--resume", help="continue a run directory: skip answered ids, retry errored ones"),
    set_: list[str] = typer.Option([], "--set", help="override a key: section.key=value (repeatable)"),
    data_dir: str = typer.Option(None, "--data-dir", help="a folder of <name>/test.jsonl overriding the shipped sets (default $PONDER_DATA)"),
    shard: str = typer.Option(None, "--shard", help="i/N: only shard i (0 <= i < N) of the problems, chosen by id, into runs/NAME-shard-i-of-N (join with `ponder merge`)"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="show engine logs live (default: the run directory's engine.log)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="check the config(s), dataset and models and print what would run; starts no engine"),
    ray: str = typer.Option(None, "--ray", metavar="[ADDRESS]", help="solve on Ray workers (executor.kind=ray): at ADDRESS (auto, HOST:PORT, ray://HOST:PORT), else at executor.address, else on a local cluster started for the run"),
) -> None:
    """Run a dataset through a strategy into runs/NAME (results.jsonl, traces, summary.json, engine.log).
    Exits 1 when some problems ended in an error (each is a record with an `error`)."""
    import asyncio
    import time

    from .backends.models import ModelError
    from .app.run.batch import execute, prepare, run_dir
    from .app.run.dry_run import check_together, dry_run as check_runs
    from .app.serve.reasoning import check_delimiters
    from .app.run.run_config import load_run_config
    from .app.run.shard import Shard
    from .app.run.store import RunStore
    from .app.run.terminal import Terminal, log_file

    if ray is not None:  # the flag overrides the configs' executor section
        set_ = [*set_, "executor.kind=ray", *([f'executor.address="{ray}"'] if ray else [])]
    if dry_run:
        try:
            lines = [line for r in check_runs(configs, set_, limit, data_dir, shard, resume) for line in r.lines()]
        except (ModelError, ValueError) as e:
            fail(str(e))
        typer.echo("\n".join(lines + ["dry run: nothing started"]))
        return
    term = Terminal(None if verbose else log_file("run"))
    try:
        part = Shard.parse(shard) if shard is not None else None
        plans = []
        for path in configs:
            cfg = load_run_config(path, set_)
            check_delimiters(cfg, path)
            plans.append((cfg, prepare(cfg, limit, data_dir, part)))
            RunStore(run_dir(cfg, part)).check_resume(cfg.model_dump(mode="json"), resume)
        dirs = [run_dir(cfg, part) for cfg, _ in plans]
        check_together([cfg for cfg, _ in plans], dirs)
        if any(cfg.executor != plans[0][0].executor for cfg, _ in plans):
            raise ValueError("configs run together share one executor: their executor sections must be equal")
        pool = None
        if plans[0][0].executor.kind == "ray":
            from .app.cluster.worker_pool import WorkerPool

            pool = WorkerPool(plans[0][0].executor, plans[0][0].backend, plans[0][0].seed, max(cfg.concurrency for cfg, _ in plans))
            pool.connect()  # an address that does not answer, another Ray, too few GPUs: before anything is said or written
    except (ModelError, ValueError) as e:
        _drop_log(term)
        fail(str(e), term)
    first = plans[0][0]
    for cfg, problems in plans:
        term.say(f"run {cfg.name}: model {cfg.backend.model}, strategy {cfg.strategy.name}, dataset {cfg.dataset.name} ({len(problems)} problems)")
    term.say(f"results: {dirs[0] if len(dirs) == 1 else dirs[0].parent}" + ("" if verbose else f", engine log: {dirs[0]}/engine.log"))

    async def go() -> list:
        if pool is not None:
            return await on_ray()
        started = time.monotonic()
        backend = first.backend.build(first.seed)
        term.say(f"engine ready in {time.monotonic() - started:.0f} s")
        try:
            return [await execute(cfg, problems, resume=resume, progress=not quiet, backend=backend, terminal=term, shard=part)
                    for cfg, problems in plans]
        finally:
            await backend.close()

    async def on_ray() -> list:
        from pathlib import Path

        started = time.monotonic()
        await pool.start()
        term.say(f"ray: {len(pool.pids)} of {first.executor.workers} workers ready in {time.monotonic() - started:.0f} s")
        try:
            outcomes = []
            for path, (cfg, problems) in zip(configs, plans):
                runner = pool.runner(cfg, Path(path).parent)
                outcomes.append(await execute(cfg, problems, resume=resume, progress=not quiet, terminal=term, shard=part, runner=runner))
                term.say(f"ray: problems per worker {' '.join(map(str, runner.solved))}, {runner.retried} retried")
            return outcomes
        finally:
            await pool.close()

    try:
        outcomes = asyncio.run(go())
    except ValueError as e:
        _drop_log(term)
        fail(str(e), term)
    except ModelError as e:
        fail(f"{e}" + (f" (engine log: {term.log})" if term.log else ""), term)
    except KeyboardInterrupt:
        fail("interrupted; finished problems are saved: run again with --resume", term)
    except Exception as e:  # the engine died or a server went away mid-run
        first_line = str(e).splitlines()[0] if str(e) else ""
        log = f" (engine log: {term.log})" if term.log else ""
        fail(f"run stopped: {type(e).__name__}: {first_line}; finished problems are saved: run again with --resume{log}", term)
    from .app.run.stats import text
    from .app.run.store import thinking_split

    for outcome in outcomes:
        s = outcome.summary
        acc = text(s)
        errors = f", {s['errors']} errored" if s["errors"] else ""
        term.show(
            f"{outcome.directory}: {s['problems']} problems ({outcome.skipped} from before){errors}, accuracy {acc}, "
            f"{s['generated_per_problem']} generated tokens/problem{thinking_split(s)}, cache hit {s['cache_hit_rate']:.0%}, {s['wall_s']} s"
        )
    failed, total = sum(o.errors for o in outcomes), sum(o.summary["problems"] for o in outcomes)
    if failed:
        fail(f"{failed} of {total} problems failed (the `error` field in results.jsonl); run again with --resume to retry them", term, 1)


def _drop_log(term: object) -> None:
    """Bad input never reached an engine: its log holds nothing worth keeping."""
    log = getattr(term, "log", None)
    if log is not None and log.name.startswith("run-"):
        log.unlink(missing_ok=True)


@app.command()
def report(
    runs: list[str] = typer.Argument(..., help="run directories"),
    plot: str = typer.Option(None, "--plot", help="PNG path (default: accuracy_vs_tokens.png in the first run's parent)"),
) -> None:
    """Compare runs: accuracy with its 95% interval, tokens, verifier calls, time, cache hit rate; each run
    against the first on their common problems (paired); and a PNG plot."""
    from pathlib import Path

    from .app.run.report import paired, plot as draw, read_summaries, table

    try:
        summaries = read_summaries([Path(r) for r in runs])
    except ValueError as e:
        fail(str(e))
    typer.echo("\n".join([table(summaries), *paired(summaries)]))
    out = Path(plot) if plot else Path(runs[0]).resolve().parent / "accuracy_vs_tokens.png"
    typer.echo(f"plot: {draw(summaries, out)}")


@app.command()
def merge(
    runs: list[str] = typer.Argument(..., help="run directories: the shards of one run (`ponder run --shard i/N`)"),
    output: str = typer.Option(..., "--output", "-o", help="the merged run directory (a new one)"),
) -> None:
    """Join the shards of a run into one run directory: config, results, traces, summary.

    `ponder report` and `ponder run --resume` read it like an unsharded run; the shards stay as they are."""
    from pathlib import Path

    from .app.run.merge import merge_runs

    try:
        merged = merge_runs([Path(r) for r in runs], Path(output))
    except ValueError as e:
        fail(str(e))
    from .app.run.stats import text

    s = merged.summary
    typer.echo(f"{output}: {s['problems']} problems from {len(runs)} runs, accuracy {text(s)}")
    if merged.missing:
        typer.echo(f"warning: shard(s) {', '.join(str(m) for m in merged.missing)} not merged: their problems are missing", err=True)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8000, "--port"),
    model: str = typer.Option("smollm2-135m-instruct", "--model", "-m"),
    strategy: str = typer.Option("best_of_n", "--strategy", "-s", help="strategy for requests naming model 'ponder'"),
    scorer: str = typer.Option(None, "--scorer", help="step scorer for search strategies (default arithmetic)"),
    endpoint: list[str] = typer.Option([], "--endpoint", help="OpenAI-compatible server(s) to use instead of an in-process engine"),
    api_key: str = typer.Option(None, "--api-key", envvar="PONDER_API_KEY", help="require `Authorization: Bearer KEY`"),
    max_tokens_per_request: int = typer.Option(16384, "--max-tokens-per-request", help="generated tokens one request may spend, all samples and steps"),
    max_concurrent: int = typer.Option(8, "--max-concurrent", help="requests solving at once; more get HTTP 429"),
    max_model_len: int = typer.Option(None, "--max-model-len", help="in-process engine context length"),
    thinking: str = typer.Option(None, "--thinking", help="the model's thinking block (r1, qwen3, qwq): replies carry reasoning_content"),
    import_: list[str] = typer.Option([], "--import", help="a module or .py file registering strategies or scorers (repeatable)"),
    config: list[str] = typer.Option([], "--config", "-c", help="a run config whose `imports:` to load (repeatable)"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="show engine logs live (default: $PONDER_HOME/logs/serve.log)"),
) -> None:
    """OpenAI-compatible /v1/chat/completions and /v1/completions in front of any strategy."""
    import asyncio

    from aiohttp import web

    from .app.serve.server import ServeConfig, make_app
    from .app.run.terminal import Terminal, log_file
    from .backends import make_backend
    from .backends.models import ModelError
    from .strategies.base import strategy_class

    term = Terminal(None if verbose else log_file("serve"))
    try:
        _import_user_modules(import_, config)
        strategy_class(strategy)
        config = ServeConfig(strategy=strategy, scorer=scorer, api_key=api_key or None,
                             max_tokens_per_request=max_tokens_per_request, max_concurrent=max_concurrent,
                             thinking={"preset": thinking} if thinking else None)
        if endpoint:
            backend = make_backend("openai", endpoints=endpoint, model=model)
        else:
            backend = make_backend("vllm", model=model, **({"max_model_len": max_model_len} if max_model_len else {}))
    except (ModelError, ValueError) as e:
        fail(str(e).splitlines()[0], term)
    term.say(f"serving on http://{host}:{port}/v1 (strategies as models; default {strategy})" + (f"; engine log: {term.log}" if term.log else ""))
    try:
        # handler_cancellation: a client that disconnects cancels its solve, which aborts its engine requests
        web.run_app(make_app(backend, config), host=host, port=port, print=None, handler_cancellation=True)
    finally:
        asyncio.run(backend.close())


def _import_user_modules(modules: list[str], configs: list[str]) -> None:
    """`--import` modules (or .py files) and the `imports:` of run configs, before names are used."""
    from .app.run.imports import import_module
    from .app.run.run_config import import_config_modules

    for item in modules:
        import_module(item)
    for path in configs:
        import_config_modules(path)


@app.command()
def strategies(
    config: list[str] = typer.Option([], "--config", "-c", help="a run config whose `imports:` register strategies (repeatable)"),
    import_: list[str] = typer.Option([], "--import", help="a module or .py file registering strategies (repeatable)"),
) -> None:
    """List strategies (built in, registered by --import / a config's imports:, installed entry points)
    with their config fields and defaults."""
    from .strategies.base import STRATEGIES, strategy_class

    try:
        _import_user_modules(import_, config)
        names = sorted(STRATEGIES)
    except ValueError as e:
        fail(str(e))
    for name in names:
        try:
            cls = strategy_class(name)
        except ValueError as e:
            fail(str(e))
        typer.echo(f"{name}{'  (needs a scorer)' if cls.needs_scorer else ''}")
        for field, info in cls.Config.model_fields.items():
            typer.echo(f"    {field} = {_plain(info.get_default(call_default_factory=True))!r}")


def _plain(value: object) -> object:
    """A default as YAML would write it (nested strategy specs as mappings)."""
    if isinstance(value, list):
        return [_plain(v) for v in value]
    dump = getattr(value, "model_dump", None)
    return dump() if callable(dump) else value


from .app.view.command import view as _view  # noqa: E402  (it imports nothing heavy until it runs)

app.command("view")(_view)

from .app.sweep.command import sweep as _sweep  # noqa: E402  (it imports nothing heavy until it runs)

app.command("sweep")(_sweep)

from .app.value.command import value_app as _value  # noqa: E402  (it imports nothing heavy until it runs)

app.add_typer(_value, name="value")


def main() -> None:
    app()
