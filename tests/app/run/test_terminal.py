"""The quiet terminal: whatever a library writes, by any route, lands in the log; ponder's own
lines reach the user. Run in a subprocess, since it rewires the process's stdout and stderr."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import logging, os, sys, warnings
    from pathlib import Path
    from ponder.app.run.terminal import Terminal

    root = Path(sys.argv[1])
    term = Terminal(root / "tmp.log")
    logging.basicConfig(stream=sys.stderr)
    logging.getLogger("vllm").warning("a logging warning")
    warnings.warn("a python warning")
    os.write(2, b"a C-level write to fd 2\\n")
    print("a print to stdout")
    term.say("header line")
    (root / "run").mkdir()
    term.move_log(root / "run" / "engine.log")
    os.write(1, b"after the move\\n")
    term.show("summary line")
""")


def test_library_output_goes_to_the_log_and_ours_to_the_terminal(tmp_path):
    p = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "summary line\n" and p.stderr == "header line\n"
    log = (tmp_path / "run" / "engine.log").read_text()
    for line in ("a logging warning", "a python warning", "a C-level write to fd 2", "a print to stdout", "after the move"):
        assert line in log
    assert not (tmp_path / "tmp.log").exists()


def test_the_progress_line_written_to_a_pipe_keeps_its_counts_and_interval():
    """stderr redirected to a file or pipe has no width: the bar's line keeps `3/3`, the
    accuracy interval and the error count whole instead of rich's 80-column cut (`3…`)."""
    import io

    from ponder.app.run.progress import Progress

    class Ledger:
        generated_tokens, cached_tokens, prompt_tokens = 120, 30, 100

    out = io.StringIO()
    with Progress(3, 0, stream=out) as bar:
        for correct, error in ((True, None), (None, "prompt of 9000 tokens"), (False, None)):
            bar.update({"correct": correct, "error": error}, Ledger())
    line = out.getvalue().splitlines()[-1]
    assert "3/3" in line and "acc 0.500 [" in line and "| 1 errored |" in line and "cache hit 30%" in line, line
