"""`ponder view` without a browser: the marks each trace node gets, the file the command
writes (self-contained, trees compressed in chunks), and its errors. The page itself is tested
in a real browser in test_view_browser.py."""

from __future__ import annotations

import base64
import gzip
import html
import json
import re
import os
import subprocess
import sys

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
    assert all(r["id"] in unpack([chunks[r["chunk"]]]) for r in rows)


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
