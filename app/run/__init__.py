"""Batch runs and what comes of them: `ponder run` (a strict YAML config, a dataset through a
strategy into a resumable run directory), `ponder report`, `ponder merge`, `ponder grade`, the
bootstrap interval of every accuracy, and `ponder.solve` for one question."""
