"""Output formats shared by the commands: JSON, raw name lists and rich tables.

``json`` is compact, ``json-pretty`` is indented by 2, ``raw`` is one name per line and the
``pretty``/``short``/``long`` forms are rich tables rendered as plain text. Colour is used on a
terminal, or anywhere with ``--colour``; otherwise the text carries no escape codes.
"""

from __future__ import annotations

import io
import json
import shutil
import sys
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import click
from rich import box
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from pvc.cli.context import options

F = TypeVar("F", bound=Callable[..., Any])

# A header rule of ASCII dashes and nothing else, so piped output stays plain and grep-friendly.
PLAIN_HEAD = box.Box("    \n    \n -- \n    \n    \n    \n    \n    \n", ascii=True)
NON_TTY_WIDTH = 200
#: What a view shows for a value the API did not give.
NOT_AVAILABLE = "N/A"


def text_or_na(value: Any) -> str:
    """``value`` as text, or :data:`NOT_AVAILABLE` when it is missing or empty."""
    return NOT_AVAILABLE if value is None or value == "" else str(value)


def as_dict(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def dicts(value: Any) -> list[dict[str, Any]]:
    """The JSON objects in ``value`` if it is a list (anything else is skipped)."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def is_number(value: Any) -> bool:
    """True for ints and floats, not for booleans."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def format_option(*choices: str, default: str = "pretty") -> Callable[[F], F]:
    """The ``-f/--format`` option with the given choices (stored as ``output_format``)."""
    return click.option(
        "-f",
        "--format",
        "output_format",
        type=click.Choice(choices),
        default=default,
        show_default=True,
        help="Output format.",
    )


def stdout_is_tty() -> bool:
    """Whether stdout is an interactive terminal."""
    stream = sys.stdout
    return bool(getattr(stream, "isatty", lambda: False)())


def use_colour() -> bool:
    """Colour on a terminal, or when ``--colour`` forces it."""
    return options().colour or stdout_is_tty()


def render(renderable: RenderableType) -> str:
    """Render a rich object to text (with ANSI codes only when colour is in use)."""
    colour = use_colour()
    width = shutil.get_terminal_size((120, 24)).columns if stdout_is_tty() else NON_TTY_WIDTH
    console = Console(
        file=io.StringIO(),
        force_terminal=colour,
        no_color=not colour,
        color_system="standard" if colour else None,
        width=width,
        highlight=False,
        emoji=False,
        markup=False,
        soft_wrap=False,
    )
    with console.capture() as capture:
        console.print(renderable)
    return "\n".join(line.rstrip() for line in capture.get().splitlines())


def emit_renderable(renderable: RenderableType) -> None:
    """Print a rich object to stdout."""
    options().emit(render(renderable))


def emit_json(data: Any, pretty: bool = False) -> None:
    """Print data as compact JSON, or indented by 2 for ``json-pretty``."""
    options().emit(json.dumps(data, indent=2) if pretty else json.dumps(data))


def emit_lines(items: Iterable[Any]) -> None:
    """Print one item per line (the ``raw`` format)."""
    for item in items:
        options().emit(str(item))


def emit_data(data: Any, output_format: str, pretty: Callable[[Any], RenderableType | str]) -> None:
    """Print ``data`` as JSON for the json formats, else through the ``pretty`` formatter."""
    if output_format in ("json", "json-pretty"):
        emit_json(data, pretty=output_format == "json-pretty")
        return
    shown = pretty(data)
    if isinstance(shown, str):
        options().emit(shown)
    else:
        emit_renderable(shown)


def table(*headers: str, title: str | None = None) -> Table:
    """An empty table with a bold header and a dashed rule under it."""
    return Table(
        *headers,
        title=title,
        title_justify="left",
        box=PLAIN_HEAD,
        show_edge=False,
        pad_edge=False,
        header_style="bold",
        title_style="bold",
    )


#: What a :func:`record_table` column may show for a record besides one of its keys.
Cell = Callable[[dict[str, Any]], RenderableType | str]
#: A column of :func:`record_table`: its heading and the key it shows, or a function of the record.
Column = tuple[str, str | Cell]


def record_table(items: Any, columns: Iterable[Column], empty: str) -> RenderableType:
    """A table with a row for each JSON object in ``items``, or the ``empty`` text when there are none.

    A column given a key shows that key's value (:data:`NOT_AVAILABLE` when missing); one given a
    function shows what it returns for the record.
    """
    records = dicts(items)
    if not records:
        return Text(empty)
    columns = list(columns)
    view = table(*(heading for heading, _ in columns))
    for record in records:
        cells = (show(record) if callable(show) else text_or_na(record.get(show)) for _, show in columns)
        view.add_row(*cells)
    return view


def details(rows: Iterable[tuple[str, RenderableType | str]]) -> Table:
    """A two-column ``Label: value`` grid for single-object views."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    for label, value in rows:
        grid.add_row(f"{label}:", value)
    return grid


def health_text(health: Any, suffix: str = "%") -> Text:
    """A health figure coloured green (>90), yellow (>50) or red; N/A when unknown."""
    if not isinstance(health, int | float) or isinstance(health, bool):
        return Text("N/A")
    style = "green" if health > 90 else "yellow" if health > 50 else "red"
    return Text(f"{health}{suffix}", style=style)


def state_text(value: Any, good: Iterable[str] = (), bad: Iterable[str] = ()) -> Text:
    """A state word coloured green when good, red when bad and yellow otherwise."""
    word = "N/A" if value is None else str(value)
    style = "green" if word in good else "red" if word in bad else "yellow"
    return Text(word, style=style)


BYTE_UNITS = ("K", "M", "G", "T", "P", "E")


def human_bytes(value: Any) -> str:
    """A byte count as ``512B``/``4.0K``/``1.5G`` (powers of 1024); other values pass through."""
    if not is_number(value):
        return text_or_na(value)
    size, unit = float(value), "B"
    for next_unit in BYTE_UNITS:
        if abs(size) < 1024:
            break
        size, unit = size / 1024, next_unit
    return f"{int(value)}B" if unit == "B" else f"{size:.1f}{unit}"


def human_mib(value: Any) -> str:
    """A size in MiB as ``512M``/``31.5G``/``2.0T``; values that are not numbers pass through."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "N/A" if value is None else str(value)
    if abs(value) >= 1024 * 1024:
        return f"{value / (1024 * 1024):.1f}T"
    if abs(value) >= 1024:
        return f"{value / 1024:.1f}G"
    return f"{int(value)}M"
