"""`ponder value train`: a value head fitted on the policy's own hidden states, labelled from
the policy's own outcomes (see docs/value-model.md)."""
