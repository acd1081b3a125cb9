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


def main() -> None:
    app()
