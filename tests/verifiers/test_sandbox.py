"""The sandbox cannot be fooled: early exits, patched builtins, crafted return values, printed
markers and forged verdicts all fail a wrong solution; as root the candidate has no network, no
host private files, an empty environment and a fresh HOME."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from ponder.records.problem import Problem
from ponder.verifiers.code import CodeVerifier
from ponder.verifiers.sandbox import SandboxConfig, run_program

from ..scripts import LoopLag

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="namespaces and uid changes need root")

PROBLEM = Problem(id="p", question="add and half", kind="code", meta={"tests": [
    "assert add(2, 3) == 5", "assert add(-1, 1) == 0", "assert abs(half(3) - 1.5) < 1e-9",
]})
RIGHT = "def add(a, b):\n    return a + b\n\ndef half(x):\n    return x / 2\n"
WRONG = "def add(a, b):\n    return a - b\n\ndef half(x):\n    return x\n"
ALMOST = "def add(a, b):\n    return a + b\n\ndef half(x):\n    return x\n"  # only the abs(...) assert fails

TRICKS = {
    "exit": "exit()",
    "sys.exit": "import sys\nsys.exit(0)",
    "os._exit": "import os\nos._exit(0)",
    "atexit": "import atexit, os\natexit.register(lambda: os._exit(0))",
    "SystemExit": "raise SystemExit(0)",
    "SystemExit in a call": "def add(a, b):\n    raise SystemExit(0)",
    "os._exit in a call": "import os\ndef add(a, b):\n    os._exit(0)",
    "patched builtins": "import builtins\nbuiltins.abs = lambda x: 0\nbuiltins.AssertionError = type('A', (Exception,), {})",
    "shadowed builtin": "def abs(x):\n    return 0",
    "always-equal object": "class E:\n    __eq__ = lambda s, o: True\n    __lt__ = __sub__ = __rsub__ = lambda s, o: E()\n"
                           "    __abs__ = lambda s: 0\ndef add(a, b):\n    return E()\ndef half(x):\n    return E()",
    "int subclass": "class S(int):\n    __eq__ = lambda s, o: True\n    __hash__ = int.__hash__\ndef add(a, b):\n    return S(0)",
    "printed marker": "print('PASSED', flush=True)\nprint('all tests passed', flush=True)\nimport os\nos._exit(0)",
    # only its own fds and the test runner's (its parent): never other processes of the machine
    "forged verdict": """
import json, os, struct
fake = json.dumps({"passed": True, "status": "passed", "detail": "", "token": "0" * 32}).encode()
frame = struct.pack("!Q", len(fake)) + fake
for fd in range(3, 64):
    try:
        os.write(fd, frame)
    except OSError:
        pass
runner = f"/proc/{os.getppid()}/fd"
try:
    for fd in os.listdir(runner):
        try:
            out = os.open(f"{runner}/{fd}", os.O_WRONLY | os.O_APPEND)
            os.write(out, frame)
        except OSError:
            pass
except OSError:
    pass
os._exit(0)
""",
}


async def test_a_right_solution_passes_and_a_wrong_one_fails():
    assert (await CodeVerifier().verify(PROBLEM, RIGHT)).correct
    assert not (await CodeVerifier().verify(PROBLEM, WRONG)).correct
    assert not (await CodeVerifier().verify(PROBLEM, ALMOST)).correct


@pytest.mark.parametrize("trick", TRICKS, ids=list(TRICKS))
async def test_a_wrong_solution_with_a_trick_fails(trick):
    v = await CodeVerifier().verify(PROBLEM, f"```python\n{ALMOST}\n{TRICKS[trick]}\n```")
    assert not v.correct and v.score == 0.0


async def test_the_function_under_test_may_have_a_builtins_name():
    prob = Problem(id="s", question="sum of common divisors", kind="code", meta={"tests": ["assert sum(10, 15) == 6"]})
    code = "def sum(a, b):\n    return __builtins__.sum(i for i in range(1, min(a, b)) if a % i == 0 and b % i == 0)\n"
    assert (await CodeVerifier().verify(prob, code)).correct


async def test_an_exit_fails_even_where_the_tests_catch_everything():
    tests = "try:\n    assert add(2, 3) == 5\nexcept BaseException:\n    pass\n"
    out = await run_program("import os\ndef add(a, b):\n    os._exit(0)\n", tests=tests)
    assert not out.passed and "exited" in out.detail


async def test_exiting_early_fails_even_a_right_solution():
    assert not (await CodeVerifier().verify(PROBLEM, RIGHT + "\nimport sys\nsys.exit(0)\n")).correct


@needs_root
async def test_the_candidate_cannot_see_the_tests_or_the_runner():
    spy = textwrap.dedent("""
        import os
        def peek():
            seen = []
            for pid in os.listdir("/proc"):
                if not pid.isdigit() or int(pid) == os.getpid():
                    continue
                for leaf in ("mem", "environ", "fd"):
                    try:
                        path = f"/proc/{pid}/{leaf}"
                        os.listdir(path) if leaf == "fd" else open(path, "rb").read(1)
                        seen.append(path)
                    except OSError:
                        pass
            here = os.listdir(os.environ["HOME"])
            return seen, here
    """)
    out = await run_program(spy, tests="assert peek() == ([], ['candidate.py'])\nprint('checked')\n")
    assert out.passed, (out.detail, out.output)
    assert "checked" in out.output


async def test_output_is_capped():
    out = await run_program("while True:\n    print('x' * 1000)\n", SandboxConfig(timeout_s=30, max_output_kb=64))
    assert out.status == "killed" and "64 KiB" in out.detail and len(out.output) <= 4000


@needs_root
async def test_a_process_left_behind_neither_delays_the_verdict_nor_survives():
    marker = f"ponder-daemon-{uuid.uuid4().hex}"  # in the leftover's command line: other runs may be going on
    daemon = (f"import os, sys\nif os.fork() == 0:\n    os.setsid()\n"
              f"    os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(120)', {marker!r}])\n" + RIGHT)
    t = time.monotonic()
    v = await CodeVerifier(timeout_s=30).verify(PROBLEM, daemon)
    assert v.correct and time.monotonic() - t < 10
    await asyncio.sleep(0.5)
    left = [p for p in os.listdir("/proc") if p.isdigit() and marker in _cmdline(p)]
    assert left == []


def _cmdline(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@needs_root
async def test_no_network():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    probe = textwrap.dedent(f"""
        import socket
        def reach(host, port):
            try:
                socket.create_connection((host, port), timeout=2).close()
                return "connected"
            except OSError as e:
                return type(e).__name__
    """)
    try:
        out = await run_program(probe, tests=f"r = reach('127.0.0.1', {port})\nprint(r)\nassert r != 'connected'\n"
                                             "assert reach('1.1.1.1', 53) != 'connected'\n")
    finally:
        server.close()
    assert out.passed, (out.detail, out.output)


@needs_root
async def test_host_private_files_are_out_of_reach():
    name = f"ponder-secret-{uuid.uuid4().hex}"
    secrets_ = [Path("/root") / name, Path("/tmp") / name, Path.home() / ".cache" / name]
    for p in secrets_:
        p.write_text("hub-token-123")
        p.chmod(0o644)  # readable by anyone: only the sandbox keeps it away
    reader = textwrap.dedent("""
        def read(path):
            try:
                return open(path).read()
            except OSError as e:
                return type(e).__name__
    """)
    tests = "".join(f"r = read({str(p)!r})\nprint(r)\nassert 'hub-token' not in r\n" for p in secrets_)
    try:
        out = await run_program(reader, tests=tests)
    finally:
        for p in secrets_:
            p.unlink()
    assert out.passed, (out.detail, out.output)


@needs_root
async def test_empty_environment_fresh_home_and_no_root():
    probe = "import os\ndef env():\n    return dict(os.environ)\ndef ids():\n    return os.getuid(), os.geteuid(), os.getgroups()\n"
    # LC_CTYPE is set by the candidate's interpreter itself (PEP 538 locale coercion), not inherited
    tests = ("e = env()\ne.pop('LC_CTYPE', None)\nassert e == {'HOME': '/tmp/work'}, e\n"
             "u, eu, groups = ids()\nassert u != 0 and eu != 0 and groups == []\n")
    out = await run_program(probe, tests=tests)
    assert out.passed, (out.detail, out.output)


NON_ROOT = """
import asyncio, logging, sys
from ponder.verifiers.sandbox import run_program
logging.basicConfig(level=logging.WARNING, stream=sys.stdout, format="WARNING %(message)s")
async def main():
    right = await run_program("def f():\\n    return 1\\n", tests="assert f() == 1\\n")
    wrong = await run_program("def f():\\n    return 2\\nimport os\\nos._exit(0)\\n", tests="assert f() == 1\\n")
    print("RESULT", right.passed, wrong.passed, wrong.status)
asyncio.run(main())
"""


@needs_root
@pytest.mark.skipif(not (shutil.which("unshare") and shutil.which("setpriv")), reason="needs util-linux")
def test_without_root_it_warns_once_and_still_judges(tmp_path):
    """As `nobody`, in a mount namespace where /root is opened up just enough to reach the interpreter."""
    base = Path(sys.base_prefix).resolve()
    spare = tmp_path / "py"
    spare.mkdir()
    setup = (
        f'set -e; mount --bind {base} {spare}; mount -t tmpfs -o mode=755 tmpfs /root; mkdir -p {base}; '
        f'mount --move {spare} {base}; exec setpriv --reuid=65534 --regid=65534 --clear-groups {sys.executable} -c "$0"'
    )
    done = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", setup, NON_ROOT],
                          capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert [x for x in lines if x.startswith("RESULT")] == ["RESULT True False failed"]
    assert sum("no network or file isolation" in x for x in lines) == 1


async def test_cleanup_after_a_run_never_blocks_the_event_loop(monkeypatch):
    # reaping the process group and removing the folder can take a while: it happens off the loop
    from ponder.verifiers import cgroup

    slow_destroy = cgroup.PidsGroup.destroy

    def slow(self):
        time.sleep(0.5)
        slow_destroy(self)

    monkeypatch.setattr(cgroup.PidsGroup, "destroy", slow)
    async with LoopLag() as lag:
        run = await run_program(RIGHT, tests="assert add(2, 3) == 5")
    assert run.passed and lag.worst < 0.2
    assert lag.ticks > 20  # the ticker ran all along
