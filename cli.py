"""The `ponder` command line. Heavy modules are imported inside commands so --help is instant."""

from __future__ import annotations

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Test-time reasoning orchestration.")
models_app = typer.Typer(no_args_is_help=True, help="Provision and list models.")
app.add_typer(models_app, name="models")


def fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


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
) -> None:
    """Answer one question and print the answer and the tokens spent."""
    from .backends.models import ModelError
    from .app.run_config import apply_override
    from .app.solve import solve as solve_one
    from .strategies.base import strategy_class

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
        result = solve_one(question, strategy, model, scorer, answer, **config)
    except (ModelError, ValueError) as e:
        fail(str(e))
    led = result.ledger
    typer.echo(f"answer: {result.answer or '(none)'}" + ("" if result.correct is None else f"  correct: {result.correct}"))
    typer.echo(
        f"tokens: generated {led.generated_tokens}, prompt {led.prompt_tokens} (cached {led.cached_tokens}), "
        f"aborted {led.aborted_tokens}; requests {led.requests}; verifier calls {led.verifier_calls}; {led.wall_s:.1f} s"
    )
    if len(result.candidates) > 1:
        typer.echo("candidates: " + ", ".join(c.answer or "-" for c in result.candidates))


@app.command()
def grade(
    file: str = typer.Argument(..., help="JSONL with a response and a reference per line"),
    output: str = typer.Option(None, "--output", "-o", help="default: FILE.graded.jsonl beside the input"),
    response_field: str = typer.Option("response", "--response-field"),
    reference_field: str = typer.Option("reference", "--reference-field"),
) -> None:
    """Grade responses against references; writes each line back with `extracted` and `is_correct`."""
    from pathlib import Path

    from .app.grading import grade_file

    try:
        s = grade_file(Path(file), Path(output) if output else None, response_field, reference_field)
    except ValueError as e:
        fail(str(e))
    typer.echo(f"accuracy: {s.accuracy:.4f} ({s.correct}/{s.total})  written: {s.output}")


@app.command()
def run(
    config: str = typer.Argument(..., help="YAML run config"),
    limit: int = typer.Option(None, "--limit", help="only the first N problems"),
    resume: bool = typer.Option(False, "--resume", help="continue a run directory, skipping finished ids"),
    set_: list[str] = typer.Option([], "--set", help="override a key: section.key=value (repeatable)"),
    data_dir: str = typer.Option(None, "--data-dir", help="where built-in datasets live (default $PONDER_DATA)"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
) -> None:
    """Run a dataset through a strategy into runs/NAME (results.jsonl, traces, summary.json)."""
    import asyncio

    from .backends.models import ModelError
    from .app.batch import execute, prepare
    from .app.run_config import load_run_config

    try:
        cfg = load_run_config(config, set_)
        problems = prepare(cfg, limit, data_dir)
    except (ModelError, ValueError) as e:
        fail(str(e))
    try:
        outcome = asyncio.run(execute(cfg, problems, resume=resume, progress=not quiet))
    except (ModelError, ValueError) as e:
        fail(str(e))
    except KeyboardInterrupt:
        fail("interrupted; finished problems are saved: run again with --resume")
    except Exception as e:  # the engine died or a server went away mid-run
        first = str(e).splitlines()[0] if str(e) else ""
        fail(f"run stopped: {type(e).__name__}: {first}; finished problems are saved: run again with --resume")
    s = outcome.summary
    acc = "-" if s["accuracy"] is None else f"{s['accuracy']:.3f}"
    typer.echo(
        f"{outcome.directory}: {s['problems']} problems ({outcome.skipped} from before), accuracy {acc}, "
        f"{s['generated_per_problem']} generated tokens/problem, cache hit {s['cache_hit_rate']:.0%}, {s['wall_s']} s"
    )


@app.command()
def report(
    runs: list[str] = typer.Argument(..., help="run directories"),
    plot: str = typer.Option(None, "--plot", help="PNG path (default: accuracy_vs_tokens.png in the first run's parent)"),
) -> None:
    """Compare runs: accuracy, tokens, verifier calls, time, cache hit rate; and a PNG plot."""
    from pathlib import Path

    from .app.report import plot as draw, read_summaries, table

    try:
        summaries = read_summaries([Path(r) for r in runs])
    except ValueError as e:
        fail(str(e))
    typer.echo(table(summaries))
    out = Path(plot) if plot else Path(runs[0]).resolve().parent / "accuracy_vs_tokens.png"
    typer.echo(f"plot: {draw(summaries, out)}")


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8000, "--port"),
    model: str = typer.Option("smollm2-135m-instruct", "--model", "-m"),
    strategy: str = typer.Option("best_of_n", "--strategy", "-s", help="strategy for requests naming model 'ponder'"),
    scorer: str = typer.Option(None, "--scorer", help="step scorer for search strategies (default arithmetic)"),
    endpoint: list[str] = typer.Option([], "--endpoint", help="OpenAI-compatible server(s) to use instead of an in-process engine"),
) -> None:
    """An OpenAI-compatible /v1/chat/completions endpoint in front of any strategy."""
    import asyncio

    from aiohttp import web

    from .backends.models import ModelError
    from .app.server import make_app
    from .strategies.base import strategy_class

    try:
        strategy_class(strategy)
        if endpoint:
            from .backends.openai import OpenAIBackend, OpenAIConfig

            backend = OpenAIBackend(OpenAIConfig(endpoints=endpoint, model=model))
        else:
            from .backends.vllm import EngineConfig, VllmBackend

            backend = VllmBackend(EngineConfig(model=model))
    except (ModelError, ValueError) as e:
        fail(str(e))
    typer.echo(f"serving on http://{host}:{port}/v1 (strategies as models; default {strategy})", err=True)
    try:
        web.run_app(make_app(backend, strategy, scorer), host=host, port=port, print=None)
    finally:
        asyncio.run(backend.close())


@app.command()
def strategies() -> None:
    """List strategies with their config fields and defaults."""
    from .strategies.base import REGISTRY, strategy_class

    for name in sorted(REGISTRY):
        cls = strategy_class(name)
        typer.echo(f"{name}{'  (needs a scorer)' if cls.needs_scorer else ''}")
        for field, info in cls.Config.model_fields.items():
            typer.echo(f"    {field} = {info.default!r}")


def main() -> None:
    app()
