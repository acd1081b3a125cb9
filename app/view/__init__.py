"""`ponder view`: runs as one self-contained HTML page (summary, per-problem table, reasoning
trees), and the same tree view of the last requests a `ponder serve` answered."""
