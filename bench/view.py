"""Benchmark of `ponder view` on large runs: how long the report takes to become interactive
in headless chromium, how long a tree takes to open, and how the file grows with the traces.

Each size is a real beam-search run on the scripted backend (tests/view_runs.py: 4 beams,
13 nodes per problem), reported with `ponder view`, then opened `--repeats` times, each in a
fresh browser context:
  ready   the page's own mark when its table is drawn and it answers clicks (navigation start
          to `performance.mark("ponder-ready")`)
  open    goto() until ready, as the test driver sees it (includes loading the file)
  tree    a click on the last problem's row until its tree is drawn (its chunk decompressed)
Figures are the median with [min, max] over the repeats.

Run: .venv/bin/python bench/view.py [--sizes 1000 2000] [--repeats 5]

Measured (`bench/view.py --sizes 1000 2000 --repeats 5`, Debian chromium 156 headless, 2-core
CPU machine with other jobs running, 50 s):
    problems traces KiB report KiB  ratio build s    ready ms [min, max]   open ms [min, max]   tree ms [min, max]
        1000       2747        296  0.108     1.9          121 [72, 175]       617 [540, 804]         94 [83, 320]
        2000       5493        552  0.100     2.8           98 [84, 232]     1092 [717, 1698]        174 [71, 250]
    a second run of the same command:
        1000       2747        297  0.108     1.4           90 [48, 340]       681 [432, 927]        102 [54, 128]
        2000       5493        546  0.099     1.7          145 [82, 283]     1070 [746, 1513]        107 [81, 152]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from view_runs import PONDER, make_runs  # noqa: E402  (the tests' scripted runs)


def size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else path.stat().st_size


def spread(xs: list[float]) -> str:
    return f"{statistics.median(xs):7.0f} [{min(xs):.0f}, {max(xs):.0f}]"


def measure(browser, report: Path, last: str, repeats: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"ready": [], "open": [], "tree": []}
    for _ in range(repeats):
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        t0 = time.perf_counter()
        page.goto(report.as_uri())
        page.wait_for_selector("html[data-ready='1']")
        out["open"].append((time.perf_counter() - t0) * 1000)
        out["ready"].append(page.evaluate("performance.getEntriesByName('ponder-ready')[0].startTime"))
        start = page.evaluate("performance.now()")
        page.click(f"#problem-table tbody tr[data-id='{last}']")
        page.wait_for_selector(f"#trees[data-ready='{last}']")
        out["tree"].append(page.evaluate("performance.getEntriesByName('ponder-tree').at(-1).startTime") - start)
        if errors:
            raise RuntimeError(f"the page failed: {errors[0]}")
        context.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 2000])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        sys.exit("no chromium on PATH: `make install` installs it")
    work = Path(tempfile.mkdtemp(prefix="ponder-view-bench-"))
    print(f"{'problems':>8} {'traces KiB':>10} {'report KiB':>10} {'ratio':>6} {'build s':>7}   "
          f"{'ready ms [min, max]':>20} {'open ms [min, max]':>20} {'tree ms [min, max]':>20}")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        for n in args.sizes:
            problems = [(f"q{i}", f"What is 3 + {i}?", str(3 + i)) for i in range(n)]
            (work / f"n{n}").mkdir()
            (run,) = make_runs(work / f"n{n}", names=("beam",), problems=problems)
            report = work / f"n{n}" / "report.html"
            t0 = time.perf_counter()
            subprocess.run([PONDER, "view", str(run), "--output", str(report)], check=True, capture_output=True)
            build = time.perf_counter() - t0
            traces, page = size(run / "traces"), size(report)
            m = measure(browser, report, f"q{n - 1}", args.repeats)
            print(f"{n:8d} {traces / 1024:10.0f} {page / 1024:10.0f} {page / traces:6.3f} {build:7.1f}   "
                  f"{spread(m['ready']):>20} {spread(m['open']):>20} {spread(m['tree']):>20}", flush=True)
        browser.close()
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
