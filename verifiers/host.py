"""The candidate's process inside the sandbox: runs the candidate's module, then serves calls.

Started by the test runner as `python -I -B host.py REQUEST_FD REPLY_FD candidate.py`. It holds
nothing secret and no channel to the verdict: whatever the candidate does here (exit early,
patch builtins, write to the reply pipe itself) can only change the values the runner receives,
never the runner's asserts or its report.
"""

from __future__ import annotations

import builtins
import os
import sys
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wire  # noqa: E402

del sys.path[0]  # the candidate must not import ponder's own files by their short names

_BASES = (bool, int, float, str, list, tuple, dict, set, frozenset, complex, bytes)


class Host:
    def __init__(self, namespace: dict) -> None:
        self.ns = namespace
        self.held: dict[int, object] = {}

    def ref(self, v: object) -> list:
        self.held[id(v)] = v
        return ["h", id(v)]

    def resolve(self, ref: list) -> object:
        kind, key = ref
        return self.held[key] if kind == "h" else self.ns[key]

    def plain(self, v: object, depth: int = 0) -> object:
        """`v` with subclasses of builtins and numpy scalars turned into the builtin value."""
        if depth > 100:
            return v
        item = getattr(type(v), "item", None)
        if item is not None and type(v).__module__ == "numpy" and getattr(v, "ndim", 1) == 0:
            v = v.item()
        for base in _BASES:
            if isinstance(v, base):
                if base in (list, tuple, set, frozenset):
                    return base(self.plain(x, depth + 1) for x in v)
                if base is dict:
                    return {self.plain(k, depth + 1): self.plain(x, depth + 1) for k, x in v.items()}
                return v if type(v) is base else base(v)
        return v

    def reply(self, v: object) -> list:
        return ["ok", wire.encode(self.plain(v), self.ref)]

    def handle(self, message: list) -> list:
        op, ref, *rest = message
        target = self.resolve(ref)
        if op == "call":
            args = wire.decode(rest[0], self.resolve)
            kwargs = wire.decode(rest[1], self.resolve)
            return self.reply(target(*args, **kwargs))
        if op == "attr":
            return self.reply(getattr(target, rest[0]))
        if op == "list":
            return self.reply(list(target))
        if op == "len":
            return self.reply(len(target))
        if op == "item":
            return self.reply(target[wire.decode(rest[0], self.resolve)])
        if op == "repr":
            return self.reply(repr(target))
        raise ValueError(f"unknown operation {op!r}")


def _error(e: BaseException) -> list:
    return ["raise", type(e).__name__, str(e)[:500]]


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


def main() -> None:
    request_fd, reply_fd, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    with open(path, encoding="utf-8") as f:
        source = f.read()
    ns = {"__name__": "__main__", "__file__": path, "__builtins__": builtins}
    try:
        exec(compile(source, path, "exec"), ns)
    except BaseException as e:  # SystemExit too: leaving during loading is a failure
        _flush()
        wire.send(reply_fd, _error(e))
        os._exit(1)
    names = sorted(k for k, v in ns.items() if not k.startswith("__") and callable(v))
    modules = sorted({v.__name__ for v in ns.values() if isinstance(v, types.ModuleType)})
    _flush()
    wire.send(reply_fd, ["ready", names, modules])
    host = Host(ns)
    while True:
        try:
            message = wire.receive(request_fd)
        except wire.ChannelClosed:
            break
        try:
            answer = host.handle(message)
        except BaseException as e:
            answer = _error(e)
        _flush()  # before the reply: the runner may end the run as soon as it has it
        wire.send(reply_fd, answer)
    os._exit(0)


if __name__ == "__main__":
    main()
