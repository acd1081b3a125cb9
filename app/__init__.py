"""The application on top of the strategies, one sub-package per job: run/ (batch runs and their
results), data/ (problem sets), cluster/ (runs on Ray), serve/ (the OpenAI-compatible server),
view/ (runs and trees as HTML), sweep/ (compute-optimal sweeps), value/ (the value model),
docs/ (generated reference pages)."""
