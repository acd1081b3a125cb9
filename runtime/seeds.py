"""The seeds of a problem's requests: one stream per context, a sub-run's stream derived from
its parent's, and no seed handed out twice in one problem."""

from __future__ import annotations

import hashlib


class Seeds:
    """The seeds one context hands its requests: a stream of its own, in which no seed already
    handed out anywhere in the problem is used again. Sample i of a request is seeded seed + i
    (Backend.generate), so a request of n takes n seeds in a row."""

    def __init__(self, start: int, taken: set[int] | None = None) -> None:
        self.start = self.next = start
        self.taken = taken if taken is not None else set()

    def take(self, n: int) -> int:
        s = self.next
        while clash := [x for x in range(s, s + n) if x in self.taken]:
            s = clash[-1] + 1
        self.taken.update(range(s, s + n))
        self.next = s + n
        return s

    def child(self, seed: int) -> "Seeds":
        """The stream of the sub-run numbered `seed`: a fixed function of this stream and
        `seed`, so a sub-run draws the same seeds whenever its siblings run."""
        digest = hashlib.blake2b(f"{self.start}/{seed}".encode(), digest_size=8).digest()
        return Seeds(int.from_bytes(digest, "big") % 2**31, self.taken)
