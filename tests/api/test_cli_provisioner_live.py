"""``pvc provisioner`` against the real API over HTTP, with a real PostgreSQL behind it."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from pvc.cli.main import cli
from tests.api.conftest import served_with_cli


@pytest.fixture
def pvc(api_factory, provisioner_db, tmp_path, monkeypatch):
    _, context = api_factory(auth=True)
    context.database = provisioner_db
    runner = CliRunner()

    def run(*args: str, expect: int = 0, stdin: str | None = None) -> str:
        result = runner.invoke(cli, ["-q", *args], input=stdin, catch_exceptions=False)
        assert result.exit_code == expect, result.output
        return result.output

    with served_with_cli(context, tmp_path, monkeypatch):
        yield run


def test_templates_userdata_scripts_and_profiles(pvc, tmp_path):
    pvc(
        "provisioner",
        "template",
        "system",
        "add",
        "small",
        "-u",
        "2",
        "-m",
        "1024",
        "-s",
        "--node-selector",
        "mem",
    )
    pvc("provisioner", "template", "system", "modify", "small", "-u", "4")
    [system] = json.loads(pvc("provisioner", "template", "system", "list", "-f", "json"))
    assert (system["vcpu_count"], system["vram_mb"], system["serial"], system["node_selector"]) == (
        4,
        1024,
        True,
        "mem",
    )
    assert system["migration_max_downtime"] == 300
    pvc("provisioner", "template", "network", "add", "web", "-m", "52:54:00:{vmid}:{netid}")
    pvc("provisioner", "template", "network", "vni", "add", "web", "100")
    assert "already has VNI 100" in pvc(
        "provisioner", "template", "network", "vni", "add", "web", "100", expect=1
    )
    pvc("provisioner", "template", "storage", "add", "standard")
    pvc(
        "provisioner",
        "template",
        "storage",
        "disk",
        "add",
        "standard",
        "sda",
        "-p",
        "vms",
        "-s",
        "10",
        "-f",
        "ext4",
        "--fsarg",
        "-L",
        "--fsarg",
        "root",
        "-m",
        "/",
    )
    listed = pvc("provisioner", "template", "storage", "list")
    assert "standard" in listed and "-L root" in listed
    userdata = tmp_path / "user.yaml"
    userdata.write_text("#cloud-config\nhostname: web\n")
    pvc("provisioner", "userdata", "add", "basic", str(userdata))
    assert pvc("provisioner", "userdata", "show", "basic") == "#cloud-config\nhostname: web\n"
    pvc("provisioner", "script", "add", "noop", "-", stdin="def install(vm):\n    pass\n")
    pvc("provisioner", "script", "modify", "noop", "-", stdin="def install(vm):\n    return None\n")
    assert "return None" in pvc("provisioner", "script", "list", "-l")
    pvc(
        "provisioner",
        "profile",
        "add",
        "webserver",
        "-s",
        "small",
        "-n",
        "web",
        "-t",
        "standard",
        "-u",
        "basic",
        "-x",
        "noop",
        "-a",
        "image=debian",
    )
    [profile] = json.loads(pvc("provisioner", "profile", "list", "-f", "json"))
    assert (profile["system_template"], profile["script"], profile["arguments"]) == (
        "small",
        "noop",
        ["image=debian"],
    )
    pvc("provisioner", "profile", "modify", "webserver", "-d")
    assert json.loads(pvc("provisioner", "profile", "list", "-f", "json"))[0]["arguments"] == []
    assert "used by profile(s) webserver" in pvc("provisioner", "script", "remove", "noop", "-y", expect=1)
    assert pvc("provisioner", "profile", "list", "-f", "raw").split() == ["webserver"]
    pvc("provisioner", "profile", "remove", "webserver", "-y")
    pvc("provisioner", "script", "remove", "noop", "-y")
    assert pvc("provisioner", "script", "list", "-f", "raw").strip() == ""
    assert "Missing option" in pvc("provisioner", "profile", "add", "p", "-s", "small", expect=2)
