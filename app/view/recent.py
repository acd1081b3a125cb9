"""The last requests a `ponder serve` solved, and GET /view: their reasoning trees in the
same page `ponder view` writes for a run (newest first, no run summary).

Only what the page shows is kept (the tree's nodes, not the Trace), at most `size` requests.
With an API key set, a browser reaches /view through HTTP Basic auth with the key as the
password (a browser cannot send a Bearer header from its address bar).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import time
from collections import deque
from typing import Any

from .page import render
from .run_data import RunView
from .tree import tree_nodes


class Recent:
    def __init__(self, size: int) -> None:
        self.size = size
        self._solved: deque[tuple[dict[str, Any], list[dict[str, Any]] | None]] = deque(maxlen=size or None)

    def add(self, request_id: str, strategy: str, question: str, outcome: Any) -> None:
        """One solved request: its Outcome (app/serve/api_job.py), whose `trace` is the first solve's."""
        if not self.size:
            return
        led = outcome.ledger
        row = {
            "id": request_id, "correct": None, "answer": outcome.extra.get("answer"), "reference": None,
            "generated": led.generated_tokens, "cached": led.cached_tokens, "verifier_calls": led.verifier_calls,
            "wall_s": round(led.wall_s, 3), "error": None, "question": question, "strategy": strategy,
            "at": time.strftime("%H:%M:%S"),
        }
        trace = getattr(outcome, "trace", None)
        self._solved.appendleft((row, tree_nodes(trace.to_json()) if trace is not None else None))

    def page(self) -> str:
        solved = list(self._solved)
        run = RunView("requests", tuple(r for r, _ in solved), {r["id"]: t for r, t in solved if t is not None})
        note = f"the last {len(solved)} solved requests, newest first (this server keeps {self.size})"
        return render([run], "ponder serve: recent requests", note=note)


def basic_key(header: str) -> str | None:
    """The password of an HTTP Basic `Authorization` header (the user name is ignored)."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        return base64.b64decode(value.strip(), validate=True).decode().partition(":")[2]
    except (binascii.Error, UnicodeDecodeError):
        return None


def view_authorized(header: str, key: str) -> bool:
    """A Bearer key, as the API takes it, or the key as the Basic password a browser sends."""
    if hmac.compare_digest(header.encode(), f"Bearer {key}".encode()):
        return True
    given = basic_key(header)
    return given is not None and hmac.compare_digest(given.encode(), key.encode())
