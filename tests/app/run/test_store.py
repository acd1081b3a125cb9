"""The run store never deletes data: only a torn last line is cut, and only before appending."""

from __future__ import annotations

import json

import pytest

from ponder.app.run.store import RunStore


def rec(i: int, error: str | None = None) -> str:
    return json.dumps({"id": f"p{i}", "correct": error is None, "error": error, "tokens": {"generated": 1, "prompt": 1, "cached": 0, "aborted": 0}, "verifier_calls": 0}) + "\n"


def store_with(tmp_path, text: str) -> RunStore:
    store = RunStore(tmp_path)
    store.results.write_text(text)
    return store


def test_a_bad_middle_line_is_an_error_naming_file_and_line_and_nothing_changes(tmp_path):
    text = rec(1) + "{not json\n" + rec(3) + rec(4)
    store = store_with(tmp_path, text)
    for call in (store.records, store.done_ids, store.repair):
        with pytest.raises(ValueError, match=rf"results.jsonl:2: not a valid result record"):
            call()
    assert store.results.read_text() == text


def test_a_line_without_an_id_is_an_error_too(tmp_path):
    store = store_with(tmp_path, rec(1) + "[1, 2]\n" + rec(3))
    with pytest.raises(ValueError, match=r"results.jsonl:2: .*not a result object with an id"):
        store.records()


def test_reading_a_torn_last_line_changes_nothing_and_repair_cuts_only_it(tmp_path):
    text = rec(1) + rec(2) + rec(3)[:20]
    store = store_with(tmp_path, text)
    assert [r["id"] for r in store.records()] == ["p1", "p2"]
    assert store.results.read_text() == text  # reading has no side effect
    store.repair()
    assert store.results.read_text() == rec(1) + rec(2)


def test_a_complete_but_unterminated_last_line_is_redone_not_glued_to_the_next(tmp_path):
    store = store_with(tmp_path, rec(1) + rec(2).rstrip("\n"))
    assert store.done_ids() == {"p1"}
    store.repair()
    assert store.results.read_text() == rec(1)


def test_the_latest_record_per_id_counts_and_errored_ids_are_not_done(tmp_path):
    store = store_with(tmp_path, rec(1, "ValueError: boom") + rec(2) + rec(3, "RuntimeError: x") + rec(1))
    assert [(r["id"], r["error"]) for r in store.records()] == [("p1", None), ("p2", None), ("p3", "RuntimeError: x")]
    assert store.done_ids() == {"p1", "p2"}
    summary = store.write_summary("t", "best_of_n", store.records(), 1.0)
    assert summary["problems"] == 3 and summary["errors"] == 1


def test_trace_files_of_ids_that_sanitise_alike_differ(tmp_path):
    store = RunStore(tmp_path)
    names = {store.trace_path(i).name for i in ("a/b", "a_b", "a b", "A_b")}
    assert len(names) == 4 and all(n.endswith(".json") and "/" not in n for n in names)
