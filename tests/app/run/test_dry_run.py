"""`ponder run --dry-run`: every config in configs/ checks out without an engine; bad input
ends in exit 2 and one line; nothing is written and no engine library is imported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from ponder.app.run.dry_run import dry_run, local_model
from ponder.app.run.run_config import load_run_config
from ponder.cli import app

ROOT = Path(__file__).resolve().parents[3]
ALL_CONFIGS = sorted((ROOT / "configs").rglob("*.yaml"))
# configs/ also holds the configs of other commands; a run config is one with a `strategy:`
OTHER_COMMANDS = {"sweeps/chain_sum.yaml": "ponder sweep", "value/smollm2-135m-instruct-value.yaml": "ponder value train"}
CONFIGS = [p for p in ALL_CONFIGS if "strategy" in yaml.safe_load(p.read_text())]


def ponder(*args: str):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def test_configs_are_found():
    names = {p.relative_to(ROOT / "configs").as_posix() for p in CONFIGS}
    assert {"demo/greedy.yaml", "custom/until_agree.yaml", "math500_best_of_n.yaml"} <= names
    others = {p.relative_to(ROOT / "configs").as_posix() for p in ALL_CONFIGS} - names
    assert others == set(OTHER_COMMANDS), "a config without `strategy:` is not a run config: name the command that reads it in OTHER_COMMANDS"


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.relative_to(ROOT / "configs").as_posix())
def test_every_shipped_config_passes_the_dry_run(config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the run directory would be runs/NAME here: it must not appear
    done = ponder("run", str(config), "--dry-run")
    assert done.exit_code == 0, done.output
    lines = done.stdout.splitlines()
    assert lines[0] == f"{config}: valid" and lines[-1] == "dry run: nothing started"
    (count,) = [line for line in lines if line.startswith("  dataset ")]
    assert int(count.rsplit(": ", 1)[1].split()[0]) > 0
    (policy,) = [line for line in lines if line.startswith("  policy model: ")]
    # the embedded model is provisioned on this machine (make model); the GPU recipes' hub models are not
    assert ("local: " in policy) if "smollm2" in policy else ("not local (a hub id): not checked" in policy)
    assert list(tmp_path.iterdir()) == []


def test_what_would_run(tmp_path):
    (run,) = dry_run([str(ROOT / "configs/demo/majority.yaml")], ["output_dir=" + str(tmp_path)], limit=10, shard="1/2")
    assert run.problems == 6 and run.directory  # shards split by id: 6 of these 10 fall to shard 1 == tmp_path / "majority-shard-1-of-2" and run.answered == 0
    assert run.lines()[1] == (f"  run majority: strategy best_of_n(n=8, temperature=0.4, selection=majority, max_tokens=160), "
                              f"no scorer, into {tmp_path}/majority-shard-1-of-2")
    assert run.models[0].found == local_model("smollm2-135m-instruct") != None  # noqa: E711


def write(tmp_path: Path, text: str, rows: int = 3) -> Path:
    data = tmp_path / "q.jsonl"
    data.write_text("".join(json.dumps({"id": f"p{i}", "problem": f"What is {i} + 1?", "answer": str(i + 1)}) + "\n" for i in range(rows)))
    path = tmp_path / "c.yaml"
    path.write_text(text.replace("DATA", str(data)).replace("OUT", str(tmp_path / "runs")))
    return path


BASE = """\
name: d
backend: {{kind: vllm, model: {model}}}
strategy: {{name: best_of_n, config: {{n: 2}}}}
dataset: {{name: "DATA"}}
output_dir: "OUT"
"""


@pytest.mark.parametrize("model, expected", [
    ("./no/such/folder", "model './no/such/folder' not found: not a local folder"),
    ("not-a-model", "model 'not-a-model' not found"),
])
def test_a_model_that_is_not_there_is_one_line(tmp_path, model, expected):
    done = ponder("run", str(write(tmp_path, BASE.format(model=model))), "--dry-run")
    assert done.exit_code == 2 and done.stdout == ""
    assert done.stderr.startswith(f"error: {expected}") and done.stderr.count("\n") == 1


def test_a_model_folder_without_config_json_is_refused(tmp_path):
    (tmp_path / "m").mkdir()
    done = ponder("run", str(write(tmp_path, BASE.format(model=tmp_path / "m"))), "--dry-run")
    assert done.exit_code == 2 and done.stderr == f"error: model folder {tmp_path / 'm'} has no config.json (expected a Hugging Face model folder)\n"


def test_a_hub_model_in_the_cache_is_local(tmp_path, monkeypatch):
    monkeypatch.setenv("PONDER_HOME", str(tmp_path / "home"))
    snap = tmp_path / "home" / "hub" / "models--org--m" / "snapshots" / "abc"
    snap.mkdir(parents=True)
    assert local_model("org/m") is None  # a snapshot without config.json is not a model
    (snap / "config.json").write_text("{}")
    assert local_model("org/m") == snap
    (run,) = dry_run([str(write(tmp_path, BASE.format(model="org/m")))])
    assert run.models[0].line() == f"  policy model: org/m (vllm) local: {snap}"


@pytest.mark.parametrize("edit, expected", [
    (lambda t: t + "colour: red\n", "c.yaml: colour: unknown key"),
    (lambda t: t.replace("n: 2", "n: 0"), "c.yaml: strategy"),
    (lambda t: t.replace('"DATA"', '"missing.jsonl"'), "dataset 'missing.jsonl': not a built-in name"),
    (lambda t: t + "imports: [nowhere_module_xyz]\n", "c.yaml: imports: "),
])
def test_bad_config_is_exit_2_and_one_line(tmp_path, edit, expected):
    done = ponder("run", str(write(tmp_path, edit(BASE.format(model="smollm2-135m-instruct")))), "--dry-run")
    assert done.exit_code == 2 and done.stdout == ""
    assert done.stderr.startswith("error: ") and expected in done.stderr and done.stderr.count("\n") == 1


def test_an_existing_run_needs_resume_and_counts_what_it_would_skip(tmp_path):
    path = write(tmp_path, BASE.format(model="smollm2-135m-instruct"))
    run = tmp_path / "runs" / "d"
    done = ponder("run", str(path), "--dry-run")
    assert done.exit_code == 0 and f"into {run}" in done.stdout
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump(load_run_config(path).model_dump(mode="json")))
    (run / "results.jsonl").write_text(json.dumps({"id": "p1", "error": None}) + "\n" + json.dumps({"id": "p2", "error": "boom"}) + "\n")
    done = ponder("run", str(path), "--dry-run")
    assert done.exit_code == 2 and done.stderr == f"error: {run} already holds results: pass --resume to continue it, or choose another name\n"
    done = ponder("run", str(path), "--dry-run", "--resume")
    assert done.exit_code == 0 and f"resume {run} (1 answered)" in done.stdout  # the errored one is retried
    done = ponder("run", str(path), "--dry-run", "--resume", "--set", "seed=3")
    assert done.exit_code == 2 and done.stderr == f"error: cannot resume {run}: its config differs in seed: 0 -> 3 (results would mix two experiments; choose another name)\n"


def test_configs_run_together_are_checked_together(tmp_path):
    path = write(tmp_path, BASE.format(model="smollm2-135m-instruct"))
    done = ponder("run", str(path), str(path), "--dry-run")
    assert done.exit_code == 2 and done.stderr == "error: two configs write to one run directory: give each its own name\n"


def test_no_engine_library_is_imported():
    code = ("import sys\nfrom ponder.cli import app\ntry:\n    app(['run', 'configs/aime24_trim.yaml', 'configs/demo/beam_search.yaml', '--dry-run'])\n"
            "except SystemExit as e:\n    print('exit', e.code)\nprint(sorted(m for m in ('torch', 'vllm', 'transformers') if m in sys.modules))")
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    # two configs on different engines: refused, after both were checked
    assert p.stderr == "error: configs run together share one engine: their backend sections must be equal\n"
    assert p.stdout.splitlines()[-2:] == ["exit 2", "[]"]
