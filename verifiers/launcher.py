"""The sandbox's first process: isolation and limits, then the test runner (harness.py).

Started by sandbox.py as `python -I -B launcher.py` in a new session, with the run's spec as
JSON on stdin; it writes nothing itself: the runner's verdict goes out on this process's
stdout, and everything the runner and the candidate print goes to its stderr. Being a fresh,
single-threaded process, it may fork and call unshare/mount freely, which the engine-holding
parent must not (no preexec_fn there).

As root (`isolate`): new mount, network, pid, IPC and UTS namespaces; a fresh /proc; empty
tmpfs over the places private files live (/root, /home, /tmp, /run, ...), with the Python
installation bound back read-only where it lives under one of them; the candidate gets a uid
of its own (so RLIMIT_NPROC counts its processes only and it can signal nothing else), the
runner another. The runner is pid 1 of the new pid namespace, so when it exits every process
the candidate left behind is killed by the kernel.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import secrets
import sys

_LIBC = ctypes.CDLL(None, use_errno=True)
_PR_SET_DUMPABLE = 4
_CLONE = {"mount": 0x00020000, "uts": 0x04000000, "ipc": 0x08000000, "pid": 0x20000000, "net": 0x40000000}
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 1, 2, 4, 8
_MS_REMOUNT, _MS_BIND, _MS_REC, _MS_PRIVATE = 32, 4096, 16384, 1 << 18
_O_PATH = 0o10000000
_HIDDEN = ("/root", "/home", "/tmp", "/var/tmp", "/dev/shm", "/run", "/mnt", "/media", "/srv")
_HERE = os.path.dirname(os.path.abspath(__file__))


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = lambda s: s.encode() if s is not None else None  # noqa: E731
    _check(_LIBC.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)), f"mount {target}")


def _under(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip("/") + "/")


def _hide(dirs: list[str], keep: list[str], tmpfs_mb: int) -> None:
    """Mount an empty tmpfs over each of `dirs`, then bind back, read-only, what must stay
    visible below them (the interpreter, this folder)."""
    for top in dirs:
        if not os.path.isdir(top) or os.path.islink(top):
            continue
        inner = [k for k in keep if _under(k, top)]
        fds = [os.open(k, _O_PATH | os.O_DIRECTORY) for k in inner]
        _mount("tmpfs", top, "tmpfs", _MS_NOSUID | _MS_NODEV, f"mode=755,size={tmpfs_mb}m")
        for k, fd in zip(inner, fds):
            os.makedirs(k, 0o755, exist_ok=True)
            _mount(f"/proc/self/fd/{fd}", k, None, _MS_BIND | _MS_REC)
            _mount(None, k, None, _MS_REMOUNT | _MS_BIND | _MS_RDONLY | _MS_NOSUID | _MS_NODEV)
            os.close(fd)


def _needed() -> list[str]:
    paths = {os.path.realpath(p) for p in (sys.base_prefix, sys.prefix, _HERE, os.path.dirname(sys.executable))}
    paths.add(os.path.dirname(os.path.realpath(sys.executable)))
    return sorted(p for p in paths if not any(q != p and _under(p, q) for q in paths))


def _user_tasks(uid: int) -> int:
    count = 0
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if os.stat(f"/proc/{pid}").st_uid == uid:
                    count += len(os.listdir(f"/proc/{pid}/task"))
            except OSError:
                pass
    return count


def _limits(spec: dict, nproc: int) -> None:
    mem = spec["memory_mb"] * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    resource.setrlimit(resource.RLIMIT_CPU, (spec["cpu_s"], spec["cpu_s"] + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (spec["max_file_mb"] * 2**20,) * 2)
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))


def _runner(spec: dict, config_r: int, result_fd: int, candidate_uid: int | None) -> None:
    """In the child: prepare the filesystem, set limits, become the runner. Never returns."""
    if candidate_uid is not None:
        _mount("proc", "/proc", "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC)
        _hide([*_HIDDEN, *spec.get("hide", [])], _needed(), max(64, 4 * spec["max_file_mb"]))
        workdir = "/tmp/work"
        os.mkdir(workdir, 0o755)
        os.chown(workdir, candidate_uid, candidate_uid)
        nproc = spec["max_processes"]
    else:
        workdir = spec["workdir"]
        nproc = _user_tasks(os.getuid()) + spec["max_processes"]
    candidate = os.path.join(workdir, "candidate.py")
    with open(candidate, "w", encoding="utf-8") as f:
        f.write(spec["source"])
    os.chmod(candidate, 0o644)
    _limits(spec, nproc)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(2, 1)  # the runner's prints join the captured output, never the verdict
    os.set_inheritable(config_r, True)
    os.set_inheritable(result_fd, True)
    os.chdir("/")
    os.execve(sys.executable, [sys.executable, "-I", "-B", os.path.join(_HERE, "harness.py"), str(config_r), str(result_fd)], {})


def probe() -> None:
    """Exit 0 when this machine lets us isolate a run: the namespaces, the mounts, the uid change."""
    _check(_LIBC.unshare(sum(_CLONE.values())), "unshare")
    _mount(None, "/", None, _MS_REC | _MS_PRIVATE)
    pid = os.fork()
    if pid == 0:
        try:
            _mount("proc", "/proc", "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC)
            _hide(["/tmp"], _needed(), 1)
            uid = 2_000_000_000 + secrets.randbelow(100_000_000)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            os._exit(0)
        except BaseException as e:
            print(f"sandbox isolation unavailable: {e}", file=sys.stderr, flush=True)
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    os._exit(0 if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 else 1)


def main() -> None:
    _LIBC.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)  # the token passes through here: keep /proc/PID/mem closed
    if sys.argv[1:] == ["--probe"]:
        probe()
    spec = json.loads(sys.stdin.buffer.read())
    if spec.get("cgroup_procs"):
        with open(spec["cgroup_procs"], "w") as f:
            f.write(str(os.getpid()))
    candidate_uid = runner_uid = None
    if spec["isolate"]:
        _check(_LIBC.unshare(sum(_CLONE.values())), "unshare")
        _mount(None, "/", None, _MS_REC | _MS_PRIVATE)  # nothing mounted here reaches the host
        candidate_uid = 2_000_000_000 + 2 * secrets.randbelow(50_000_000)
        runner_uid = candidate_uid + 1
    config_r, config_w = os.pipe()
    result_fd = os.dup(1)
    pid = os.fork()
    if pid == 0:
        try:
            os.close(config_w)
            _runner(spec, config_r, result_fd, candidate_uid)
        except BaseException as e:
            print(f"sandbox launcher: {e}", file=sys.stderr, flush=True)
        os._exit(3)
    os.close(config_r)
    config = {
        "token": spec["token"], "tests": spec["tests"], "subjects": spec["subjects"], "candidate_uid": candidate_uid, "runner_uid": runner_uid,
        "workdir": "/tmp/work" if candidate_uid is not None else spec["workdir"],
    }
    config["candidate"] = os.path.join(config["workdir"], "candidate.py")
    with os.fdopen(config_w, "wb") as f:
        try:
            f.write(json.dumps(config).encode())
        except BrokenPipeError:
            pass
    _, status = os.waitpid(pid, 0)
    os._exit(os.waitstatus_to_exitcode(status) & 0xFF if os.WIFEXITED(status) else 4)


if __name__ == "__main__":
    main()
