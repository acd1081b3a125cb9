"""Sharded batch runs through the real command line (`ponder run --shard`, `ponder merge`,
`ponder report`) on the scripted backend: two shards merged are the unsharded run, id for id."""

from __future__ import annotations

import json

import pytest

from ponder.app.run.shard import Shard
from ponder.app.run.stats import text

from ..runs import files, records, row, steps


def test_two_shards_merged_are_the_unsharded_run_id_for_id(cli, config, tmp_path):
    runs = tmp_path / "runs"
    assert cli("run", str(config), "-q", "-v").exit_code == 0
    for i in (0, 1):
        done = cli("run", str(config), "-q", "-v", "--shard", f"{i}/2")
        assert done.exit_code == 0, done.output
        assert f"{runs}/split-shard-{i}-of-2: " in done.stdout
    whole, shards = runs / "split", [runs / "split-shard-0-of-2", runs / "split-shard-1-of-2"]
    parts = [records(s) for s in shards]
    assert parts[0] and parts[1] and not set(parts[0]) & set(parts[1])  # a split, each problem once
    assert [json.loads((s / "summary.json").read_text())["shard"] for s in shards] == [{"index": 0, "count": 2}, {"index": 1, "count": 2}]
    before = files(*shards)

    merged = tmp_path / "merged" / "split"
    done = cli("merge", str(shards[1]), str(shards[0]), "--output", str(merged))
    assert done.exit_code == 0, done.output
    assert done.stdout.strip() == f"{merged}: 40 problems from 2 runs, accuracy 0.800 [0.675, 0.925]" and done.stderr == ""

    one, joined = records(whole), records(merged)
    assert sorted(joined) == sorted(one) == [f"q{i:02d}" for i in range(40)]
    for pid, r in one.items():
        m = joined[pid]
        assert (m["answer"], m["correct"], m["candidates"], m["error"]) == (r["answer"], r["correct"], r["candidates"], r["error"]), pid
        # cached prompt tokens depend on which problems ran before on the same engine: not compared
        assert (m["tokens"]["generated"], m["tokens"]["prompt"], m["tokens"]["aborted"], m["requests"], m["verifier_calls"]) == \
            (r["tokens"]["generated"], r["tokens"]["prompt"], r["tokens"]["aborted"], r["requests"], r["verifier_calls"]), pid
        assert steps(merged / m["trace"]) == steps(whole / r["trace"]), pid
    s_one, s_merged = (json.loads((d / "summary.json").read_text()) for d in (whole, merged))
    for key in ("name", "strategy", "problems", "errors", "accuracy", "accuracy_lo", "accuracy_hi", "coverage", "generated_per_problem", "verifier_calls"):
        assert s_merged[key] == s_one[key], key
    assert {k: s_merged["tokens"][k] for k in ("generated", "prompt", "aborted")} == {k: s_one["tokens"][k] for k in ("generated", "prompt", "aborted")}
    assert s_merged["shards"] == {"count": 2, "merged": [0, 1]} and s_merged["merged_from"] == [str(s) for s in shards]

    # report: the shards as one row, equal to the unsharded run's and to the merged run's
    report = cli("report", str(whole), *map(str, shards), str(merged), "--plot", str(tmp_path / "plot.png"))
    assert report.exit_code == 0, report.output
    head, rule, *rows, plot = report.stdout.splitlines()
    rows, pairs = rows[:3], rows[3:]
    assert [row(x)[0] for x in rows] == ["split", "split [2/2 shards]", "split"] and plot.startswith("plot: ")
    assert pairs == ["against split, problem by problem (paired 95% CI):",  # the same answers: no difference
                     "  split [2/2 shards]: +0.000 [+0.000, +0.000] on 40 problems", "  split: +0.000 [+0.000, +0.000] on 40 problems"]
    assert row(rows[0])[1] == row(rows[1])[1] == row(rows[2])[1] == ["40", "0.800 [0.675, 0.925]", text(s_one, "coverage"), f"{s_one['generated_per_problem']:.1f}", "0"]
    assert files(*shards) == before  # merge and report only read the shards

    # the merged run resumes like an unsharded one: every problem answered before
    again = cli("run", str(config), "-q", "-v", "--resume", "--set", f"output_dir={merged.parent}")
    assert again.exit_code == 0, again.output
    assert again.stdout.startswith(f"{merged}: 40 problems (40 from before)")
    assert records(merged) == joined and cli.built[-1].stats().requests == 0


def test_shards_of_different_experiments_or_the_same_shard_twice_are_refused(cli, config, tmp_path):
    runs, other = tmp_path / "runs", tmp_path / "other"
    assert cli("run", str(config), "-q", "-v", "--shard", "0/2").exit_code == 0
    assert cli("run", str(config), "-q", "-v", "--shard", "1/2", "--set", "seed=1", "--set", f"output_dir={other}").exit_code == 0
    zero, one = runs / "split-shard-0-of-2", other / "split-shard-1-of-2"
    for args in (["merge", str(zero), str(one), "-o", str(tmp_path / "m")], ["report", str(zero), str(one)]):
        done = cli(*args)
        assert done.exit_code == 2 and done.stdout == ""
        assert done.stderr == f"error: cannot merge {zero} and {one}: their configs differ in seed: 0 -> 1\n"
    twice = cli("merge", str(zero), str(zero), "-o", str(tmp_path / "m"))
    assert twice.exit_code == 2 and twice.stderr.startswith(f"error: cannot merge {zero} and {zero}: both hold problem ")
    assert not (tmp_path / "m").exists()

    alone = cli("merge", str(zero), "-o", str(tmp_path / "m"))
    assert alone.exit_code == 0 and alone.stderr == "warning: shard(s) 1/2 not merged: their problems are missing\n"
    existing = cli("merge", str(zero), "-o", str(tmp_path / "m"))
    assert existing.exit_code == 2 and existing.stderr == f"error: --output {tmp_path / 'm'}: already exists; merge writes a new run directory\n"


@pytest.mark.parametrize("value", ["2/2", "1/0", "a/b", "1", "-1/2", "0/2/4"])
def test_a_bad_shard_is_one_line_naming_the_option(cli, config, tmp_path, value):
    done = cli("run", str(config), "-q", "-v", "--shard", value)
    assert done.exit_code == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith("error: --shard: expected i/N with 0 <= i < N") and value in line
    assert not (tmp_path / "runs").exists() and cli.built == []


def test_shards_split_by_a_hash_of_the_id_that_no_process_salts():
    ids = [f"q{i:02d}" for i in range(12)]
    # fixed here so that a change to the rule (which would mix up the shards of runs already
    # under way on other machines) fails; Python's hash() of a str would differ per process
    assert [next(i for i in range(3) if Shard(i, 3).holds(x)) for x in ids] == [1, 0, 2, 1, 0, 0, 2, 1, 2, 2, 1, 0]
    assert all(sum(Shard(i, 5).holds(x) for i in range(5)) == 1 for x in ids)


def test_shards_on_a_real_server_merge_into_one_run(tmp_path, vllm_server):
    """`ponder run --shard` as a user runs it, twice against the session's vLLM server (the
    scale-out path: each shard a process of its own), then merged."""
    from ...commands import ponder

    data = tmp_path / "sums.jsonl"
    data.write_text("".join(json.dumps({"id": f"s{i}", "problem": f"What is {i} + {i}?", "answer": str(2 * i)}) + "\n" for i in range(6)))
    config = tmp_path / "real.yaml"
    config.write_text(
        f"name: real\nbackend: {{kind: openai, endpoints: ['{vllm_server[0]}'], model: smollm2-135m-instruct}}\n"
        f"strategy: {{name: best_of_n, config: {{n: 2, max_tokens: 24}}}}\ndataset: {{name: \"{data}\"}}\noutput_dir: {tmp_path / 'runs'}\n"
    )
    shards = [tmp_path / "runs" / f"real-shard-{i}-of-2" for i in (0, 1)]
    for i, shard in enumerate(shards):
        p = ponder("run", str(config), "--shard", f"{i}/2", "-q")
        assert p.returncode == 0, p.stderr[-3000:]
        assert p.stdout.startswith(f"{shard}: {len(records(shard))} problems (0 from before)")
    p = ponder("merge", *map(str, shards), "--output", str(tmp_path / "merged"))
    assert p.returncode == 0, p.stderr
    merged = records(tmp_path / "merged")
    assert sorted(merged) == [f"s{i}" for i in range(6)] and merged == {**records(shards[0]), **records(shards[1])}
    totals = [json.loads((d / "summary.json").read_text())["tokens"]["generated"] for d in (*shards, tmp_path / "merged")]
    assert totals[2] == totals[0] + totals[1] > 0
    assert all((tmp_path / "merged" / r["trace"]).is_file() for r in merged.values())
