"""The test runner inside the sandbox: the only process that sees the tests and the run's token.

Started by the launcher as `python -I -B harness.py CONFIG_FD RESULT_FD`. It starts the
candidate's process (host.py) and runs the tests here, calling the candidate's functions
through a pipe. Only when every test statement has run does it write the token to RESULT_FD.

Why the candidate cannot forge a pass:
- it runs in another process, exec'd straight after the fork, which inherits neither the
  token, the tests, CONFIG_FD nor RESULT_FD (close_fds) and never sees them on disk;
- this process is made non-dumpable first thing and, as root, runs the candidate under a uid
  of its own and then drops to another: the candidate can neither ptrace it nor open its
  /proc/PID/{mem,fd,environ};
- values come back as plain builtins decoded here (wire.py), so the candidate's types,
  `__eq__` and patched builtins never run in this process; its asserts are its own;
- an early exit of the candidate (exit(), os._exit, atexit, SystemExit, a signal) closes the
  pipe: ChannelClosed, and no token even if a test caught it;
- in the tests, the candidate's names never hide builtins or stdlib modules (its `abs` is not
  the tests' `abs`), except the functions under test the config names.
Without root all processes share one uid: this process stays non-dumpable, but the engine
process that started the run does not, so there a deliberate attack on it is not excluded.
"""

from __future__ import annotations

import builtins
import ctypes
import json
import os
import subprocess
import sys

_PR_SET_DUMPABLE = 4


def _undumpable() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)


_undumpable()  # before anything secret is read
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wire  # noqa: E402

del sys.path[0]
_HOST = os.path.join(os.path.dirname(os.path.abspath(__file__)), "host.py")


class Link:
    """The runner's end of the pipe to the candidate's process."""

    def __init__(self, request_fd: int, reply_fd: int) -> None:
        self.request_fd, self.reply_fd = request_fd, reply_fd

    closed = False  # once set, the run fails whatever the tests caught

    def ask(self, *message: object) -> object:
        try:
            wire.send(self.request_fd, list(message))
            kind, *body = wire.receive(self.reply_fd)
        except (wire.ChannelClosed, OSError) as e:
            self.closed = True
            raise wire.ChannelClosed(str(e)) from None
        if kind == "ok":
            return wire.decode(body[0], Remote)
        if kind == "raise":
            raise _exception(str(body[0]), str(body[1]))
        raise ValueError(f"unexpected reply {kind!r}")


LINK: Link | None = None


class Remote(wire.Ref):
    """A function, class or object that lives in the candidate's process. It has no truth value
    and compares equal only to itself: a candidate cannot pass an assert with a crafted object."""

    __slots__ = ("ref",)

    def __init__(self, ref: object) -> None:
        self.ref = ref

    def __call__(self, *args: object, **kwargs: object) -> object:
        return LINK.ask("call", self.ref, wire.encode(args), wire.encode(kwargs))

    def __getattr__(self, name: str) -> object:
        if name.startswith("__"):
            raise AttributeError(name)
        return LINK.ask("attr", self.ref, name)

    def __iter__(self):
        return iter(LINK.ask("list", self.ref))

    def __len__(self) -> int:
        return LINK.ask("len", self.ref)

    def __getitem__(self, key: object) -> object:
        return LINK.ask("item", self.ref, wire.encode(key))

    def __bool__(self) -> bool:
        raise TypeError("an object of the candidate's own type has no truth value in the tests")

    def __repr__(self) -> str:
        return str(LINK.ask("repr", self.ref))


def _exception(name: str, message: str) -> Exception:
    kind = getattr(builtins, name, None)
    if isinstance(kind, type) and issubclass(kind, Exception):
        return kind(message)
    return RuntimeError(f"{name}: {message}")


def _start_candidate(cfg: dict) -> tuple[subprocess.Popen, Link]:
    request_r, request_w = os.pipe()
    reply_r, reply_w = os.pipe()
    who = {}
    if cfg["candidate_uid"] is not None:
        uid = cfg["candidate_uid"]
        who = {"user": uid, "group": uid, "extra_groups": []}
    child = subprocess.Popen(
        [sys.executable, "-I", "-B", _HOST, str(request_r), str(reply_w), cfg["candidate"]],
        pass_fds=(request_r, reply_w), cwd=cfg["workdir"], env={"HOME": cfg["workdir"]},
        stdin=subprocess.DEVNULL, **who,
    )
    os.close(request_r)
    os.close(reply_w)
    return child, Link(request_w, reply_r)


def _drop(uid: int) -> None:
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    _undumpable()  # a credential change may reset it


def _gone(child: subprocess.Popen) -> tuple[str, str]:
    code = child.wait()
    if code < 0:
        return "killed", f"the candidate's process died of signal {-code}"
    return "failed", f"the candidate's process exited (status {code}) before the tests finished"


def run(cfg: dict, child: subprocess.Popen, link: Link) -> dict:
    global LINK
    LINK = link
    try:
        kind, *body = wire.receive(link.reply_fd)
    except wire.ChannelClosed:
        status, detail = _gone(child)
        return {"passed": False, "status": status, "detail": detail}
    if kind != "ready":
        error = f"{body[0]}: {body[1]}" if len(body) == 2 else str(body)
        status = "killed" if body and body[0] == "MemoryError" else "failed"
        return {"passed": False, "status": status, "detail": f"loading the candidate raised {error}"}
    names, modules = body
    ns: dict = {"__name__": "__main__", "__builtins__": builtins}
    for module in modules:  # what the candidate imported, the tests may use without importing
        top = str(module).partition(".")[0]
        if top in sys.stdlib_module_names:
            try:
                ns[top] = __import__(top)
            except ImportError:
                pass
    # a candidate's `abs` or `math` must not stand in for the one the tests mean, unless it is
    # the function under test (MBPP has a `sum`)
    reserved = (set(dir(builtins)) | set(sys.stdlib_module_names)) - set(cfg["subjects"])
    ns.update({str(n): Remote(["n", str(n)]) for n in names if str(n) not in reserved})
    try:
        exec(compile(cfg["tests"], "tests", "exec"), ns)
        if link.closed:  # a test that swallowed the exit (`except BaseException`) still fails
            raise wire.ChannelClosed("the candidate's process went away")
    except wire.ChannelClosed:
        status, detail = _gone(child)
        return {"passed": False, "status": status, "detail": detail}
    except BaseException as e:
        status = "killed" if isinstance(e, MemoryError) else "failed"
        return {"passed": False, "status": status, "detail": f"{type(e).__name__}: {str(e)[:300]}"}
    return {"passed": True, "status": "passed", "detail": ""}


def main() -> None:
    config_fd, result_fd = int(sys.argv[1]), int(sys.argv[2])
    with os.fdopen(config_fd, "rb") as f:
        cfg = json.loads(f.read())
    child, link = _start_candidate(cfg)
    if cfg["runner_uid"] is not None:
        _drop(cfg["runner_uid"])
    outcome = run(cfg, child, link)
    sys.stdout.flush()
    wire.send(result_fd, {**outcome, "token": cfg["token"]})
    if cfg["candidate_uid"] is None:
        child.kill()  # same user: we may; otherwise the namespace goes with us
    os._exit(0)


if __name__ == "__main__":
    main()
