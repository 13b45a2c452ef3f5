"""The one parser of boolean arguments, and that every boolean-like argument is declared bool."""

from __future__ import annotations

import importlib
import pkgutil

import pytest
from werkzeug.datastructures import MultiDict

import pvc.api.resources
from pvc.api.args import parse, parse_bool
from pvc.api.errors import ApiError
from pvc.api.routes import CONFIRM, Arg

TRUE = ["true", "TRUE", "True", "t", "T", "yes", "Yes", "YES", "y", "1", "on", " On "]
FALSE = ["false", "FALSE", "False", "f", "F", "no", "No", "n", "0", "off", "OFF"]


@pytest.mark.parametrize("word", TRUE)
def test_true_words(word):
    assert parse_bool("x", word) is True


@pytest.mark.parametrize("word", FALSE)
def test_false_words(word):
    assert parse_bool("x", word) is False


@pytest.mark.parametrize("word", ["", "maybe", "tru", "2", "-1", "yess", "nope", "true!"])
def test_anything_else_is_a_400_naming_the_argument_and_the_value(word):
    with pytest.raises(ApiError) as caught:
        parse_bool("force", word)
    assert caught.value.status == 400
    assert "'force' must be true or false" in str(caught.value) and f"not '{word}'" in str(caught.value)


def test_declared_bool_arguments_go_through_the_parser_from_query_or_form():
    args = (Arg("wait", kind=bool, default=False), Arg("force", kind=bool, default=False), CONFIRM)
    values = parse(args, MultiDict({"wait": "T"}), MultiDict({"yes-i-really-mean-it": "Yes"}))
    assert values == {"wait": True, "force": False, "yes-i-really-mean-it": True}
    with pytest.raises(ApiError, match="'yes-i-really-mean-it' must be true or false"):
        parse(args, MultiDict({"yes-i-really-mean-it": "whatever"}), MultiDict())


def _routes():
    for module in pkgutil.iter_modules(pvc.api.resources.__path__):
        group = getattr(importlib.import_module(f"pvc.api.resources.{module.name}"), "group", None)
        yield from group.routes if group else ()


#: Arguments that are booleans in PVC v1 (strtobool or a true/false choice), or confirmations.
BOOLEAN_NAMES = {
    "autostart",
    "delete_disks",
    "force",
    "force_live",
    "negate",
    "overwrite",
    "protected",
    "restart",
    "wait",
    "yes-i-really-mean-it",
}


def test_every_boolean_argument_is_declared_bool():
    seen = set()
    for route in _routes():
        for arg in route.args:
            looks_boolean = arg.name in BOOLEAN_NAMES or (
                arg.choices is not None and {str(c).lower() for c in arg.choices} <= {"true", "false"}
            )
            if looks_boolean:
                seen.add(arg.name)
                assert arg.kind is bool, f"{route.method} {route.path} {arg.name}"
    assert {"overwrite", "yes-i-really-mean-it", "force", "wait"} <= seen
    maintenance = next(r for r in _routes() if r.path == "/status" and r.method == "POST")
    assert [a.kind for a in maintenance.args] == [bool]
