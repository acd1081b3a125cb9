"""Model provisioning and clear errors for bad models and engine options."""

from __future__ import annotations

import pytest

from ponder.backends.models import ModelError, list_models, pull, resolve


def test_embedded_model_is_provisioned_once():
    path = pull("smollm2-135m-instruct")
    assert (path / "config.json").is_file() and list(path.glob("*.safetensors"))
    assert (path / "tokenizer.json").is_file()
    assert pull("smollm2-135m-instruct") == path  # second call: nothing to do
    assert any(name == "smollm2-135m-instruct" and folder == path for name, _, folder in list_models())


def test_missing_model_names_what_was_tried(tmp_path):
    with pytest.raises(ModelError, match="not a local folder, not an embedded model"):
        resolve("no-such-model")
    with pytest.raises(ModelError, match="config.json"):
        resolve(str(tmp_path))


def test_vllm_bad_model_path_fails_clearly(tmp_path):
    from ponder.backends.vllm import EngineConfig, VllmBackend

    with pytest.raises(ModelError, match="no config.json"):
        VllmBackend(EngineConfig(model=str(tmp_path)))


def test_vllm_bad_engine_option_fails_clearly():
    from ponder.backends.vllm import EngineConfig, VllmBackend

    with pytest.raises(ModelError, match="engine option not understood.*no_such_option"):
        VllmBackend(EngineConfig(extra_args={"no_such_option": 1}))
    with pytest.raises(ValueError, match="max_model_len"):
        EngineConfig(max_model_len=1)
