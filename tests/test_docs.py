"""Every fenced ```python and ```bash block in README.md and docs/*.md runs here, so an example
that stops working fails the suite.

The line just before a block says how it runs:
- nothing: with the fast tests; it must finish in seconds without an engine (the scripted
  backend, pure Python, `--dry-run`);
- `<!-- example: engine -->`: with the engine tests (marked `engine`), starting what it needs;
- `<!-- example: gpu -->`: not run (it needs a GPU, a cluster or servers that are not here): its
  syntax is checked, and every config under configs/ it names passes `ponder run --dry-run`.
```text, ```yaml, ```toml and ```console (a transcript of `make demo` / `make test`, which start
the suite itself) blocks are not executed. Each block runs in a fresh temporary directory holding a
link to the repository's configs/ and bench/, with the repository's venv first on PATH; shell blocks
run under `bash -e -o pipefail`. A failure names the page and the line its block starts on.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from ponder.app.docs.strategy_page import PAGE as STRATEGIES_PAGE, page as strategies_page

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUN = {"python", "bash"}
KINDS = {None, "engine", "gpu"}
MARK = re.compile(r"<!--\s*example:\s*(\w+)\s*-->")
# pages the README links that are written alongside this one; each must exist once it lands
PENDING = {"docs/value-model.md", "docs/sweeps.md", "docs/thinking.md", "docs/viewer.md", "docs/contract.md"}
FAST_TIMEOUT_S, ENGINE_TIMEOUT_S = 60, 600


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # where the opening fence is, 1-based
    lang: str
    kind: str | None
    code: str

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of one page, each with the marker on the line before its fence."""
    lines = page.read_text(encoding="utf-8").splitlines()
    out, i = [], 0
    while i < len(lines):
        fence = re.match(r"^(`{3,})(\w*)\s*$", lines[i])
        if not fence:
            i += 1
            continue
        end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == fence[1]), None)
        if end is None:
            raise AssertionError(f"{page.relative_to(ROOT)}:{i + 1}: a ``` block that is never closed")
        mark = MARK.search(lines[i - 1]) if i else None
        out.append(Block(page, i + 1, fence[2], mark[1] if mark else None, "\n".join(lines[i + 1 : end]) + "\n"))
        i = end + 1
    return out


ALL = [b for page in PAGES for b in blocks(page)]
RUNNABLE = [b for b in ALL if b.lang in RUN]


def _param(b: Block):
    marks = [pytest.mark.engine] if b.kind == "engine" else []
    return pytest.param(b, id=b.where, marks=marks)


def workspace(tmp_path: Path) -> dict[str, str]:
    """A fresh directory with the repository's configs/ and bench/ linked in, and the
    environment of a user whose shell has the venv activated."""
    for name in ("configs", "bench"):
        (tmp_path / name).symlink_to(ROOT / name)
    venv_bin = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}", "VIRTUAL_ENV": str(Path(venv_bin).parent)}


def run_block(b: Block, tmp_path: Path, timeout: int) -> None:
    env = workspace(tmp_path)
    script = tmp_path / ("example.py" if b.lang == "python" else "example.sh")
    script.write_text(b.code, encoding="utf-8")
    command = [sys.executable, script.name] if b.lang == "python" else ["bash", "-e", "-o", "pipefail", script.name]
    # its own process group: whatever the block starts (a server in the background) ends with it
    proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    timed_out = False
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out, out, err = True, "", ""
    finally:
        end_group(proc)
    if timed_out:
        pytest.fail(f"{b.where}: the ```{b.lang} block ran past {timeout} s", pytrace=False)
    if proc.returncode != 0:
        tail = (out[-1500:] + "\n" + err[-3000:]).strip()
        pytest.fail(f"{b.where}: the ```{b.lang} block failed (exit {proc.returncode}):\n{tail}", pytrace=False)


def end_group(proc: subprocess.Popen) -> None:
    """Stop what is left of the block's process group (politely, then not) and reap the block."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            proc.poll()  # reaps the block itself; orphans of it are reaped by init
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.2)
    proc.wait()


def test_pages_have_runnable_examples_and_known_markers():
    assert len(PAGES) >= 10 and len(RUNNABLE) >= 10
    for b in ALL:
        assert b.kind in KINDS, f"{b.where}: unknown marker <!-- example: {b.kind} --> (expected engine or gpu)"
        assert b.kind is None or b.lang in RUN, f"{b.where}: a marker on a ```{b.lang} block, which never runs"


def test_each_docs_page_starts_with_a_runnable_example():
    for page in sorted((ROOT / "docs").glob("*.md")):
        first = next((b for b in blocks(page)), None)
        assert first is not None and first.lang in RUN, f"{page.relative_to(ROOT)}: its first block should be a ```python or ```bash example"


@pytest.mark.parametrize("block", [_param(b) for b in RUNNABLE if b.kind is None])
def test_fast_example(block, tmp_path):
    run_block(block, tmp_path, FAST_TIMEOUT_S)


@pytest.mark.parametrize("block", [_param(b) for b in RUNNABLE if b.kind == "engine"])
def test_engine_example(block, tmp_path):
    run_block(block, tmp_path, ENGINE_TIMEOUT_S)


CONFIG = re.compile(r"\bconfigs/[\w./-]+\.ya?ml\b")


@pytest.mark.parametrize("block", [_param(b) for b in RUNNABLE if b.kind == "gpu"])
def test_gpu_example_is_valid(block, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from ponder.cli import app

    if block.lang == "python":
        compile(block.code, block.where, "exec")
    else:
        syntax = subprocess.run(["bash", "-n"], input=block.code, capture_output=True, text=True)
        assert syntax.returncode == 0, f"{block.where}: not valid bash: {syntax.stderr.strip()}"
    workspace(tmp_path)
    monkeypatch.chdir(tmp_path)
    for config in sorted(set(CONFIG.findall(block.code))):
        # `ponder run --dry-run` in this process: a fresh interpreter per config spent its time
        # on imports (that a dry run imports no engine library: tests/app/run/test_dry_run.py)
        done = CliRunner().invoke(app, ["run", config, "--dry-run"])
        assert done.exit_code == 0, f"{block.where}: {config} fails the dry run: {done.stderr.strip()}"


def test_links_between_pages_resolve():
    link = re.compile(r"\]\(((?![a-z]+:)[^)#\s]+)(?:#[^)]*)?\)")  # relative targets: pages, images
    missing = set()
    for page in PAGES:
        for target in link.findall(page.read_text(encoding="utf-8")):
            path = (page.parent / target).resolve()
            if not path.is_file():
                missing.add(path.relative_to(ROOT).as_posix())
    assert missing <= PENDING, f"links to pages that do not exist: {sorted(missing - PENDING)}"


def test_readme_is_short_and_links_every_page():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 215  # a page of text, its two tables (layout, pages) included
    pages = {p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md")} | PENDING
    assert {p for p in pages if f"]({p})" not in readme} == set()


def test_strategies_page_is_written_from_the_registry():
    on_disk = STRATEGIES_PAGE.read_text(encoding="utf-8")
    assert on_disk == strategies_page(on_disk), (
        "docs/strategies.md differs from the strategy registry: run `python -m ponder.app.docs.strategy_page`")
