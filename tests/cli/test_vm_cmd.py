"""``pvc vm``: list, info, dump, define, modify, meta, state and placement, removal, tags, logs,
and flush-locks (the XML edits are in test_vm_xml_cmd)."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest

from tests.cli.conftest import Invoke
from tests.cli.fakeapi_vm import FakeVmApi, domain_xml
from tests.cli.vm_fixtures import api_port_fixture, fake_api_fixture, last_put, stored_xml  # noqa: F401

NEW_XML = domain_xml("vm3", "12345678-1234-1234-1234-123456789abc", nics=(("vmbr100", "52:54:00:00:00:33"),))


# Listing and reading.


def test_list_formats(pvc: Invoke, connected: int, fake_api: FakeVmApi) -> None:
    pretty = pvc("vm", "list")
    assert pretty.exit_code == 0, pretty.output
    header, rule, *rows = pretty.stdout.splitlines()
    assert header.split() == [
        "Name",
        "State",
        "Node",
        "Migrated",
        "vCPUs",
        "RAM",
        "(MiB)",
        "Tags",
        "Networks",
    ]
    assert set(rule) == {"-"}
    assert rows[0].split() == ["vm1", "start", "hv1", "no", "2", "2048", "web", "100"]
    assert rows[1].split() == ["vm2", "stop", "hv2", "from", "hv1", "4", "4096", "prod", "100,200"]
    assert pvc("vm", "list", "-f", "raw").stdout == "vm1\nvm2\n"
    data = json.loads(pvc("vm", "list", "-f", "json").stdout)
    assert [vm["name"] for vm in data] == ["vm1", "vm2"]
    assert data[0]["networks"][0]["mac"] == "52:54:00:00:00:01"
    assert pvc("vm", "list", "-f", "json-pretty").stdout.startswith("[\n  {\n")
    assert fake_api.calls("GET", "/vm")[0].args == {}
    fake_api.vms.clear()
    assert pvc("vm", "list").stdout.strip() == "No VMs."


def test_list_filters_sent_as_query(pvc: Invoke, connected: int, fake_api: FakeVmApi) -> None:
    result = pvc("vm", "list", "vm", "-t", "hv1", "-s", "start", "-g", "web", "-f", "raw")
    assert result.stdout.split() == ["vm1"]
    assert fake_api.calls("GET", "/vm")[0].args == {
        "limit": ["vm"],
        "node": ["hv1"],
        "state": ["start"],
        "tag": ["web"],
    }
    negated = pvc("vm", "list", "--negate", "--state", "start", "-f", "raw")
    assert negated.stdout.split() == ["vm2"]
    assert fake_api.calls("GET", "/vm")[1].args == {"state": ["start"], "negate": ["true"]}


def test_info_formats(pvc: Invoke, connected: int, fake_api: FakeVmApi) -> None:
    pretty = pvc("vm", "info", "vm2")
    assert pretty.exit_code == 0, pretty.output
    text = pretty.stdout
    for expected in (
        "Name:                   vm2",
        "UUID:                   66666666-7777-8888-9999-000000000000",
        "Description:            A test VM",
        "State:                  stop",
        "Last node:              hv1",
        "Migrated:               from hv1",
        "vCPUs:                  4 (topology 1/2/2)",
        "Memory:                 4096 MiB",
        "Node limit:             hv1,hv2",
        "Node selector:          Default",
        "Autostart:              No",
        "Migration max downtime: 300 ms",
        "Tags:                   prod (user, protected)",
        "VNC:                    127.0.0.1:5901",
    ):
        assert expected in text, expected
    assert "Failed reason" not in text
    assert text.count("52:54:00:00:00:0") == 2 and "vmbr200" in text
    assert "vms/vm2_disk0" in text and "virtio" in text
    assert "statistics" not in text and "Emulator" not in text
    fake_api.vms["vm1"]["failed_reason"] = "libvirt said no"
    long = pvc("vm", "info", "vm1", "--format", "long").stdout
    assert "Failed reason:" in long and "libvirt said no" in long
    for expected in ("Emulator", "/usr/bin/qemu-system-x86_64", "Memory statistics", "vCPU statistics"):
        assert expected in long, expected
    assert "Network statistics" in long and "Disk statistics" in long and "8192" in long
    memory_row = long.split("Memory statistics (KiB)")[1].splitlines()[3].split()
    assert memory_row[0] == "2097152" and memory_row.count("N/A") == 8  # not reported by libvirt
    data = json.loads(pvc("vm", "info", "vm1", "-f", "json").stdout)
    assert data["name"] == "vm1" and data["disks"][0]["name"] == "vms/vm1_disk0"
    assert fake_api.calls("GET", "/vm/vm1")


def test_info_of_a_vm_that_is_not_running_shows_no_figures(pvc: Invoke, connected: int) -> None:
    result = pvc("vm", "info", "vm2", "--format", "long")
    assert result.exit_code == 0, result.output
    assert "Memory statistics" not in result.stdout and "vCPU statistics" not in result.stdout
    disk_stats = result.stdout.split("Disk statistics")[1].splitlines()
    assert disk_stats[3].split() == ["vms/vm2_disk0", "N/A", "N/A", "N/A", "N/A"]
    nic_stats = result.stdout.split("Network statistics")[1].split("Disk statistics")[0].splitlines()
    assert all(row.split()[1:] == ["N/A"] * 8 for row in nic_stats[3:] if row.strip())


def test_info_unknown_vm_is_a_one_line_error(pvc: Invoke, connected: int) -> None:
    result = pvc("vm", "info", "ghost")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == "Error: VM not found"
    assert result.stdout == ""


def test_dump_to_stdout_and_file(pvc: Invoke, connected: int, fake_api: FakeVmApi, tmp_path: Path) -> None:
    result = pvc("vm", "dump", "vm1")
    assert result.exit_code == 0
    assert result.stdout == fake_api.vms["vm1"]["xml"]
    target = tmp_path / "vm1.xml"
    written = pvc("vm", "dump", "vm1", "-f", str(target))
    assert written.exit_code == 0 and written.stdout == ""
    assert target.read_text() == fake_api.vms["vm1"]["xml"]


# Defining and changing the definition.


def test_define_from_file_with_options(
    pvc: Invoke, connected: int, fake_api: FakeVmApi, tmp_path: Path
) -> None:
    config = tmp_path / "vm3.xml"
    config.write_text(NEW_XML)
    result = pvc(
        "vm", "define", str(config), "-t", "hv2", "-l", "hv1,hv2", "-s", "mem", "-a", "-m", "live",
        "-d", "100", "-g", "web", "-g", "db", "-G", "prod",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "Added new VM with Name vm3"
    call = fake_api.calls("POST", "/vm")[0]
    assert call.form == {"xml": [NEW_XML]}
    assert call.args == {
        "node": ["hv2"],
        "limit": ["hv1,hv2"],
        "selector": ["mem"],
        "autostart": ["true"],
        "migration_method": ["live"],
        "migration_max_downtime": ["100"],
        "user_tags": ["web", "db"],
        "protected_tags": ["prod"],
    }
    assert fake_api.vms["vm3"]["node"] == "hv2"


def test_define_from_stdin_defaults_and_errors(pvc: Invoke, connected: int, fake_api: FakeVmApi) -> None:
    result = pvc("vm", "define", "-", input=NEW_XML)
    assert result.exit_code == 0, result.output
    assert fake_api.calls("POST", "/vm")[0].args == {
        "selector": ["none"],
        "autostart": ["false"],
        "migration_method": ["none"],
        "migration_max_downtime": ["300"],
    }
    again = pvc("vm", "define", "-", input=NEW_XML)
    assert again.exit_code == 1
    assert again.stderr.splitlines()[-1] == "Error: VM vm3 already exists"
    bad = pvc("vm", "define", "-", input="<domain>")
    assert bad.exit_code == 1
    assert "Error: <stdin>: the domain XML is not well-formed" in bad.stderr
    assert len(fake_api.calls("POST", "/vm")) == 2


def test_modify_from_file(pvc: Invoke, connected: int, fake_api: FakeVmApi, tmp_path: Path) -> None:
    changed = fake_api.vms["vm1"]["xml"].replace("<vcpu>2</vcpu>", "<vcpu>8</vcpu>")
    config = tmp_path / "vm1.xml"
    config.write_text(changed)
    declined = pvc("vm", "modify", "vm1", str(config), input="n\n")
    assert declined.exit_code == 0
    assert "-  <vcpu>2</vcpu>" in declined.stdout and "+  <vcpu>8</vcpu>" in declined.stdout
    assert "Write these changes to VM vm1? [y/N]" in declined.stderr
    assert declined.stdout.splitlines()[-1] == "Aborted."
    assert fake_api.calls("PUT") == []
    accepted = pvc("vm", "modify", "vm1", str(config), input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert accepted.stdout.splitlines()[-1] == "Modified VM vm1"
    call = fake_api.calls("PUT", "/vm/vm1")[0]
    assert call.args == {"restart": ["false"]} and call.form == {"xml": [changed]}
    assert pvc("vm", "modify", "vm1", str(config), "-y").stdout.strip() == "No changes to VM vm1."


def test_modify_restart_and_confirmations(
    pvc: Invoke, connected: int, fake_api: FakeVmApi, tmp_path: Path
) -> None:
    config = tmp_path / "vm1.xml"
    config.write_text(fake_api.vms["vm1"]["xml"].replace("A test VM", "Changed"))
    refused = pvc("vm", "modify", "vm1", str(config), "-d", "-r", input="n\n")
    assert refused.exit_code == 0 and "Restart VM vm1? [y/N]" in refused.stderr
    assert "Changed" not in refused.stdout
    assert fake_api.calls("PUT") == []
    result = pvc("vm", "modify", "vm1", str(config), "-d", "-r", "-c")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "Modified VM vm1 and restarted"
    assert fake_api.calls("PUT", "/vm/vm1")[0].args == {"restart": ["true"]}


def test_modify_with_editor(
    pvc: Invoke, connected: int, fake_api: FakeVmApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = []
    original = fake_api.vms["vm1"]["xml"]

    def edit(text: str, **kwargs: object) -> str | None:
        seen.append(text)
        return text.replace("<vcpu>2</vcpu>", "<vcpu>3</vcpu>")

    monkeypatch.setattr(click, "edit", edit)
    result = pvc("vm", "modify", "vm1", "--editor", "--yes")
    assert result.exit_code == 0, result.output
    assert seen == [original]
    assert stored_xml(fake_api, "vm1").findtext("vcpu") == "3"
    monkeypatch.setattr(click, "edit", lambda text, **kwargs: None)
    unchanged = pvc("vm", "modify", "vm1", "-e")
    assert unchanged.stdout.strip() == "No changes to VM vm1."
    assert len(fake_api.calls("PUT")) == 1


def test_modify_needs_one_source(pvc: Invoke, connected: int, tmp_path: Path) -> None:
    neither = pvc("vm", "modify", "vm1")
    assert neither.exit_code == 2 and "Give either CFGFILE or -e/--editor" in neither.stderr
    config = tmp_path / "vm1.xml"
    config.write_text(NEW_XML)
    assert pvc("vm", "modify", "vm1", str(config), "-e").exit_code == 2
    config.write_text("<network/>")
    bad = pvc("vm", "modify", "vm1", str(config), "-y")
    assert bad.exit_code == 1 and "the root element must be <domain>" in bad.stderr


def test_meta_sends_only_given_options(pvc: Invoke, connected: int, fake_api: FakeVmApi) -> None:
    result = pvc("vm", "meta", "vm1", "-l", "hv1", "-A", "-p", "web-profile")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "Successfully modified PVC metadata of VM vm1"
    assert fake_api.calls("POST", "/vm/vm1/meta")[0].args == {
        "limit": ["hv1"],
        "autostart": ["false"],
        "migration_method": ["none"],  # -m defaults to none, as in PVC v1
        "profile": ["web-profile"],
    }
    pvc("vm", "meta", "vm1", "-s", "load", "-m", "shutdown", "-d", "50", "--autostart")
    assert fake_api.calls("POST", "/vm/vm1/meta")[1].args == {
        "selector": ["load"],
        "autostart": ["true"],
        "migration_method": ["shutdown"],
        "migration_max_downtime": ["50"],
    }
    reset = pvc("vm", "meta", "vm1")
    assert reset.exit_code == 0, reset.output
    assert fake_api.calls("POST", "/vm/vm1/meta")[2].args == {"migration_method": ["none"]}


# State and placement.


def test_start_and_state_params(pvc: Invoke, connected: int, fake_api: FakeVmApi) -> None:
    result = pvc("vm", "start", "vm2")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == 'Set VM "vm2" state to "start"'
    assert fake_api.calls("POST", "/vm/vm2/state")[0].args == {
        "state": ["start"],
        "force": ["false"],
        "wait": ["false"],
    }
    pvc("vm", "start", "vm2", "--force")
    assert fake_api.calls("POST", "/vm/vm2/state")[1].args["force"] == ["true"]


@pytest.mark.parametrize(
    ("args", "question", "state"),
    [
        (["restart", "vm1", "-w"], "Restart VM vm1?", "restart"),
        (["shutdown", "vm1", "--wait"], "Shut down VM vm1?", "shutdown"),
        (["stop", "vm1", "--force"], "Forcibly stop VM vm1?", "stop"),
        (["disable", "vm1", "--force"], "Forcibly stop and disable VM vm1?", "disable"),
    ],
)
def test_confirmed_state_changes(
    pvc: Invoke, connected: int, fake_api: FakeVmApi, args: list[str], question: str, state: str
) -> None:
    refused = pvc("vm", *args)
    assert refused.exit_code == 0
    assert question in refused.stderr and refused.stdout.strip() == "Aborted."
    assert fake_api.calls("POST", "/vm/vm1/state") == []
    done = pvc("vm", *args, "-y")
    assert done.exit_code == 0, done.output
    assert done.stdout.strip() == f'Set VM "vm1" state to "{state}"'
    sent = fake_api.calls("POST", "/vm/vm1/state")[0].args
    assert sent["state"] == [state]
    assert sent["wait"] == ["true" if "-w" in args or "--wait" in args else "false"]
    assert sent["force"] == ["true" if "--force" in args else "false"]
    prompted = pvc("vm", *args, input="y\n")
    assert prompted.exit_code == 0 and len(fake_api.calls("POST", "/vm/vm1/state")) == 2
    assert pvc("-u", "vm", *args).exit_code == 0
    assert len(fake_api.calls("POST", "/vm/vm1/state")) == 3


def test_a_wait_the_server_cut_short_is_not_an_error(pvc: Invoke, connected: int) -> None:
    result = pvc("vm", "shutdown", "vm2", "-w", "-y")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == 'Set VM "vm2" state to "shutdown"; not finished after 30 s; it goes on'


def test_disable_without_force_does_not_ask(pvc: Invoke, connected: int, fake_api: FakeVmApi) -> None:
    result = pvc("vm", "disable", "vm2")
    assert result.exit_code == 0 and "?" not in result.stderr
    assert fake_api.calls("POST", "/vm/vm2/state")[0].args["state"] == ["disable"]


def test_state_change_error(pvc: Invoke, connected: int) -> None:
    result = pvc("vm", "start", "ghost")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == "Error: VM ghost not found"


def test_migrate_move_unmigrate(pvc: Invoke, connected: int, fake_api: FakeVmApi) -> None:
    migrated = pvc("vm", "migrate", "vm1", "-t", "hv2", "-f", "-w", "--force-live")
    assert migrated.exit_code == 0, migrated.output
    assert migrated.stdout.strip() == 'Migrate VM "vm1" to node "hv2".'
    calls = fake_api.calls("POST", "/vm/vm1/node")
    assert calls[0].args == {
        "action": ["migrate"],
        "node": ["hv2"],
        "force": ["true"],
        "wait": ["true"],
        "force_live": ["true"],
    }
    pvc("vm", "move", "vm1", "--target", "hv2")
    assert calls[0].args.keys() == fake_api.calls("POST", "/vm/vm1/node")[1].args.keys()
    assert fake_api.calls("POST", "/vm/vm1/node")[1].args == {
        "action": ["move"],
        "node": ["hv2"],
        "force": ["false"],
        "wait": ["false"],
        "force_live": ["false"],
    }
    back = pvc("vm", "unmigrate", "vm2", "-w")
    assert back.exit_code == 0
    assert fake_api.calls("POST", "/vm/vm2/node")[0].args == {
        "action": ["unmigrate"],
        "force": ["false"],
        "wait": ["true"],
        "force_live": ["false"],
    }
    refused = pvc("vm", "unmigrate", "vm1")
    assert refused.exit_code == 1
    assert refused.stderr.splitlines()[-1] == 'Error: ERROR: VM "vm1" has not been previously migrated.'


# Removal and renaming.


@pytest.mark.parametrize(
    ("command", "delete_disks", "question"),
    [
        ("undefine", "false", "Undefine VM vm2 (its disks are kept)?"),
        ("remove", "true", "delete all its disks?"),
    ],
)
def test_undefine_and_remove(
    pvc: Invoke, connected: int, fake_api: FakeVmApi, command: str, delete_disks: str, question: str
) -> None:
    refused = pvc("vm", command, "vm2")
    assert refused.exit_code == 0 and question in refused.stderr
    assert fake_api.calls("DELETE") == [] and "vm2" in fake_api.vms
    done = pvc("vm", command, "vm2", "--yes")
    assert done.exit_code == 0, done.output
    assert fake_api.calls("DELETE", "/vm/vm2")[0].args == {"delete_disks": [delete_disks]}
    assert "vm2" not in fake_api.vms
    gone = pvc("vm", command, "vm2", "-y")
    assert gone.exit_code == 1 and gone.stderr.splitlines()[-1] == "Error: VM vm2 not found"


def test_rename(pvc: Invoke, connected: int, fake_api: FakeVmApi) -> None:
    refused = pvc("vm", "rename", "vm2", "vm9")
    assert refused.exit_code == 0 and "Rename VM vm2 to vm9?" in refused.stderr
    assert fake_api.calls("POST", "/vm/vm2/rename") == []
    result = pvc("vm", "rename", "vm2", "vm9", "-y")
    assert result.exit_code == 0 and result.stdout.strip() == "Renamed VM vm2 to vm9"
    assert fake_api.calls("POST", "/vm/vm2/rename")[0].args == {"new_name": ["vm9"]}


# Tasks, logs and tags.


def test_flush_locks_waits_or_not(pvc: Invoke, connected: int, fake_api: FakeVmApi) -> None:
    waited = pvc("vm", "flush-locks", "vm2")
    assert waited.exit_code == 0, waited.output
    assert waited.stdout.strip() == "SUCCESS: Flushed locks"
    assert fake_api.calls("GET", "/tasks/cafe0001")
    queued = pvc("vm", "flush-locks", "vm2", "--no-wait")
    assert queued.stdout.strip() == "Task ID: cafe0002 assigned to node hv1"
    assert fake_api.calls("GET", "/tasks/cafe0002") == []
    assert len(fake_api.calls("POST", "/vm/vm2/locks")) == 2


def test_flush_locks_failure_exits_1(
    pvc: Invoke, connected: int, fake_api: FakeVmApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = fake_api.new_task
    monkeypatch.setattr(
        fake_api,
        "new_task",
        lambda steps, name, node: original([{"state": "FAILURE", "status": "busy"}], name, node),
    )
    result = pvc("vm", "flush-locks", "vm2")
    assert result.exit_code == 1
    assert result.stdout.strip() == "FAILURE: busy"


def test_log_lines_and_follow(pvc: Invoke, connected: int, fake_api: FakeVmApi) -> None:
    result = pvc("vm", "log", "vm1")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [f"console {i}" for i in range(1, 21)]
    assert fake_api.calls("GET", "/vm/vm1/console")[0].args == {"lines": ["1000"]}
    assert pvc("vm", "log", "vm1", "-l", "2").stdout.splitlines() == ["console 19", "console 20"]
    fake_api.requests.clear()
    fake_api.console_batches = [["console 21"], [], ["console 22", "console 23"]]
    followed = pvc("vm", "log", "vm1", "--follow", env={"PVC_CLI_FOLLOW_MAX_POLLS": "3"})
    assert followed.exit_code == 0, followed.output
    assert followed.stdout.splitlines() == [f"console {i}" for i in range(11, 24)]
    calls = fake_api.calls("GET", "/vm/vm1/console")
    assert len(calls) == 4 and calls[0].args == {"lines": ["10"]}
    missing = pvc("vm", "log", "ghost")
    assert missing.exit_code == 1 and "Error: VM ghost not found" in missing.stderr


def test_tags(pvc: Invoke, connected: int, fake_api: FakeVmApi) -> None:
    pretty = pvc("vm", "tag", "get", "vm2")
    assert pretty.exit_code == 0
    assert pretty.stdout.splitlines()[2].split() == ["prod", "user", "Yes"]
    assert pvc("vm", "tag", "get", "vm2", "-f", "raw").stdout == "prod\n"
    assert json.loads(pvc("vm", "tag", "get", "vm1", "-f", "json").stdout)["tags"][0]["name"] == "web"
    added = pvc("vm", "tag", "add", "vm1", "db", "-p")
    assert added.stdout.strip() == "Added tag db to VM vm1"
    assert fake_api.calls("POST", "/vm/vm1/tags")[0].args == {
        "action": ["add"],
        "tag": ["db"],
        "protected": ["true"],
    }
    pvc("vm", "tag", "remove", "vm1", "web")
    assert fake_api.calls("POST", "/vm/vm1/tags")[1].args == {
        "action": ["remove"],
        "tag": ["web"],
        "protected": ["false"],
    }
    assert [t["name"] for t in fake_api.vms["vm1"]["tags"]] == ["db"]
    fake_api.vms["vm1"]["tags"] = []
    assert pvc("vm", "tag", "get", "vm1").stdout.strip() == "No tags."


# vCPUs and memory.
