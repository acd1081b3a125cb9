"""A value model folder: a small head on a policy's own hidden states, and the one way a
question and its steps become the token ids whose hidden states the head reads.

The folder holds `value.json` (the backbone it was fitted on, the hidden size, the head's shape,
the prompt and step separator the policy saw), `head.safetensors` (the head's weights and the
feature standardisation), and what training wrote beside them (model card, calibration plot,
`train_questions.jsonl`). The head reads the backbone's last hidden state at the last token of
each step prefix; the prompt is the policy's own chat prompt, so the state is the one the
policy continues from.

Token ids are built piece by piece (prompt, then each step with its separator), so the ids of
step prefix k are a prefix of the ids of the whole trajectory: one pass over the trajectory
gives every prefix's state, exactly as k separate passes would.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field, ValidationError

FORMAT = 1
SPEC_FILE = "value.json"
HEAD_FILE = "head.safetensors"
SHIPPED = Path(__file__).parent / "heads"  # value models that ship with the package, by name


class HeadShape(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["linear", "mlp"] = "linear"
    width: int = Field(64, ge=1)  # hidden units of the MLP


class ValueSpec(BaseModel):
    """What a value folder says about itself (value.json)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: int = FORMAT
    backbone: str  # embedded model name or folder of the policy the head reads
    hidden_size: int = Field(ge=1)
    head: HeadShape = Field(default_factory=HeadShape)
    system: str | None = None  # the policy's prompt, as in its run config's `prompt:`
    template: str = "{question}"
    chat: bool = True
    separator: str = "\n\n"


def layout(tokenizer: Any, spec: ValueSpec, question: str, steps: Sequence[str]) -> tuple[list[int], list[int]]:
    """The trajectory's token ids and, per step, the index of the last token of its prefix."""
    user = spec.template.format(question=question)
    if spec.chat:
        messages = ([{"role": "system", "content": spec.system}] if spec.system else []) + [{"role": "user", "content": user}]
        ids = list(tokenizer.chat(messages))
    else:
        ids = list(tokenizer.encode(((spec.system + "\n\n") if spec.system else "") + user))
    ends = []
    for k, step in enumerate(steps):
        ids += tokenizer.encode((spec.separator if k else "") + step.strip())
        ends.append(len(ids) - 1)
    return ids, ends


def find(model: str) -> Path:
    """The folder of a value model: a path, or the name of one that ships with the package."""
    path = Path(model).expanduser()
    if not path.is_dir() and (SHIPPED / model).is_dir():
        path = SHIPPED / model
    if not (path / SPEC_FILE).is_file():
        shipped = ", ".join(sorted(p.name for p in SHIPPED.iterdir() if p.is_dir())) if SHIPPED.is_dir() else "none"
        raise ValueError(f"value model {model!r}: no {SPEC_FILE} there (expected a folder written by `ponder value train`, or a shipped name: {shipped})")
    return path


def read_spec(folder: Path) -> ValueSpec:
    try:
        return ValueSpec.model_validate_json((folder / SPEC_FILE).read_text(encoding="utf-8"))
    except ValidationError as e:
        err = e.errors()[0]
        raise ValueError(f"{folder / SPEC_FILE}: {'.'.join(map(str, err['loc']))}: {err['msg']}") from None


def backbone_hidden_size(backbone: str) -> int:
    from ..backends.models import resolve

    config = json.loads((resolve(backbone) / "config.json").read_text(encoding="utf-8"))
    size = config.get("hidden_size") or (config.get("text_config") or {}).get("hidden_size")
    if not isinstance(size, int):
        raise ValueError(f"backbone {backbone!r}: its config.json names no hidden_size")
    return size


def new_head(hidden_size: int, shape: HeadShape) -> Any:
    """An untrained head: standardise the hidden state, then linear or one hidden ReLU layer."""
    import torch
    from torch import nn

    class ValueHead(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("shift", torch.zeros(hidden_size))
            self.register_buffer("scale", torch.ones(hidden_size))
            if shape.kind == "linear":
                self.net = nn.Sequential(nn.Linear(hidden_size, 1))
            else:
                self.net = nn.Sequential(nn.Linear(hidden_size, shape.width), nn.ReLU(), nn.Linear(shape.width, 1))

        def forward(self, states: Any) -> Any:  # logits, one per row
            return self.net((states - self.shift) / self.scale).squeeze(-1)

    return ValueHead()


def save(folder: Path, spec: ValueSpec, head: Any) -> None:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in head.state_dict().items()}, str(folder / HEAD_FILE))
    (folder / SPEC_FILE).write_text(spec.model_dump_json(indent=2) + "\n", encoding="utf-8")


def load(model: str) -> tuple[ValueSpec, Any]:
    """The spec and the head of a value folder (or shipped name), checked against its backbone."""
    from safetensors.torch import load_file

    folder = find(model)
    spec = read_spec(folder)
    tensors = load_file(str(folder / HEAD_FILE))
    inputs = int(tensors["shift"].shape[0]) if "shift" in tensors else -1
    size = backbone_hidden_size(spec.backbone)
    if inputs != size or spec.hidden_size != size:
        raise ValueError(
            f"value model {folder}: its head reads hidden states of size {inputs}, but backbone "
            f"{spec.backbone!r} has hidden size {size}"
        )
    head = new_head(size, spec.head)
    try:
        head.load_state_dict(tensors)
    except RuntimeError as e:
        raise ValueError(f"value model {folder}: {HEAD_FILE} does not match a {spec.head.kind} head: {str(e).splitlines()[0]}") from None
    return spec, head.eval()


def probabilities(head: Any, states: Any) -> list[float]:
    import torch

    with torch.no_grad():
        return [float(x) for x in torch.sigmoid(head(states.float()))]
