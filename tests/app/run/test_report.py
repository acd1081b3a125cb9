"""Every accuracy ponder reports carries the same 95% bootstrap interval (app/run/stats.py): the
run summary, the line `ponder run` ends with, the progress bar, `ponder report`'s table and
plot, and `ponder merge`. Runs here are scripted; the CLI runs in-process."""

from __future__ import annotations

import io
import json

import pytest
from matplotlib.container import ErrorbarContainer

from ponder.app.run.progress import Progress
from ponder.app.run.report import figure, paired, read_summaries, table
from ponder.app.run.stats import bootstrap_mean, interval_of, paired_difference
from ponder.app.run.store import RunStore

# test_shard's script: every fifth problem (i % 5 == 0) is wrong in all samples, the others right
# by majority: 32 of 40 right
INTERVAL = bootstrap_mean([True] * 32 + [False] * 8)


def test_summary_run_line_and_report_carry_the_interval(cli, config, tmp_path):  # noqa: F811
    done = cli("run", str(config), "-q", "-v")
    assert done.exit_code == 0, done.output
    run = tmp_path / "runs" / "split"
    summary = json.loads((run / "summary.json").read_text())
    assert INTERVAL.lo < 0.8 < INTERVAL.hi and str(INTERVAL) == "0.800 [0.675, 0.925]"
    assert (summary["accuracy"], summary["accuracy_lo"], summary["accuracy_hi"]) == (0.8, 0.675, 0.925)
    cover = interval_of(summary, "coverage")  # best-of-3 covers what any sample got right: 32 of 40 too
    assert cover is not None and summary["coverage_lo"] == cover.lo and cover.lo < cover.point <= cover.hi
    assert "accuracy 0.800 [0.675, 0.925]," in done.stdout

    rep = cli("report", str(run), "--plot", str(tmp_path / "p.png"))
    assert rep.exit_code == 0, rep.output
    head, _, line, plot = rep.stdout.splitlines()
    assert "accuracy [95% CI]" in head and "coverage [95% CI]" in head
    assert " 0.800 [0.675, 0.925] " in line and plot == f"plot: {tmp_path / 'p.png'}"
    assert (tmp_path / "p.png").stat().st_size > 1000


def test_a_summary_from_before_intervals_gets_them_from_its_results(cli, config, tmp_path):  # noqa: F811
    assert cli("run", str(config), "-q", "-v").exit_code == 0
    run = tmp_path / "runs" / "split"
    old = json.loads((run / "summary.json").read_text())
    for key in ("accuracy_lo", "accuracy_hi", "coverage_lo", "coverage_hi"):
        del old[key]
    (run / "summary.json").write_text(json.dumps(old))
    (row,) = read_summaries([run])
    assert (row["accuracy_lo"], row["accuracy_hi"]) == (0.675, 0.925)
    assert row["wall_s"] == old["wall_s"]  # the rest is the summary as written


def test_ungraded_runs_show_no_interval(tmp_path):
    summary = {"name": "free", "strategy": "best_of_n", "problems": 3, "accuracy": None, "accuracy_lo": None,
               "accuracy_hi": None, "coverage": None, "generated_per_problem": 10.0, "verifier_calls": 0,
               "cache_hit_rate": 0.0, "wall_s": 1.0}
    line = table([summary]).splitlines()[2]
    assert line.split()[:3] == ["free", "best_of_n", "3"] and line.split()[3:5] == ["-", "-"]


def test_the_plot_draws_each_interval_as_an_error_bar():
    runs = [
        {"name": "a", "strategy": "best_of_n", "accuracy": 0.5, "accuracy_lo": 0.3, "accuracy_hi": 0.7, "generated_per_problem": 100.0},
        {"name": "b", "strategy": "best_of_n", "accuracy": 0.6, "accuracy_lo": 0.45, "accuracy_hi": 0.8, "generated_per_problem": 400.0,
         "coverage": 0.9, "coverage_lo": 0.8, "coverage_hi": 1.0},
    ]
    fig = figure(runs)
    bars = [c for c in fig.axes[0].containers if isinstance(c, ErrorbarContainer)]
    assert len(bars) == 2  # the strategy's line and the coverage points
    (accuracy_segments,) = bars[0].lines[2]
    spans = [(seg[0][1], seg[1][1]) for seg in accuracy_segments.get_segments()]
    assert spans == [(0.3, 0.7), (0.45, 0.8)]
    (coverage_segments,) = bars[1].lines[2]
    assert [(seg[0][1], seg[1][1]) for seg in coverage_segments.get_segments()] == [(0.8, 1.0)]


def test_the_progress_bar_ends_on_the_summary_interval():
    stream = io.StringIO()
    outcomes = [True] * 32 + [False] * 8

    class Ledger:
        generated_tokens = prompt_tokens = cached_tokens = 0

    with Progress(len(outcomes), 0, enabled=True, stream=stream) as bar:
        for i, ok in enumerate(outcomes):
            bar.update({"correct": ok, "error": None}, Ledger())
    assert bar.accuracy() == "acc 0.800 [0.675, 0.925]"
    assert "acc 0.800 [0.675, 0.925]" in stream.getvalue()


def test_merge_prints_and_writes_the_interval(cli, config, tmp_path):  # noqa: F811
    for i in range(2):
        assert cli("run", str(config), "-q", "-v", "--shard", f"{i}/2").exit_code == 0
    shards = [str(tmp_path / "runs" / f"split-shard-{i}-of-2") for i in range(2)]
    out = tmp_path / "merged"
    done = cli("merge", *shards, "-o", str(out))
    assert done.stdout.strip() == f"{out}: 40 problems from 2 runs, accuracy 0.800 [0.675, 0.925]"
    merged = json.loads((out / "summary.json").read_text())
    assert (merged["accuracy_lo"], merged["accuracy_hi"]) == (0.675, 0.925)


def write_run(directory, outcomes: dict[str, bool | None]) -> None:
    """A finished run directory holding one record per problem."""
    store = RunStore(directory)
    store.traces.mkdir(parents=True)
    records = [{"id": pid, "answer": "1", "reference": None if ok is None else "1", "correct": ok, "error": None, "strategy": "best_of_n",
                "tokens": {"generated": 10, "prompt": 5, "cached": 0, "aborted": 0}, "requests": 1, "verifier_calls": 0,
                "verifier_tokens": 0, "wall_s": 0.1, "candidates": [], "metrics": {}, "trace": None} for pid, ok in outcomes.items()]
    store.results.write_text("".join(json.dumps(r) + "\n" for r in records))
    store.write_summary(directory.name, "best_of_n", records, 1.0)


def test_report_pairs_each_run_with_the_first_on_their_common_problems(tmp_path):
    ids = [f"p{i}" for i in range(30)]
    write_run(tmp_path / "base", {i: n < 10 for n, i in enumerate(ids)})  # 10 of 30
    write_run(tmp_path / "better", {i: n < 16 for n, i in enumerate(ids)})  # the same 10 and 6 more
    write_run(tmp_path / "half", {i: n < 5 for n, i in enumerate(ids[:20])})  # 20 of the problems only
    write_run(tmp_path / "other", {"q1": True})
    lines = paired(read_summaries([tmp_path / d for d in ("base", "better", "half", "other")]))
    gain = paired_difference([n < 16 for n in range(30)], [n < 10 for n in range(30)])
    assert gain.point == pytest.approx(0.2) and gain.lo > 0  # separate intervals would overlap
    assert bootstrap_mean([n < 16 for n in range(30)]).lo < bootstrap_mean([n < 10 for n in range(30)]).hi
    loss = paired_difference([n < 5 for n in range(20)], [n < 10 for n in range(20)])
    assert lines == [
        "against base, problem by problem (paired 95% CI):",
        f"  better: +0.200 [{gain.lo:+.3f}, {gain.hi:+.3f}] on 30 problems",
        f"  half: -0.250 [{loss.lo:+.3f}, {loss.hi:+.3f}] on 20 problems",
        "  other: no graded problem in common",
    ]
    assert paired(read_summaries([tmp_path / "base"])) == []
