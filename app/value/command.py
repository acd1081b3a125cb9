"""`ponder value train CONFIG`: the typer command. Imports nothing heavy until it runs."""

from __future__ import annotations

import typer

value_app = typer.Typer(no_args_is_help=True, help="Value models trained from the policy's own outcomes.")


@value_app.command("train")
def train(
    config: str = typer.Argument(..., help="YAML value training config (see docs/value-model.md)"),
    set_: list[str] = typer.Option([], "--set", help="override a key: section.key=value (repeatable)"),
    data_dir: str = typer.Option(None, "--data-dir", help="a folder of <name>/test.jsonl overriding the shipped sets"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
) -> None:
    """Sample the policy on a dataset with answers, label every step prefix from the outcomes,
    read the policy's hidden states on the pooling runner, fit a head and write the value folder."""
    import asyncio

    from ...backends.models import ModelError
    from .config import load_value_config
    from .train import train as run_training

    def say(line: str) -> None:
        typer.echo(line, err=True)

    try:
        cfg = load_value_config(config, set_)
        facts = asyncio.run(run_training(cfg, progress=not quiet, say=say, data_dir=data_dir))
    except (ValueError, ModelError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2)
    except KeyboardInterrupt:
        typer.echo(f"error: interrupted; what is done is kept in {cfg.work_dir}: run again to continue", err=True)
        raise typer.Exit(2)
    v = facts["validation"]
    typer.echo(
        f"{cfg.output}: {facts['samples']} samples of {facts['problems']} problems ({facts['labels']} labels), "
        f"validation AUC {v['auc_final']} (every prefix {v['auc_steps']}), Brier {v['brier_final']}"
    )
