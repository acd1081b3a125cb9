"""Shared fixtures. The real engine and the real vLLM server each start once per test session
(~30-70 s and ~5 GiB each), and only when a selected test asks for them.

Tests that use them are marked `engine` / `server` here, so `make test-fast`
(`-m "not engine and not server"`) runs the scripted and pure-Python tests alone.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import sys
from pathlib import Path

import pytest

from .servers import served

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# fixtures that hold an engine or a `ponder serve` with one; tests that start an engine by
# themselves carry `@pytest.mark.engine`
ENGINE_FIXTURES = {"engine", "serve", "value_states"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        param = getattr(getattr(item, "callspec", None), "id", "")
        # a backend-parametrised test asks for the engine through request.getfixturevalue
        if fixtures & ENGINE_FIXTURES or "vllm" in param.split("-"):
            item.add_marker(pytest.mark.engine)
        if "vllm_server" in fixtures:
            item.add_marker(pytest.mark.server)
        if fixtures & {"browser", "chromium"}:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def engine():
    """The embedded model on the in-process vLLM engine, shared by every real-engine test; with
    vLLM's Prometheus counters on, so the ledger can be checked against the engine's own count."""
    from ponder.backends.vllm import EngineConfig, VllmBackend

    backend = VllmBackend(EngineConfig(model="smollm2-135m-instruct", max_model_len=2048, kv_cache_gib=2, max_num_seqs=64, log_stats=True))
    yield backend
    asyncio.run(backend.close())


@pytest.fixture(scope="session")
def value_states():
    """The embedded model on vLLM's pooling runner (every token's hidden state), shared by the
    value model's engine tests."""
    from ponder.verifiers.hidden_states import HiddenStates

    states = HiddenStates("smollm2-135m-instruct", max_model_len=1024, kv_cache_gib=1)
    yield states
    states.close()


@pytest.fixture(scope="session")
def vllm_server(tmp_path_factory):
    """A real vLLM OpenAI-compatible server with the embedded model on 127.0.0.1, shared by the
    session: yields (base url ending in /v1, the server process). It answers to the embedded
    model's name too, so `ponder solve --endpoint URL` needs no other option."""
    from ponder.backends.models import pull

    model = str(pull("smollm2-135m-instruct"))
    command = lambda port: [  # noqa: E731
        sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model,
        "--served-model-name", "smollm2", "smollm2-135m-instruct", "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32",
        "--max-model-len", "1024", "--enforce-eager", "--block-size", "32", "--enable-prefix-caching",
        "--enable-prompt-tokens-details", "--disable-log-stats",
        # seeded prompts split over scheduler steps kill the CPU engine: one step holds any prompt
        "--no-enable-chunked-prefill", "--max-num-batched-tokens", "2048",
    ]
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1", "VLLM_LOGGING_LEVEL": "WARNING"}
    with served(command, tmp_path_factory.mktemp("server") / "vllm.log", env) as server:
        yield server


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory):
    """A local Ray cluster of 2 CPUs (`ray start --head`), shared by the session's Ray tests:
    yields its address and its Ray Client address; at the end it stops with every process it started. Without token
    authentication: a driver given an address sends no token unless RAY_AUTH_MODE=token."""
    import subprocess
    import time

    from .servers import free_port, stop

    ports = [str(free_port()) for _ in range(2)]
    log = tmp_path_factory.mktemp("ray") / "head.log"
    command = [str(Path(sys.executable).parent / "ray"), "start", "--head", "--block", "--num-cpus", "2", "--num-gpus", "0",
               "--port", ports[0], "--ray-client-server-port", ports[1], "--include-dashboard", "false", "--disable-usage-stats"]
    with open(log, "w") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"})
    try:
        end = time.time() + 120
        while "Ray runtime started" not in log.read_text():
            if proc.poll() is not None or time.time() > end:
                raise RuntimeError(f"ray start failed: {log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield f"127.0.0.1:{ports[0]}", f"ray://127.0.0.1:{ports[1]}"
    finally:
        proc.terminate()  # `ray start` stops what it started; a signal to each of those would make it wait
        try:
            proc.wait(60)
        finally:
            stop(proc)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """The benchmarks the package ships, laid out as a data directory (`<name>/test.jsonl`):
    tests read nothing from outside the repository."""
    from ponder.app.data.datasets import SHIPPED, builtin_file

    root = tmp_path_factory.mktemp("data")
    for name in SHIPPED:
        (root / name).mkdir()
        (root / name / "test.jsonl").write_bytes(gzip.decompress(builtin_file(name, None).read_bytes()))
    return root


@pytest.fixture(scope="session")
def chromium(tmp_path_factory):
    """Headless Debian chromium for the session's browser tests: yields its DevTools endpoint.
    Playwright never downloads a browser here: `make install` installs the distribution's."""
    import re
    import shutil
    import subprocess
    import time

    from .servers import stop

    path = shutil.which("chromium")
    if path is None:
        raise RuntimeError("no chromium on PATH: `make install` installs it (apt-get install chromium)")
    root = tmp_path_factory.mktemp("chromium")
    log = root / "chromium.log"
    with open(log, "w") as out:
        # --no-sandbox: the suite runs as root in CI, where chromium's sandbox refuses to start
        proc = subprocess.Popen([path, "--headless", "--no-sandbox", "--no-first-run", "--remote-debugging-port=0",
                                 f"--user-data-dir={root / 'profile'}", "about:blank"],
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        end = time.time() + 60
        while (found := re.search(r"DevTools listening on (ws://\S+)", log.read_text())) is None:
            if proc.poll() is not None or time.time() > end:
                raise RuntimeError(f"chromium did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield found[1]
    finally:
        stop(proc)


@pytest.fixture
def browser(chromium):
    """The session's chromium through Playwright, for one test. Playwright's sync API keeps an
    event loop running on this thread while it is started, so it stops after each test: the
    session's async tests (engine, server) need the thread free of a running loop."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.connect_over_cdp(chromium)
        yield b
        b.close()  # closes this test's contexts and disconnects; chromium serves the next test
