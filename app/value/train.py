"""`ponder value train`: sample, label, read hidden states, fit, write the value folder.

Each stage keeps what it made in the work folder: the samples are a `ponder run` directory
(resumed like one), mc labels are appended per sample, the hidden states are cached. An
interrupted job started again picks up where it stopped; only one engine runs at a time (the
policy's for sampling and mc labels, then the pooling runner for hidden states).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from ...records.problem import Problem
from ...verifiers.value_model import ValueSpec, save
from ..run.batch import execute, run_dir
from ..data.datasets import load
from ..run.store import RunStore
from .card import plot_calibration, write_card, write_questions
from .config import MonteCarlo, ValueTrainConfig
from .features import cached, step_states
from .fit import Rows, evaluate, fit, split
from .labels import Trajectory, labels_file, mc_labels, outcome_labels, read_labels, read_samples

Say = Callable[[str], None]


def check_problems(cfg: ValueTrainConfig, data_dir: str | None = None) -> list[Problem]:
    problems = load(cfg.dataset, data_dir)
    if not problems:
        raise ValueError(f"dataset {cfg.dataset.name!r} holds no problems")
    for p in problems:
        if p.answer is None or not str(p.answer).strip():
            raise ValueError(f"dataset {cfg.dataset.name!r}: problem {p.id} has no answer (value labels are graded against answers)")
    from ...backends.models import resolve

    resolve(cfg.policy.model)
    return problems


async def sample(cfg: ValueTrainConfig, problems: list[Problem], progress: bool, backend: Any = None) -> list[Trajectory]:
    run = cfg.rollout_run()
    store = RunStore(run_dir(run))
    if not {p.id for p in problems} <= store.done_ids():
        await execute(run, problems, resume=store.results.exists(), progress=progress, backend=backend)
    return await read_samples(run_dir(run), problems, cfg.rollouts.delimiter)


async def label(
    cfg: ValueTrainConfig, problems: list[Problem], samples: list[Trajectory], say: Say, backend: Any = None,
) -> list[list[float]]:
    if not isinstance(cfg.labels, MonteCarlo):
        return [outcome_labels(t) for t in samples]
    import asyncio

    path = labels_file(Path(cfg.work_dir), cfg.label_mode())
    done = read_labels(path)
    keys = sample_keys(samples)
    todo = [(k, t) for k, t in zip(keys, samples) if k not in done]
    if todo:
        say(f"mc labels: {len(todo)} samples x {cfg.labels.mc} completions per step prefix")
        by_id = {p.id: p for p in problems}
        owned = backend is None
        backend = backend or cfg.policy.build(cfg.seed)
        r = cfg.rollouts
        gate = asyncio.Semaphore(r.concurrency)
        try:
            with path.open("a", encoding="utf-8") as f:
                async def one(key: tuple[str, int], t: Trajectory) -> None:
                    async with gate:
                        values = await mc_labels(backend, cfg.prompt, by_id[t.problem_id], t, cfg.labels.mc, r.temperature,
                                                 r.max_tokens, r.delimiter, cfg.seed + key[1])
                    done[key] = values
                    f.write(json.dumps({"id": key[0], "sample": key[1], "labels": values}) + "\n")
                    f.flush()

                await asyncio.gather(*(one(k, t) for k, t in todo))
        finally:
            if owned:
                await backend.close()
    return [done[k] for k in keys]


def sample_keys(samples: list[Trajectory]) -> list[tuple[str, int]]:
    seen: dict[str, int] = {}
    keys = []
    for t in samples:
        keys.append((t.problem_id, seen.get(t.problem_id, 0)))
        seen[t.problem_id] = keys[-1][1] + 1
    return keys


def spec_of(cfg: ValueTrainConfig, hidden_size: int) -> ValueSpec:
    p = cfg.prompt
    return ValueSpec(backbone=cfg.policy.model, hidden_size=hidden_size, head=cfg.head, system=p.system, template=p.template,
                     chat=p.chat, separator=cfg.rollouts.delimiter)


def features(cfg: ValueTrainConfig, samples: list[Trajectory], say: Say, states: Any = None) -> list[Any]:
    from ...backends.models import resolve
    from ...backends.tokenizer import HFTokenizer
    from ...verifiers.hidden_states import HiddenStates
    from ...verifiers.value_model import backbone_hidden_size

    spec = spec_of(cfg, backbone_hidden_size(cfg.policy.model))
    f = cfg.features

    def compute(missing: list[int]) -> list[Any]:
        todo = [samples[i] for i in missing]
        say(f"hidden states: {len(todo)} samples on the pooling runner")
        engine = states or HiddenStates(cfg.policy.model, max_model_len=f.max_model_len, kv_cache_gib=f.kv_cache_gib)
        try:
            done = [0]

            def tick(n: int) -> None:  # a line per tenth of the samples: the stage takes minutes on a CPU
                done[0] += n
                if done[0] * 10 // len(todo) != (done[0] - n) * 10 // len(todo):
                    say(f"hidden states: {done[0]}/{len(todo)} samples")

            return step_states(engine, HFTokenizer.load(resolve(cfg.policy.model)), spec, todo, f.batch, f.max_model_len, tick)
        finally:
            if states is None:
                engine.close()

    return cached(Path(cfg.work_dir) / "features.pt", compute, sample_keys(samples))


def rows_of(samples: list[Trajectory], labels: list[list[float]], states: list[Any]) -> Rows:
    import torch

    flat: dict[str, list[Any]] = {"labels": [], "groups": [], "depths": [], "last": [], "outcomes": []}
    for t, ls, s in zip(samples, labels, states):
        n = len(t.steps)
        flat["labels"] += ls
        flat["groups"] += [t.question] * n
        flat["depths"] += list(range(n))
        flat["last"] += [d == n - 1 for d in range(n)]
        flat["outcomes"] += [t.correct] * n
    return Rows(states=torch.cat(states), **flat)


async def train(
    cfg: ValueTrainConfig, progress: bool = True, say: Say = print, data_dir: str | None = None, backend: Any = None,
    states: Any = None,
) -> dict[str, Any]:
    """The whole job; `backend` (the policy) and `states` (its pooling engine) are shared
    engines to use instead of starting them."""
    problems = check_problems(cfg, data_dir)
    Path(cfg.work_dir).mkdir(parents=True, exist_ok=True)
    samples = await sample(cfg, problems, progress, backend)
    if not any(t.correct for t in samples) or all(t.correct for t in samples):
        raise ValueError(f"value train: the {len(samples)} samples are all {'right' if samples and samples[0].correct else 'wrong'}: nothing to separate")
    labels = await label(cfg, problems, samples, say, backend)
    rows = rows_of(samples, labels, features(cfg, samples, say, states))
    held = split(rows.groups, cfg.fit.validation, cfg.fit.seed)
    train_rows = [g not in held for g in rows.groups]
    validation = evaluate(fit(rows, train_rows, cfg.head, cfg.fit), rows, [not t for t in train_rows])
    # the validation figures are those of a head fitted without the held-out questions; the head
    # that ships is fitted again on every problem (the same recipe, more data)
    everything = [True] * len(rows.groups)
    head = fit(rows, everything, cfg.head, cfg.fit)
    folder = Path(cfg.output)
    save(folder, spec_of(cfg, rows.states.shape[1]), head)
    facts = {
        "name": cfg.name, "backbone": cfg.policy.model, "head": cfg.head.model_dump(), "dataset": cfg.dataset.name,
        "problems": len({t.problem_id for t in samples}), "questions": write_questions(folder, (p.question for p in problems)),
        "rollouts": cfg.rollouts.model_dump(), "seed": cfg.seed, "labels": cfg.label_mode(), "fit": cfg.fit.model_dump(),
        "samples": len(samples), "right": sum(t.correct for t in samples), "rows": len(rows.labels),
        "validation_problems": len({t.problem_id for t in samples if t.question in held}), "validation_questions": len(held),
        "validation": validation, "training": evaluate(head, rows, everything),
    }
    facts["training"].pop("calibration")
    facts["calibration_png"] = plot_calibration(folder / "calibration.png", validation["calibration"], f"{cfg.name}: validation")
    write_card(folder, facts)
    return facts
