"""`ponder view`: the marks each trace node gets, the file the command writes (self-contained, trees
compressed in chunks) and its errors; then the reports opened in headless chromium (the
session's `browser`), built from real runs: every page must open with no console error and no
request beyond its own file, and each view leaves a screenshot in the test's temporary directory."""

from __future__ import annotations

import base64
import gzip
import html
import json
import os
import re
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

from ponder.app.run.report import read_summaries, table
from ponder.app.view.page import packed, render
from ponder.app.view.run_data import RunView, read_run
from ponder.app.view.tree import tree_nodes

from .view_runs import PONDER, make_runs, trace


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return make_runs(tmp_path_factory.mktemp("view"))


def embedded(page: str, element: str):
    return json.loads(re.search(f'<script id="{element}" type="application/json">(.*?)</script>', page, re.S).group(1))


def unpack(chunks: list[str]) -> dict:
    out = {}
    for c in chunks:
        out.update(json.loads(gzip.decompress(base64.b64decode(c))))
    return out


def test_marks_follow_the_trace():
    t = {"nodes": [{"id": 0, "step": ""}, {"id": 1, "step": "a", "finish": "stop", "score": 0.9},
                   {"id": 2, "step": "b", "finish": "stop", "pruned": True}, {"id": 3, "step": "c", "finish": "eos", "chosen": True},
                   {"id": 4, "step": "d", "finish": "abort"}, {"id": 5, "subrun": "best_of_n", "seed": 2},
                   {"id": 6, "step": "e", "finish": "length", "rejected": True}, {"id": 7, "step": "f", "finish": "stop", "confidence": 0.5}],
         "edges": [{"source": 0, "target": 1}, {"source": 0, "target": 2}, {"source": 1, "target": 3}, {"source": 1, "target": 4},
                   {"source": 0, "target": 5}, {"source": 5, "target": 6}, {"source": 5, "target": 7}]}
    nodes = {n["id"]: n for n in tree_nodes(t)}
    assert {i: n["marks"] for i, n in nodes.items()} == {
        0: ["chosen"], 1: ["chosen"], 2: ["pruned"], 3: ["chosen", "finished"], 4: ["aborted"], 5: [], 6: ["finished", "pruned"], 7: [],
    }
    assert nodes[3]["parent"] == 1 and nodes[5]["subrun"] == "best_of_n" and nodes[5]["extra"] == {"seed": 2}
    assert nodes[7]["extra"] == {"confidence": 0.5} and nodes[1]["score"] == 0.9
    # a problem that failed: its open leaves are where the error stopped it
    failed = {n["id"]: n["marks"] for n in tree_nodes(t, failed=True)}
    assert failed[4] == ["aborted", "errored"] and failed[7] == ["errored"] and failed[2] == ["pruned"] and failed[3] == ["chosen", "finished"]


@pytest.mark.parametrize("bad, named", [
    ([], "expected a JSON object"),
    ({"nodes": {}}, "expected `nodes` and `edges` lists"),
    ({"nodes": [{"id": "0"}], "edges": []}, "a node without an integer id"),
    ({"nodes": [{"id": 0}], "edges": [{"source": 0, "target": 9}]}, "names an unknown node"),
])
def test_what_is_not_a_trace_is_named(bad, named):
    with pytest.raises(ValueError, match=named):
        tree_nodes(bad)


def test_the_report_holds_every_run_and_tree_and_fetches_nothing(runs, tmp_path):
    out = tmp_path / "report.html"
    done = subprocess.run([PONDER, "view", *map(str, runs), "--output", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"report: {out}")
    page = out.read_text()
    assert "default-src 'none'" in page  # the browser refuses any fetch the page might try
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # no external script, style or link
    assert "<svg" in page and html.escape(table(read_summaries(runs))) in page  # `ponder report`'s plot and table
    data, chunks = embedded(page, "ponder-data"), embedded(page, "ponder-trees")
    assert [r["name"] for r in data["runs"]] == ["beam", "cascade"]
    for run, run_chunks, d in zip(data["runs"], chunks, runs):
        summary = json.loads((d / "summary.json").read_text())
        assert run["summary"]["accuracy"] == summary["accuracy"]
        assert sorted(r["id"] for r in run["rows"]) == ["p/2", "p0", "p1", "p3"]
        trees = unpack(run_chunks)
        for r in run["rows"]:
            assert len(trees[r["id"]]) == len(trace(d, r["id"])["nodes"])
    beam = {r["id"]: r for r in data["runs"][0]["rows"]}
    assert beam["p3"]["error"] == "RuntimeError: this problem cannot be solved" and beam["p3"]["correct"] is False
    assert beam["p0"]["correct"] is True and beam["p1"]["correct"] is False and beam["p0"]["generated"] > 0


def test_trees_are_split_into_chunks_and_none_is_lost(runs):
    run = read_run(runs[0])
    many = RunView("many", tuple({**run.rows[0], "id": f"q{i}"} for i in range(300)),
                   {f"q{i}": run.trees["p0"] for i in range(300)})
    rows, chunks = packed(many)
    assert len(chunks) > 1
    assert sorted(unpack(chunks)) == sorted(f"q{i}" for i in range(300))
    each = [unpack([c]) for c in chunks]  # each chunk unpacked once, not once per row
    assert all(r["id"] in each[r["chunk"]] for r in rows)


def test_text_that_looks_like_markup_or_a_placeholder_stays_data():
    nodes = [{"id": 0, "parent": None, "step": "</script><script>alert(1)</script> {{js}}", "tokens": 1, "marks": [], "extra": {}}]
    run = RunView("r", ({"id": "</script>", "correct": None},), {"</script>": nodes})
    page = render([run], "t")
    assert page.count("</script>") == 3  # the page's own three script elements
    assert embedded(page, "ponder-data")["runs"][0]["rows"][0]["id"] == "</script>"
    assert unpack(embedded(page, "ponder-trees")[0])["</script>"][0]["step"].endswith("{{js}}")


def test_a_damaged_or_missing_trace_is_named_and_the_rest_is_read(runs, tmp_path):
    import shutil

    run = shutil.copytree(runs[0], tmp_path / "beam")
    files = {r["id"]: run / r["trace"] for r in map(json.loads, (run / "results.jsonl").read_text().splitlines())}
    files["p0"].write_text('{"nodes": [')
    files["p1"].unlink()
    view = read_run(run)
    assert sorted(view.trees) == ["p/2", "p3"]
    assert {(d.problem, d.file, d.why.split(":")[0]) for d in view.damaged} == {
        ("p0", str(files["p0"]), "damaged"), ("p1", str(files["p1"]), "missing")}
    out = tmp_path / "r.html"
    done = subprocess.run([PONDER, "view", str(run), "-o", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    damaged = embedded(out.read_text(), "ponder-data")["runs"][0]["damaged"]
    assert sorted(d["problem"] for d in damaged) == ["p0", "p1"]


@pytest.mark.parametrize("make, named", [
    (lambda p: p / "nowhere", "no such directory"),
    (lambda p: p, "no results.jsonl"),
])
def test_a_path_that_is_no_run_is_one_line_and_exit_2(runs, tmp_path, make, named):
    bad = make(tmp_path)
    done = subprocess.run([PONDER, "view", str(runs[0]), str(bad), "-o", str(tmp_path / "r.html")], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr == f"error: {bad}: not a run directory ({named})\n"
    assert not (tmp_path / "r.html").exists()


def test_open_hands_the_file_to_the_users_browser(runs, tmp_path):
    """--open goes through Python's webbrowser, which runs $BROWSER when it is set."""
    seen = tmp_path / "opened.txt"
    opener = tmp_path / "opener.py"
    opener.write_text(f"import sys\nopen({str(seen)!r}, 'w').write(sys.argv[1])\n")
    out = tmp_path / "r.html"
    env = {**os.environ, "BROWSER": f"{sys.executable} {opener} %s"}
    done = subprocess.run([PONDER, "view", str(runs[0]), "-o", str(out), "--open"], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert seen.read_text() == out.resolve().as_uri()


def test_a_run_without_a_summary_yet_is_summarised_from_its_records(runs, tmp_path):
    import shutil

    from ponder.app.run.store import RunStore, summarize

    run = shutil.copytree(runs[0], tmp_path / "beam")
    (run / "summary.json").unlink()  # a run still going, or one that crashed
    out = tmp_path / "r.html"
    done = subprocess.run([PONDER, "view", str(run), "-o", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    summary = embedded(out.read_text(), "ponder-data")["runs"][0]["summary"]
    assert summary["accuracy"] == summarize("beam", "beam_search", RunStore(run).records(), 0.0)["accuracy"] == 0.5
    assert summary["problems"] == 4 and summary["strategy"] == "beam_search"


def view(dirs, out: Path) -> Path:
    done = subprocess.run([PONDER, "view", *map(str, dirs), "--output", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="module")
def report(runs, tmp_path_factory):
    return view(runs, tmp_path_factory.mktemp("report") / "report.html")


@contextmanager
def opened(browser, path: Path, fragment: str = ""):
    """The page at `path`, interactive; on leaving, it must have logged no error and asked
    for nothing but its own file."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    problems, requests = [], []
    page.on("console", lambda m: problems.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(f"uncaught: {e}"))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(path.resolve().as_uri() + fragment)
    page.wait_for_selector("html[data-ready='1']")
    try:
        yield page
        assert problems == []
        assert requests == [path.resolve().as_uri()]
    finally:
        context.close()


def records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]


def chosen_path(t: dict) -> set[int]:
    """The chosen nodes and their ancestors, read from the trace JSON itself."""
    parent = {e["target"]: e["source"] for e in t["edges"]}
    out = set()
    for n in t["nodes"]:
        cur = n["id"] if n.get("chosen") else None
        while cur is not None:
            out.add(cur)
            cur = parent.get(cur)
    return out


def open_problem(page, problem: str) -> None:
    page.wait_for_selector(f"#trees[data-ready='{problem}']")


def shown_rows(page) -> int:
    return page.locator("#problem-table tbody tr").count()


@pytest.mark.browser
def test_the_table_matches_the_summary_and_filters_and_sorts(browser, runs, report, tmp_path):
    with opened(browser, report) as page:
        for i, run in enumerate(runs):
            summary = json.loads((run / "summary.json").read_text())
            button = page.locator(f"#runs button[data-run='{i}']")
            assert float(button.get_attribute("data-accuracy")) == summary["accuracy"]
            assert f"accuracy {summary['accuracy']:.3f}" in button.inner_text()
        assert page.locator("#report svg").count() == 1 and "beam_search" in page.inner_text("#report-table")
        beam = records(runs[0])
        assert shown_rows(page) == len(beam) == 4
        page.screenshot(path=tmp_path / "table.png", full_page=True)

        page.check("#f-wrong")
        assert shown_rows(page) == sum(r["correct"] is False for r in beam) == 2
        page.check("#f-errors")
        assert shown_rows(page) == 1 and page.inner_text("#problem-table tbody td:first-child") == "p3"
        page.uncheck("#f-wrong")
        page.uncheck("#f-errors")
        page.fill("#f-text", "p/")
        assert shown_rows(page) == 1
        page.fill("#f-text", "")
        assert shown_rows(page) == 4

        page.click("#problem-table th[data-key='id']")
        ids = page.locator("#problem-table tbody td:first-child").all_inner_texts()
        assert ids == sorted(r["id"] for r in beam)
        page.click("#problem-table th[data-key='id']")
        assert page.locator("#problem-table tbody td:first-child").all_inner_texts() == ids[::-1]

        page.click("#runs button[data-run='1']")  # the cascade's table
        assert page.locator("#problem-table th.desc").count() == 1 and shown_rows(page) == 4
        page.screenshot(path=tmp_path / "table-filtered.png", full_page=True)
    assert (tmp_path / "table.png").stat().st_size > 10_000


@pytest.mark.browser
def test_a_problem_has_one_element_per_trace_node_and_its_chosen_path_marked(browser, runs, report, tmp_path):
    with opened(browser, report) as page:
        page.click("#problem-table tbody tr[data-id='p0']")
        open_problem(page, "p0")
        assert page.evaluate("location.hash") == "#problem=p0"
        for i, run in enumerate(runs):  # side by side: one tree per run
            t = trace(run, "p0")
            col = page.locator(f".tree-col[data-run='{i}']")
            assert col.locator("[data-node-id]").count() == len(t["nodes"])
            chosen = {int(x) for x in col.locator(".node.chosen").evaluate_all("els => els.map(e => e.dataset.nodeId)")}
            assert chosen == chosen_path(t) and len(chosen) > 1

        beam, t = page.locator(".tree-col[data-run='0']"), trace(runs[0], "p0")
        pruned = next(n for n in t["nodes"] if n.get("pruned"))
        beam.locator(f"[data-node-id='{pruned['id']}']").click()
        detail = beam.locator(".detail").inner_text()
        assert pruned["step"].strip() in beam.locator(".detail pre").inner_text() and "pruned" in detail
        assert f"{pruned['tokens']}" in detail and str(pruned["cached_tokens"]) in detail
        page.screenshot(path=tmp_path / "tree.png", full_page=True)

        # collapsing the root's first child hides its subtree and nothing else
        first = next(e["target"] for e in t["edges"] if e["source"] == 0 and any(f["source"] == e["target"] for f in t["edges"]))
        below = [e["target"] for e in t["edges"] if e["source"] == first]
        item = beam.locator(f"li:has(> [data-node-id='{first}'])")
        item.locator("> .fold").click()
        assert not beam.locator(f"[data-node-id='{below[0]}']").is_visible()
        assert beam.locator(f"[data-node-id='{first}']").is_visible()
        item.locator("> .fold").click()
        assert beam.locator(f"[data-node-id='{below[0]}']").is_visible()


@pytest.mark.browser
def test_sub_runs_are_marked_subtrees_and_an_error_marks_where_it_stopped(browser, runs, report, tmp_path):
    with opened(browser, report, "#problem=p0") as page:
        open_problem(page, "p0")
        cascade, t = page.locator(".tree-col[data-run='1']"), trace(runs[1], "p0")
        markers = [n["id"] for n in t["nodes"] if n.get("subrun")]
        assert markers and sorted(int(x) for x in cascade.locator(".node.subrun").evaluate_all("els => els.map(e => e.dataset.nodeId)")) == markers
        assert cascade.locator(f"li.sub:has(> [data-node-id='{markers[0]}']) [data-node-id]").count() > 1
        page.screenshot(path=tmp_path / "subruns.png", full_page=True)

        page.evaluate("location.hash = 'problem=p3'")  # the problem that raised after its first step
        open_problem(page, "p3")
        t = trace(runs[0], "p3")
        leaves = {n["id"] for n in t["nodes"]} - {e["source"] for e in t["edges"]}
        errored = page.locator(".tree-col[data-run='0'] .node.errored").evaluate_all("els => els.map(e => Number(e.dataset.nodeId))")
        assert set(errored) == leaves and "error: RuntimeError" in page.inner_text(".tree-col[data-run='0'] .facts")


@pytest.mark.browser
def test_the_address_opens_a_problem_whose_id_needs_escaping(browser, report, tmp_path):
    with opened(browser, report, "#problem=p%2F2") as page:
        open_problem(page, "p/2")
        assert page.inner_text("#problem-title") == "Problem p/2"
        assert page.locator("#problem-table tbody tr.open").get_attribute("data-id") == "p/2"
        page.screenshot(path=tmp_path / "address.png", full_page=True)


@pytest.mark.browser
def test_a_damaged_and_a_missing_trace_are_named_and_the_rest_renders(browser, runs, tmp_path):
    run = shutil.copytree(runs[0], tmp_path / "beam")
    files = {r["id"]: run / r["trace"] for r in records(run)}
    files["p0"].write_text("{not json")
    files["p1"].unlink()
    with opened(browser, view([run], tmp_path / "r.html"), "#problem=p0") as page:
        open_problem(page, "p0")
        banner = page.inner_text("#damaged")
        assert str(files["p0"]) in banner and str(files["p1"]) in banner and "missing" in banner
        assert shown_rows(page) == 4
        assert str(files["p0"]) in page.inner_text(".tree-col .missing")
        page.evaluate("location.hash = 'problem=p%2F2'")
        open_problem(page, "p/2")
        assert page.locator("[data-node-id]").count() == len(trace(run, "p/2")["nodes"])
        page.screenshot(path=tmp_path / "damaged.png", full_page=True)


@pytest.mark.browser
def test_a_large_run_opens_and_draws_a_tree_from_its_last_chunk(browser, runs, tmp_path):
    """2,000 problems (one real trace copied): the page opens, lists them all and draws the
    last problem's tree (bench/view.py times it)."""
    src = runs[0]
    big = tmp_path / "big"
    (big / "traces").mkdir(parents=True)
    shutil.copy(src / "summary.json", big / "summary.json")
    record = next(r for r in records(src) if r["id"] == "p0")
    body = (src / record["trace"]).read_text()
    with open(big / "results.jsonl", "w") as f:
        for i in range(2000):
            (big / "traces" / f"q{i}.json").write_text(body)
            f.write(json.dumps({**record, "id": f"q{i}", "trace": f"traces/q{i}.json"}) + "\n")
    with opened(browser, view([big], tmp_path / "big.html"), "#problem=q1999") as page:
        open_problem(page, "q1999")
        assert shown_rows(page) == 2000
        assert page.locator("[data-node-id]").count() == len(json.loads(body)["nodes"])
        page.screenshot(path=tmp_path / "large.png")


@pytest.mark.browser
def test_a_run_on_the_engine(engine, tmp_path, request):
    """The run goes first: Playwright's sync API holds this thread's event loop while it runs."""
    import asyncio

    from ponder.app.data.datasets import load
    from ponder.app.run.batch import execute
    from ponder.app.run.run_config import load_run_config

    data = tmp_path / "q.jsonl"
    data.write_text("".join(json.dumps({"id": i, "problem": q, "answer": a}) + "\n" for i, q, a in [("a", "What is 2 + 3?", "5"), ("b", "What is 4 + 4?", "8")]))
    cfg = tmp_path / "engine.yaml"
    cfg.write_text(f"name: engine\nstrategy: {{name: best_of_n, config: {{n: 3, max_tokens: 48}}}}\ndataset: {{name: \"{data}\"}}\noutput_dir: {tmp_path / 'runs'}\n")
    config = load_run_config(str(cfg), [])
    done = asyncio.run(execute(config, load(config.dataset), progress=False, backend=engine))
    run = done.directory
    with opened(request.getfixturevalue("browser"), view([run], tmp_path / "engine.html"), "#problem=b") as page:
        open_problem(page, "b")
        t = trace(run, "b")
        assert page.locator("[data-node-id]").count() == len(t["nodes"]) == 4  # the prompt and 3 samples
        chosen = {int(x) for x in page.locator("#trees .node.chosen").evaluate_all("els => els.map(e => e.dataset.nodeId)")}
        assert chosen == chosen_path(t) and len(chosen) == 2
        sample = next(n for n in t["nodes"] if n["id"] == 2)
        page.locator("[data-node-id='2']").click()
        assert page.locator(".detail pre").inner_text() == sample["step"]
        summary = json.loads((run / "summary.json").read_text())
        assert float(page.get_attribute("#runs button", "data-accuracy")) == summary["accuracy"]
        page.screenshot(path=tmp_path / "engine.png", full_page=True)
