"""The value training job as one strict YAML file: every section is a frozen config, unknown
keys fail at load time with one line naming the file and the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ...runtime.prompt import PromptConfig
from ...verifiers.value_model import HeadShape
from ..data.datasets import DatasetConfig
from ..run.run_config import BackendSection, RunConfig, apply_override, describe, read_yaml


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Rollouts(_Section):
    """Samples per problem, drawn by best-of-n through ponder's runtime (kept, resumable)."""

    n: int = Field(8, ge=1)
    temperature: float = Field(0.4, ge=0)
    max_tokens: int = Field(160, ge=1)
    delimiter: str = "\n\n"  # what separates the steps of a sample
    concurrency: int = Field(25, ge=1)


class MonteCarlo(_Section):
    mc: int = Field(ge=1)  # completions sampled from each step prefix; the label is the share right


class Fit(_Section):
    """Full-batch L-BFGS on binary cross-entropy plus a ridge penalty: a convex, deterministic
    fit for the linear head (the MLP starts from a seeded draw)."""

    validation: float = Field(0.2, gt=0, lt=1)  # share of questions held out, each with all its problems
    l2: float = Field(1.0, ge=0)  # ridge penalty on the head's weights, per training row
    max_iter: int = Field(200, ge=1)  # L-BFGS iterations
    seed: int = 0


class Features(_Section):
    """The pooling engine that reads the policy's hidden states."""

    max_model_len: int = Field(1024, ge=64)
    kv_cache_gib: float = Field(1.0, gt=0)
    batch: int = Field(64, ge=1)  # trajectories per engine call


class ValueTrainConfig(_Section):
    name: str = "value"
    output: str  # the value model folder written at the end
    work_dir: str = "runs/value-work"  # rollouts, labels and features, kept for a resumed or re-fitted run
    policy: BackendSection = Field(default_factory=BackendSection)
    dataset: DatasetConfig
    prompt: PromptConfig = Field(default_factory=PromptConfig)
    rollouts: Rollouts = Field(default_factory=Rollouts)
    labels: Literal["outcome"] | MonteCarlo = "outcome"
    head: HeadShape = Field(default_factory=HeadShape)
    fit: Fit = Field(default_factory=Fit)
    features: Features = Field(default_factory=Features)
    seed: int = 0  # the sampling seed

    @field_validator("labels", mode="before")
    @classmethod
    def _labels(cls, labels: Any) -> Any:
        ok = labels == "outcome" or (isinstance(labels, dict) and set(labels) == {"mc"} and isinstance(labels["mc"], int) and labels["mc"] >= 1)
        if not ok:
            raise ValueError(f"expected outcome or {{mc: K}} with K >= 1, got {labels!r}")
        return labels

    @field_validator("policy")
    @classmethod
    def _poolable(cls, policy: BackendSection) -> BackendSection:
        if policy.kind != "vllm":
            raise ValueError("expected kind: vllm (the hidden states come from the policy's weights on the pooling runner)")
        return policy

    def label_mode(self) -> str:
        return "outcome" if self.labels == "outcome" else f"mc:{self.labels.mc}"  # type: ignore[union-attr]

    def rollout_run(self) -> RunConfig:
        """The sampling as a batch run: best-of-n with a majority vote, every sample kept in
        its trace; run and resumed like any `ponder run`."""
        r = self.rollouts
        return RunConfig(
            name="rollouts", backend=self.policy, dataset=self.dataset, prompt=self.prompt, concurrency=r.concurrency,
            output_dir=self.work_dir, seed=self.seed, delimiter=r.delimiter,
            strategy={"name": "best_of_n", "config": {"n": r.n, "temperature": r.temperature, "selection": "majority", "max_tokens": r.max_tokens}},
        )


def load_value_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> ValueTrainConfig:
    path = Path(path)
    data: dict[str, Any] = read_yaml(path)
    for item in overrides:
        apply_override(data, item)
    try:
        return ValueTrainConfig.model_validate(data)
    except ValidationError as e:
        raise ValueError(f"{path}: {describe(e)}") from None
