"""Parsing declared arguments from the query string and the form body."""

from __future__ import annotations

from typing import Any

from werkzeug.datastructures import MultiDict

from pvc.api.errors import ApiError
from pvc.api.routes import CONFIRM, FALSE_WORDS, TRUE_WORDS, Arg


def parse_bool(name: str, raw: str) -> bool:
    """A boolean argument's value: true/t/yes/y/1/on or false/f/no/n/0/off, in any case.

    The one parser of boolean arguments; anything else is a 400 naming the argument."""
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ApiError(
        f"Argument '{name}' must be true or false (or t/f, yes/no, y/n, 1/0, on/off; any case), not '{raw}'"
    )


def confirmed(values: dict[str, Any]) -> bool:
    """Whether the parsed arguments of a request confirm it (``yes-i-really-mean-it`` true)."""
    return values.get(CONFIRM.name) is True


def _convert(arg: Arg, raw: str) -> Any:
    if arg.kind is bool:
        return parse_bool(arg.name, raw)
    if arg.kind is int:
        try:
            value = int(raw)
        except ValueError:
            raise ApiError(f"Argument '{arg.name}' must be an integer, not '{raw}'") from None
        if arg.minimum is not None and value < arg.minimum:
            raise ApiError(f"Argument '{arg.name}' must be at least {arg.minimum}")
        return value
    if arg.kind is float:
        try:
            number = float(raw)
        except ValueError:
            raise ApiError(f"Argument '{arg.name}' must be a number, not '{raw}'") from None
        if number != number or number in (float("inf"), float("-inf")):
            raise ApiError(f"Argument '{arg.name}' must be a finite number")
        if arg.minimum is not None and number < arg.minimum:
            raise ApiError(f"Argument '{arg.name}' must be at least {arg.minimum}")
        return number
    if arg.choices is not None and raw not in arg.choices:
        raise ApiError(f"Argument '{arg.name}' must be one of {', '.join(arg.choices)}; got '{raw}'")
    return raw


def parse(args: tuple[Arg, ...] | list[Arg], query: MultiDict, form: MultiDict) -> dict[str, Any]:
    """Values of the declared arguments (query string first, then form body; body-only
    arguments from the form body alone)."""
    values: dict[str, Any] = {}
    for arg in args:
        if arg.body_only and arg.name in query:
            raise ApiError(f"Argument '{arg.name}' must be sent in the request body, never in the URL")
        raw = form.getlist(arg.name) if arg.body_only else query.getlist(arg.name) + form.getlist(arg.name)
        if not raw:
            if arg.required:
                raise ApiError(f"Argument '{arg.name}' is required" + (f": {arg.help}" if arg.help else ""))
            values[arg.name] = arg.default
            continue
        if arg.many:
            values[arg.name] = [_convert(arg, item) for item in raw]
        else:
            values[arg.name] = _convert(arg, raw[0])
    return values
