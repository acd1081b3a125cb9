"""`ponder serve`: OpenAI-compatible chat and text completions in front of any strategy, each
request held to its own limits, streamed as Server-Sent Events, thinking budgets included."""
