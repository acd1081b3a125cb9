"""`ponder sweep SWEEP.yaml`: every cell of a sweep run on shared engines, then the frontier."""

from __future__ import annotations

import typer


def sweep(
    file: str = typer.Argument(..., help="sweep file: `base:` run config plus `grid:` or `variants:`"),
    resume: bool = typer.Option(False, "--resume", help="continue a sweep: finished cells and problems are kept"),
    shard: str = typer.Option(None, "--shard", help="i/N: only shard i of each cell's problems (CELL-shard-i-of-N); the summary reads whatever shards exist"),
    set_: list[str] = typer.Option([], "--set", help="override a key of the base: section.key=value (repeatable)"),
    data_dir: str = typer.Option(None, "--data-dir", help="a folder of <name>/test.jsonl overriding the shipped sets"),
    dry_run: bool = typer.Option(False, "--dry-run", help="check every cell and print them; starts no engine"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bars"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="show engine logs live (default: the first cell's engine.log)"),
) -> None:
    """Run a grid of configs as cells under OUTPUT_DIR/NAME, one engine start per model; write
    summary.csv (accuracy with 95% bootstrap intervals, tokens, FLOPs), frontier.png and, with
    `difficulty:`, bins.csv, policy.json and compute_optimal.csv."""
    import asyncio
    import os

    from ...backends.models import ModelError
    from ..run.shard import Shard
    from ..run.terminal import Terminal, log_file
    from .job import analyse, plan_runs, run_sweep
    from .plan import load_sweep

    def fail(message: str, term: object = None, code: int = 2) -> None:
        typer.echo(f"error: {message}", err=True, file=getattr(term, "err", None))
        raise typer.Exit(code)

    try:
        part = Shard.parse(shard) if shard is not None else None
        plan = load_sweep(file, set_)
        runs = plan_runs(plan, resume, data_dir, part)
    except (ModelError, ValueError) as e:
        fail(str(e))
    if dry_run:
        for cell in plan.cells:
            how = f"subsampled from {cell.derived_from}" if cell.derived_from else "run"
            values = ", ".join(f"{k}={v}" for k, v in cell.values)
            typer.echo(f"{cell.name}: {cell.config.strategy.name} ({how}){'; ' + values if values else ''}")
        if plan.difficulty and plan.difficulty.run:
            budgets = ", ".join(f"{b:g}" for b in plan.difficulty.budgets) or "every cell's cost"
            typer.echo(f"then: policy.json fitted on half of the problems, compute_optimal at {budgets} tokens/problem on the other half")
        typer.echo(f"{len(plan.cells)} cells, {len(runs)} to run, into {plan.directory}; dry run: nothing started")
        return
    # a log of this process's own until the first cell's directory takes it over: two sweeps
    # at once (or a sweep beside a test) never move or delete each other's
    term = Terminal(None if verbose else log_file("run").with_name(f"sweep-{os.getpid()}.log"))
    term.say(f"sweep {plan.name}: {len(plan.cells)} cells ({len(runs)} run, {len(plan.cells) - len(runs)} subsampled) into {plan.directory}")
    try:
        outcomes = asyncio.run(run_sweep(plan, runs, resume, not quiet, term, part))
        report = analyse(plan)
    except (ModelError, ValueError) as e:
        fail(str(e), term)
    except KeyboardInterrupt:
        fail("interrupted; finished problems are saved: run again with --resume", term)
    except Exception as e:  # the engine died mid-sweep
        first = str(e).splitlines()[0] if str(e) else ""
        fail(f"sweep stopped: {type(e).__name__}: {first}; finished problems are saved: run again with --resume", term)
    term.show(report.text())
    for path in report.files:
        term.show(f"written: {path}")
    failed = sum(o.errors for o in outcomes)
    if failed:
        fail(f"{failed} problems failed across the cells (the `error` field in their results.jsonl); run again with --resume to retry them", term, 1)
