"""record_table: the one table shape the CLI views use for a list of JSON objects."""

from __future__ import annotations

import io

from rich.console import Console, RenderableType

from pvc.cli.output import record_table


def _text(renderable: RenderableType) -> list[list[str]]:
    console = Console(file=io.StringIO(), width=200, no_color=True, highlight=False)
    with console.capture() as capture:
        console.print(renderable)
    return [line.split() for line in capture.get().splitlines()]


def test_a_row_per_object_with_keys_and_functions_as_columns():
    items = [{"name": "a", "size": 1}, "not an object", {"name": "b"}]
    columns = [("Name", "name"), ("Size", "size"), ("Twice", lambda record: record["name"] * 2)]
    lines = _text(record_table(items, columns, "-"))
    assert lines[0] == ["Name", "Size", "Twice"]
    assert lines[2:] == [["a", "1", "aa"], ["b", "N/A", "bb"]]


def test_no_objects_gives_the_empty_text():
    assert _text(record_table([], [("Name", "name")], "Nothing here.")) == [["Nothing", "here."]]
    assert _text(record_table(None, [("Name", "name")], "Nothing here.")) == [["Nothing", "here."]]
