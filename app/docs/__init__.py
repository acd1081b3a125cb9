"""The generated reference parts of docs/strategies.md and docs/contract.md, written from the
strategy registry and the strategy contract so the pages cannot drift."""
