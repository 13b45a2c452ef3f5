"""Option defaults as in the PVC v1 command tree, and the behaviour those defaults give."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import pytest

from pvc.cli.main import cli
from tests.cli.conftest import Invoke, command_tree
from tests.cli.fakeapi_vm import FakeVmApi
from tests.cli.vm_fixtures import api_port_fixture, fake_api_fixture  # noqa: F401
from tests.helpers import reference_file

#: Differences kept on purpose: (command, option, what) -> why.
DELIBERATE = {
    # v1 takes any text and lets the API refuse a non-number; ours checks it is a whole number
    # of milliseconds before sending (the same requests reach the API).
    ("pvc vm meta", "-d/--max-downtime", "type"): "validated client-side",
}


def _default(param: click.Parameter) -> Any:
    """The default, None when there is none (the tree's spelling, for repeated ones too)."""
    value = param.default
    if value is None or type(value).__name__ == "Sentinel":  # click's "not given"
        return None
    value = list(value) if isinstance(value, tuple) else value
    return None if value == [] else value


def _type_name(param: click.Parameter) -> str:
    kind = param.type
    for name, cls in (
        ("choice", click.Choice),
        ("file", click.File),
        ("int", click.types.IntParamType),
        ("float", click.types.FloatParamType),
        ("str", click.types.StringParamType),
    ):
        if isinstance(kind, cls):
            return name
    return type(kind).__name__


def _ours(command: click.Command, reference: dict) -> click.Parameter | None:
    if reference["kind"] == "argument":
        return next(
            (p for p in command.params if isinstance(p, click.Argument) and p.name == reference["name"]), None
        )
    wanted = set(reference["opts"])
    return next((p for p in command.params if isinstance(p, click.Option) and wanted & set(p.opts)), None)


def differences(tree: list[dict]) -> list[tuple[str, str, str, Any, Any]]:
    """(command, parameter, what, v1, ours) for every parameter of a command both trees have."""
    ours = dict(command_tree())
    found = []
    for entry in tree:
        command = ours.get(entry["path"])
        if command is None:
            continue
        for ref in entry["params"]:
            label = "/".join(ref.get("opts", [ref["name"]]))
            param = _ours(command, ref)
            if param is None:
                found.append((entry["path"], label, "missing", label, None))
                continue
            flag = isinstance(param, click.Option) and param.is_flag
            checks = [
                ("required", bool(ref.get("required")), bool(param.required)),
                ("is_flag", bool(ref.get("is_flag")), flag),
                ("envvar", ref.get("envvar"), getattr(param, "envvar", None)),
            ]
            if callable(param.default) and ref["kind"] == "argument":
                pass  # NODE: the local host name, computed when the command runs
            else:
                v1_default = ref.get("default")
                checks.append(("default", None if v1_default == [] else v1_default, _default(param)))
            if ref.get("secondary_opts"):
                checks.append(("secondary_opts", ref["secondary_opts"], getattr(param, "secondary_opts", [])))
            kind = ref.get("type", "")
            if kind and not flag:
                checks.append(("type", kind.split("[")[0], _type_name(param)))
                if kind.startswith("choice[") and isinstance(param.type, click.Choice):
                    choices = sorted(kind[len("choice[") : -1].split("|"))
                    checks.append(("choices", choices, sorted(param.type.choices)))
            found.extend(
                (entry["path"], label, what, v1, mine)
                for what, v1, mine in checks
                if v1 != mine and (entry["path"], label, what) not in DELIBERATE
            )
    return found


def test_parameters_match_the_v1_tree() -> None:
    assert differences(json.loads(reference_file("pvc-cli-tree.json").read_text())) == []


def test_the_comparison_sees_a_changed_default(monkeypatch: pytest.MonkeyPatch) -> None:
    meta = cli.commands["vm"].commands["meta"]  # type: ignore[attr-defined]
    method = next(p for p in meta.params if p.name == "migration_method")
    monkeypatch.setattr(method, "default", None)
    tree = [
        {
            "path": "pvc vm meta",
            "params": [
                {
                    "name": "migration_method",
                    "kind": "option",
                    "opts": ["-m", "--method"],
                    "is_flag": False,
                    "type": "choice[none|live|shutdown]",
                    "default": "none",
                }
            ],
        }
    ]
    assert differences(tree) == [("pvc vm meta", "-m/--method", "default", "none", None)]


# pvc vm meta: -m/--method defaults to none and is always sent.


def test_meta_sends_the_default_migration_method(pvc: Invoke, connected: int, fake_api: FakeVmApi) -> None:
    result = pvc("vm", "meta", "vm1", "-l", "hv1")
    assert result.exit_code == 0, result.output
    assert fake_api.calls("POST", "/vm/vm1/meta")[0].args == {"limit": ["hv1"], "migration_method": ["none"]}
    assert "[default: none]" in pvc("vm", "meta", "-h").stdout


# pvc vm modify: without -r the CLI asks whether to restart a running VM.


def _changed(fake_api: FakeVmApi, tmp_path: Path, name: str) -> str:
    config = tmp_path / f"{name}.xml"
    config.write_text(fake_api.vms[name]["xml"].replace("</domain>", "<description>x</description></domain>"))
    return str(config)


@pytest.mark.parametrize(("answer", "restart"), [("y\n", "true"), ("n\n", "false"), ("", "false")])
def test_modify_asks_whether_to_restart_a_running_vm(
    pvc: Invoke, connected: int, fake_api: FakeVmApi, tmp_path: Path, answer: str, restart: str
) -> None:
    result = pvc("vm", "modify", "vm1", _changed(fake_api, tmp_path, "vm1"), "-d", input=answer)
    assert result.exit_code == 0, result.output
    assert "Restart VM vm1 to apply the change? [y/N]" in result.stderr
    assert fake_api.calls("PUT", "/vm/vm1")[0].args == {"restart": [restart]}


@pytest.mark.parametrize("flags", [["-y"], ["-d", "-c"]])
def test_modify_does_not_ask_when_told_not_to(
    pvc: Invoke, connected: int, fake_api: FakeVmApi, tmp_path: Path, flags: list[str]
) -> None:
    result = pvc("vm", "modify", "vm1", _changed(fake_api, tmp_path, "vm1"), *flags)
    assert result.exit_code == 0, result.output
    assert "Restart VM" not in result.stderr
    assert fake_api.calls("PUT", "/vm/vm1")[0].args == {"restart": ["false"]}


def test_modify_does_not_ask_about_a_stopped_vm(
    pvc: Invoke, connected: int, fake_api: FakeVmApi, tmp_path: Path
) -> None:
    result = pvc("vm", "modify", "vm2", _changed(fake_api, tmp_path, "vm2"), "-d")
    assert result.exit_code == 0, result.output
    assert "Restart VM" not in result.stderr
    assert fake_api.calls("PUT", "/vm/vm2")[0].args == {"restart": ["false"]}
