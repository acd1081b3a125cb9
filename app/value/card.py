"""What a value folder says about its training: metrics.json, card.md, calibration.png and
train_questions.jsonl (so evaluations can leave out every question the head has seen)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable


def write_questions(folder: Path, questions: Iterable[str]) -> int:
    unique = sorted(set(questions))
    with (folder / "train_questions.jsonl").open("w", encoding="utf-8") as f:
        for q in unique:
            f.write(json.dumps({"question": q}) + "\n")
    return len(unique)


def read_questions(folder: Path) -> set[str]:
    path = folder / "train_questions.jsonl"
    if not path.is_file():
        raise ValueError(f"{path}: missing (a value folder lists the questions it was trained on)")
    return {json.loads(line)["question"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}


def plot_calibration(path: Path, bins: list[dict[str, float]], title: str) -> bool:
    """The reliability diagram; False (and no file) where matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1)
    ax.plot([b["predicted"] for b in bins], [b["observed"] for b in bins], marker="o")
    for b in bins:
        ax.annotate(str(b["count"]), (b["predicted"], b["observed"]), fontsize=7, xytext=(3, -8), textcoords="offset points")
    ax.set(xlabel="predicted value", ylabel="share right", title=title, xlim=(0, 1), ylim=(0, 1))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def write_card(folder: Path, facts: dict[str, Any]) -> None:
    (folder / "metrics.json").write_text(json.dumps(facts, indent=2) + "\n", encoding="utf-8")
    v, t = facts["validation"], facts["training"]
    depth = ", ".join(f"{d}: {x['auc']}" for d, x in v["auc_by_depth"].items() if x["auc"] is not None)
    aggregates = ", ".join(f"{how} {x}" for how, x in v["auc_by_aggregate"].items())
    lines = [
        f"# {facts['name']}", "",
        f"A {facts['head']['kind']} value head on the last hidden state of `{facts['backbone']}`, fitted by "
        "`ponder value train` on the policy's own samples.", "",
        f"- data: `{facts['dataset']}` ({facts['problems']} problems, {facts['questions']} distinct questions, listed "
        "in train_questions.jsonl: evaluate on other questions)",
        f"- rollouts: {facts['rollouts']['n']} per problem, temperature {facts['rollouts']['temperature']}, "
        f"max {facts['rollouts']['max_tokens']} tokens, sampling seed {facts['seed']}",
        f"- labels: {facts['labels']}; {facts['samples']} samples ({facts['right']} right), {facts['rows']} step prefixes",
        f"- fit: L-BFGS, ridge {facts['fit']['l2']}, {facts['fit']['max_iter']} iterations, seed {facts['fit']['seed']}; "
        f"validation: {facts['validation_problems']} problems ({facts['validation_questions']} questions) held out whole, "
        "split by question; the head in this folder is then fitted again on every problem",
        f"- validation: AUC of whole samples {v['auc_final']}, of every prefix {v['auc_steps']}, Brier {v['brier_final']} "
        f"({v['samples']} samples, {v['right']} right); AUC of the final head on its training samples {t['auc_final']}",
        f"- validation AUC of a sample's step values made one by each aggregate: {aggregates}",
        f"- validation AUC by step depth (from 0): {depth}", "",
        "![calibration](calibration.png)", "",
    ]
    (folder / "card.md").write_text("\n".join(lines), encoding="utf-8")
