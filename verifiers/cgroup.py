"""A pids cgroup for one sandbox run: caps its process count and kills all of it afterwards.

RLIMIT_NPROC does not bind root and counts per user, so where a cgroup can be made each run
gets its own `pids.max`. cgroup v1 has a `pids` hierarchy; on cgroup v2 a child of this
process's own group is made when that group delegates the `pids` controller. Where neither
exists (or we may not write there) the run goes on with rlimits only.
"""

from __future__ import annotations

import os
import signal
import tempfile
import time

_V1 = "/sys/fs/cgroup/pids"


def _v2_root() -> str | None:
    """Where the cgroup2 hierarchy is mounted (/sys/fs/cgroup, or /sys/fs/cgroup/unified in hybrid mode)."""
    try:
        with open("/proc/self/mounts") as f:
            for line in f:
                _, where, kind, *_ = line.split()
                if kind == "cgroup2":
                    return where
    except OSError:
        pass
    return None


def _v2_parent() -> str | None:
    root = _v2_root()
    if root is None:
        return None
    try:
        with open("/proc/self/cgroup") as f:
            own = next(line.split("::", 1)[1].strip() for line in f if line.startswith("0::"))
    except (OSError, StopIteration):
        return None
    parent = os.path.join(root, own.lstrip("/"))
    try:
        with open(os.path.join(parent, "cgroup.subtree_control")) as f:
            if "pids" in f.read().split():
                return parent
        with open(os.path.join(parent, "cgroup.controllers")) as f:
            if "pids" not in f.read().split():
                return None
        with open(os.path.join(parent, "cgroup.subtree_control"), "w") as f:
            f.write("+pids")  # refused (EBUSY) when the group holds processes and is not the root
        return parent
    except OSError:
        return None


class PidsGroup:
    """`procs` is the file the sandbox's first process writes its pid to; None when no group."""

    def __init__(self, path: str | None) -> None:
        self.path = path

    @classmethod
    def create(cls, limit: int) -> "PidsGroup":
        for parent in (_V1 if os.access(_V1, os.W_OK) else None, _v2_parent()):
            if parent is None:
                continue
            try:
                path = tempfile.mkdtemp(prefix="ponder-", dir=parent)
            except OSError:
                continue
            try:
                with open(os.path.join(path, "pids.max"), "w") as f:
                    f.write(str(limit))
                return cls(path)
            except OSError:
                os.rmdir(path)
        return cls(None)

    @property
    def procs(self) -> str | None:
        return os.path.join(self.path, "cgroup.procs") if self.path else None

    def destroy(self) -> None:
        """Kill every process in the group, then remove it."""
        if not self.path:
            return
        try:
            with open(os.path.join(self.path, "cgroup.kill"), "w") as f:  # v2, Linux 5.14+
                f.write("1")
        except OSError:
            pass
        for _ in range(100):
            try:
                with open(os.path.join(self.path, "cgroup.procs")) as f:
                    pids = [int(x) for x in f.read().split()]
            except OSError:
                break
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.02)
        for _ in range(50):  # rmdir fails while the killed are still being reaped
            try:
                os.rmdir(self.path)
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.02)
