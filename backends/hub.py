"""Models downloaded from the Hugging Face hub into ponder's own cache."""

from __future__ import annotations

from pathlib import Path

from .catalogue import EMBEDDED, ModelError, ponder_home


def from_hub(repo_id: str) -> Path:
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, cache_dir=str(ponder_home() / "hub")))
    except Exception as e:
        raise ModelError(
            f"model {repo_id!r} not found locally and the hub download failed ({type(e).__name__}); "
            f"pass a local folder or an embedded name ({', '.join(EMBEDDED)})"
        ) from e
