"""`ponder view RUN [RUN...]`: the runs as one HTML file that opens offline."""

from __future__ import annotations

import typer


def view(
    runs: list[str] = typer.Argument(..., help="run directories"),
    output: str = typer.Option("report.html", "--output", "-o", help="the HTML file to write"),
    open_: bool = typer.Option(False, "--open", help="open it in the default browser"),
) -> None:
    """One self-contained HTML report: accuracy against compute, each run's problems (sortable,
    filterable) and each problem's reasoning tree, runs side by side. Link to a problem with
    report.html#problem=ID."""
    from pathlib import Path

    from .build import write_report

    try:
        path = write_report([Path(r) for r in runs], Path(output))
    except ValueError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2)
    typer.echo(f"report: {path} ({path.stat().st_size / 1024:.0f} KiB)")
    if open_:
        import webbrowser

        webbrowser.open(path.resolve().as_uri())
