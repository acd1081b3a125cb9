"""Kept so `from ponder.runtime.problem import Problem` keeps working; the record lives in records/."""

from ..records.problem import Problem

__all__ = ["Problem"]
