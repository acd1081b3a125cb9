"""The value model's three figures on evaluation problems, with 95% bootstrap intervals.

Inputs are run directories, so every figure is re-read from what was sampled:
- `--samples`: a best-of-8 majority run on evaluation seeds (the demo's majority config with
  another dataset); its samples are scored by the value model once (cached beside the run);
- `--search`: a run of a step-level search that used the value scorer on the same problems.
Problems whose question is in the value folder's train_questions.jsonl are left out (counted).

Figures:
1. AUC of the value of whole samples (the final answer) against their correctness, pooled over
   problems and within each problem (what a vote uses), and of each step prefix against its
   sample's correctness per step depth; problems are resampled.
2. Value-weighted best-of-8 against majority@8 on the same eight samples (paired).
3. The search against value-weighted best-of-8: accuracy (paired by problem) and generated
   tokens per problem (ratio of means; problems resampled as pairs).

Run (the samples, the search and the value scores need engines: under the engine lock):
    flock /tmp/ponder-engine.lock .venv/bin/ponder run configs/value/eval_majority.yaml --limit 300
    flock /tmp/ponder-engine.lock .venv/bin/ponder run configs/value/eval_beam.yaml --limit 240
    flock /tmp/ponder-engine.lock .venv/bin/python bench/value.py --samples runs/value/eval_majority \
        --model smollm2-135m-instruct-value --search runs/value/eval_beam
Another head on the same backbone (`--model FOLDER`) reuses the cached hidden states: no engine.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
from pathlib import Path
from typing import get_args

from ponder.app.data.datasets import DatasetConfig, load  # noqa: E402
from ponder.app.run.stats import bootstrap, bootstrap_mean, paired_difference  # noqa: E402
from ponder.app.run.store import RunStore  # noqa: E402
from ponder.app.value.card import read_questions  # noqa: E402
from ponder.app.value.labels import Trajectory, read_samples  # noqa: E402
from ponder.app.value.metrics import auc  # noqa: E402
from ponder.records.result import Candidate  # noqa: E402
from ponder.strategies.base import Aggregate  # noqa: E402
from ponder.verifiers.value_model import find  # noqa: E402
from ponder.verifiers.voting import aggregate, select  # noqa: E402


def evaluation_problems(run: Path, folder: Path) -> tuple[list, int]:
    import yaml

    cfg = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))
    done = {str(r["id"]) for r in RunStore(run).records() if not r.get("error")}
    problems = [p for p in load(DatasetConfig(**cfg["dataset"])) if p.id in done]
    seen = read_questions(folder)
    kept = [p for p in problems if p.question not in seen]
    return kept, len(problems) - len(kept)


def value_scores(samples: list[Trajectory], model: str, run: Path) -> list[list[float]]:
    """Every step prefix's value for every sample. The hidden states are cached beside the run
    (per backbone and prompt layout), so another head on the same backbone needs no engine."""
    from ponder.app.value.features import cached, step_states
    from ponder.app.value.train import sample_keys
    from ponder.backends.models import resolve
    from ponder.backends.tokenizer import HFTokenizer
    from ponder.verifiers.hidden_states import HiddenStates
    from ponder.verifiers.value_model import load as load_value, probabilities

    spec, head = load_value(model)
    layout = spec.model_dump(include={"backbone", "system", "template", "chat", "separator"})
    digest = hashlib.sha256(json.dumps(layout, sort_keys=True).encode()).hexdigest()[:10]

    def compute(missing: list[int]) -> list:
        states = HiddenStates(spec.backbone, max_model_len=1024)
        try:
            return step_states(states, HFTokenizer.load(resolve(spec.backbone)), spec, [samples[i] for i in missing], 64, 1024)
        finally:
            states.close()

    rows = cached(run / f"value-states-{digest}.pt", compute, sample_keys(samples))
    return [probabilities(head, r) for r in rows]


def pooled_auc(units: list[list[tuple[float, bool]]]) -> float:
    pairs = [x for u in units for x in u]
    return auc([s for s, _ in pairs], [c for _, c in pairs])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", required=True, help="best-of-8 majority run directory on evaluation problems")
    ap.add_argument("--model", default="smollm2-135m-instruct-value", help="value folder or shipped name")
    ap.add_argument("--search", action="append", default=[], help="run directory of a search with the value scorer (repeatable)")
    ap.add_argument("--aggregate", default="mean", choices=get_args(Aggregate),
                    help="a sample's value from its step values, as best_of_n's `aggregate` (default: their mean, "
                         "the best of last, mean and min in grouped cross-validation on the training problems)")
    ap.add_argument("--out", help="write the figures as JSON here")
    args = ap.parse_args()
    run, folder = Path(args.samples), find(args.model)
    problems, left_out = evaluation_problems(run, folder)
    samples = asyncio.run(read_samples(run, problems, "\n\n"))
    scores = value_scores(samples, str(folder), run)
    by_problem: dict[str, list[tuple[Trajectory, list[float]]]] = {}
    for t, s in zip(samples, scores):
        by_problem.setdefault(t.problem_id, []).append((t, s))
    ids = [p.id for p in problems if p.id in by_problem]
    out: dict = {"problems": len(ids), "left_out": left_out, "samples": len(samples), "model": str(folder), "aggregate": args.aggregate}
    print(f"{len(ids)} evaluation problems ({left_out} left out: their question is among the training questions), {len(samples)} samples")

    # 1. AUC: whole samples, then each step depth
    final = [[(aggregate(s, args.aggregate), t.correct) for t, s in by_problem[i]] for i in ids]
    out["auc_final"] = bootstrap(final, pooled_auc).fields("auc")
    print(f"AUC of the sample's value ({args.aggregate}) {bootstrap(final, pooled_auc)}")
    # the vote ranks one problem's samples: the AUC within each problem that has right and wrong ones
    mixed = [u for u in final if 0 < sum(c for _, c in u) < len(u)]
    if mixed:
        within = bootstrap(mixed, lambda us: sum(pooled_auc([u]) for u in us) / len(us))
        out["auc_within_problem"] = {**within.fields("auc"), "problems": len(mixed)}
        print(f"AUC within a problem ({len(mixed)} with right and wrong samples) {within}")
    out["auc_by_depth"] = {}
    depth = 0
    while True:
        units = [[(s[depth], t.correct) for t, s in by_problem[i] if len(s) > depth] for i in ids]
        flat = [c for u in units for _, c in u]
        if min(sum(flat), len(flat) - sum(flat)) < 30:  # too few right or wrong prefixes this deep for an interval
            break
        iv = bootstrap(units, pooled_auc)
        out["auc_by_depth"][depth] = {**iv.fields("auc"), "prefixes": len(flat)}
        print(f"AUC at step {depth:<2}  ({len(flat):4} prefixes)  {iv}")
        depth += 1

    # 2. value-weighted best-of-8 against majority@8 on the same samples
    weighted, best, majority, covered = [], [], [], []
    for i in ids:
        cands = [Candidate(text="", answer=t.answer, score=aggregate(s, args.aggregate)) for t, s in by_problem[i]]
        right = {t.answer: t.correct for t, _ in by_problem[i]}
        weighted.append(right[select(cands, "weighted").answer])
        best.append(right[select(cands, "best").answer])
        majority.append(right[select(cands, "majority").answer])
        covered.append(any(right.values()))
    for name, xs in (("majority@8", majority), ("weighted@8", weighted), ("best-value@8", best), ("pass@8", covered)):
        out[name] = bootstrap_mean(xs).fields("accuracy")
        print(f"{name:14} {bootstrap_mean(xs)}")
    out["weighted_minus_majority"] = paired_difference(weighted, majority).fields("difference")
    out["best_minus_majority"] = paired_difference(best, majority).fields("difference")
    print(f"weighted@8 - majority@8 (paired)    {paired_difference(weighted, majority)}")
    print(f"best-value@8 - majority@8 (paired)  {paired_difference(best, majority)}")

    # 3. a search with the value against value-weighted best-of-8
    sampled = {str(r["id"]): r for r in RunStore(run).records()}
    for path in map(Path, args.search):
        got = {str(r["id"]): r for r in RunStore(path).records()}
        both = [i for i in ids if i in got]
        acc = [bool(got[i]["correct"]) for i in both]
        base = [weighted[ids.index(i)] for i in both]
        pairs = [(got[i]["tokens"]["generated"], sampled[i]["tokens"]["generated"]) for i in both]
        ratio = bootstrap(pairs, lambda ps: sum(a for a, _ in ps) / sum(b for _, b in ps))
        row = {
            "problems": len(both), **bootstrap_mean(acc).fields("accuracy"),
            **paired_difference(acc, base).fields("minus_weighted"), **ratio.fields("token_ratio"),
            "generated_per_problem": round(sum(a for a, _ in pairs) / len(pairs), 1),
            "best_of_8_generated_per_problem": round(sum(b for _, b in pairs) / len(pairs), 1),
            "verifier_calls": sum(got[i]["verifier_calls"] for i in both),
        }
        out.setdefault("search", {})[str(path)] = row
        print(f"{path.name}: {len(both)} problems, accuracy {bootstrap_mean(acc)}, minus weighted@8 (paired) "
              f"{paired_difference(acc, base)}, generated tokens {row['generated_per_problem']} per problem = {ratio} x best-of-8's")
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
