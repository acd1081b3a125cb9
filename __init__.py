"""ponder: test-time reasoning orchestration on a batched engine with a shared prefix cache."""

from __future__ import annotations

__version__ = "0.1.0"
