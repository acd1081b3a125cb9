"""The message format between the test runner and the candidate's process inside the sandbox.

Values cross as tagged JSON, never pickle: whatever the candidate's process sends, the runner
decodes plain builtins (int, float, str, list, tuple, dict, set, ...) and nothing of the
candidate's own types or methods. An object without a plain form stays in the candidate's
process and crosses as a reference, usable only as an argument back or for a remote call.
Stdlib only: the sandbox scripts import this file by path, never the ponder package.
"""

from __future__ import annotations

import json
import os
import struct

MAX_MESSAGE = 32 * 2**20
_HEADER = struct.Struct("!Q")
_PLAIN = (type(None), bool, str, float)
_MAX_DEPTH = 200


class ChannelClosed(BaseException):
    """The other side is gone. A BaseException so test code catching Exception cannot swallow it."""


def encode(v: object, refs=None, depth: int = 0) -> object:
    """A JSON-ready form of `v`. `refs(v)` names an object without a plain form; without it such
    an object is a TypeError."""
    if depth > _MAX_DEPTH:
        raise ValueError("value nested too deeply")
    t = type(v)
    if t in _PLAIN:
        return v
    if t is int:
        return v if -(2**53) < v < 2**53 else ["i", format(v, "x")]
    d = depth + 1
    if t is list:
        return ["l", [encode(x, refs, d) for x in v]]
    if t is tuple:
        return ["t", [encode(x, refs, d) for x in v]]
    if t is set or t is frozenset:
        return ["s" if t is set else "f", [encode(x, refs, d) for x in v]]
    if t is dict:
        return ["d", [[encode(k, refs, d), encode(x, refs, d)] for k, x in v.items()]]
    if t is complex:
        return ["c", v.real, v.imag]
    if t is bytes:
        return ["b", v.hex()]
    if isinstance(v, Ref):
        return ["r", v.ref]
    if refs is None:
        raise TypeError(f"a {t.__name__} cannot be sent to the candidate")
    return ["r", refs(v)]


def decode(v: object, resolve, depth: int = 0) -> object:
    """The value `encode` produced; `resolve(ref)` turns a reference into an object."""
    if depth > _MAX_DEPTH:
        raise ValueError("value nested too deeply")
    if not isinstance(v, list):
        return v
    tag, body = v[0], v[1:]
    d = depth + 1
    if tag == "i":
        return int(body[0], 16)
    if tag == "l":
        return [decode(x, resolve, d) for x in body[0]]
    if tag == "t":
        return tuple(decode(x, resolve, d) for x in body[0])
    if tag == "s":
        return {decode(x, resolve, d) for x in body[0]}
    if tag == "f":
        return frozenset(decode(x, resolve, d) for x in body[0])
    if tag == "d":
        return {decode(k, resolve, d): decode(x, resolve, d) for k, x in body[0]}
    if tag == "c":
        return complex(float(body[0]), float(body[1]))
    if tag == "b":
        return bytes.fromhex(body[0])
    if tag == "r":
        return resolve(body[0])
    raise ValueError(f"unknown tag {tag!r}")


class Ref:
    """Marks an object the runner holds for the candidate's process (a remote reference)."""

    ref: object


def send(fd: int, message: object) -> None:
    data = json.dumps(message).encode()
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view):]


def receive(fd: int, limit: int = MAX_MESSAGE) -> object:
    (size,) = _HEADER.unpack(_read(fd, _HEADER.size))
    if size > limit:
        raise ValueError(f"message of {size} bytes is over the {limit}-byte limit")
    return json.loads(_read(fd, size))


def _read(fd: int, n: int) -> bytes:
    parts = []
    while n:
        chunk = os.read(fd, min(n, 2**20))
        if not chunk:
            raise ChannelClosed("the other side closed the channel")
        parts.append(chunk)
        n -= len(chunk)
    return b"".join(parts)
