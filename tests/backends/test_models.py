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


@pytest.mark.engine
def test_vllm_bad_engine_option_fails_clearly():
    from ponder.backends.vllm import EngineConfig, VllmBackend

    with pytest.raises(ModelError, match="engine option not understood.*no_such_option"):
        VllmBackend(EngineConfig(extra_args={"no_such_option": 1}))
    with pytest.raises(ValueError, match="max_model_len"):
        EngineConfig(max_model_len=1)


def test_concurrent_pulls_wait_for_one_conversion(tmp_path, monkeypatch):
    """Threads racing on one model: one converts, the others wait and find its result."""
    import threading
    import time

    from ponder.backends import gguf

    monkeypatch.setenv("PONDER_HOME", str(tmp_path))
    conversions = []

    def slow_convert(src, out):
        conversions.append(out)
        time.sleep(0.5)
        (out / "config.json").write_text("{}")

    monkeypatch.setattr(gguf, "convert_gguf", slow_convert)
    results, errors = [], []

    def one():
        try:
            results.append(pull("smollm2-135m-instruct"))
        except Exception as e:  # collected, so the assertion below names it
            errors.append(e)

    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(conversions) == 1
    assert results == [tmp_path / "models" / "smollm2-135m-instruct"] * 4
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == [".smollm2-135m-instruct.lock", "smollm2-135m-instruct"]


# `ponder models pull` in a child process whose GGUF conversion is a slow stand-in that logs each
# call: the lock between processes is what is under test (the real conversion is the one `make`
# runs, and test_embedded_model_is_provisioned_once reads its result)
PULL = """
import sys, time
from pathlib import Path
from ponder.backends import gguf

LOG = sys.argv[1]


def convert(src, out):
    with open(LOG, "a") as log:
        log.write(str(out) + "\\n")
    time.sleep(1.0)
    (out / "config.json").write_text("{}")
    (out / "model.safetensors").write_bytes(b"")

gguf.convert_gguf = convert
sys.argv = ["ponder", "models", "pull", "smollm2-135m-instruct"]
from ponder.cli import main
main()
"""


def test_two_processes_pulling_one_model_both_succeed(tmp_path):
    """Two `ponder models pull` processes at once: the second used to fail with ENOTEMPTY; now it
    waits for the first's conversion and finds its result."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PONDER_HOME": str(tmp_path)}
    log = tmp_path / "conversions.log"
    procs = [subprocess.Popen([sys.executable, "-c", PULL, str(log)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    target = tmp_path / "models" / "smollm2-135m-instruct"
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-2000:]
        assert out.strip().splitlines()[-1] == str(target)
    assert len(log.read_text().splitlines()) == 1  # one conversion; the other process waited for it
    assert (target / "config.json").is_file() and list(target.glob("*.safetensors"))
    assert not [p for p in (tmp_path / "models").iterdir() if p.name.startswith(".smollm2-135m-instruct-")]  # no temporary folder left
